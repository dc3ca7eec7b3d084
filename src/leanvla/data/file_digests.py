"""The digest of a file's contents, read once.

Naming a frame cache entry hashes every file its frames come from, a dataset's mp4s among them: at
about 560 MB/s a core here (docs/results/cache_lookup.md; `entry_name` hashes a file a thread),
minutes for a large dataset. So
within a process each file is hashed once (a dataset's cameras share its files, and training reads
them again for validation), and across commands its digest is remembered in a directory (the frame
cache's digests/, a small JSON note per file), so that a later command reads none of the files.

A file is known again by its path, device, inode, size, and modification and change times. Any
write moves the change time, and no tool sets it back (`touch`, `cp -p` and `rsync -t` set the
modification time only), so a file whose contents changed is never taken for what it was. A file
written in the last SETTLED_S seconds is not remembered across commands: a second write within the
filesystem's clock tick could leave every time as it was (git's "racy" index entries).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from leanvla.atomic import being_written, write_json_atomic
from leanvla.cores import cores_per_process

SETTLED_S = 2.0
Key = tuple[str, int, int, int, int, int]
_in_process: dict[Key, bytes] = {}


def forget_in_process() -> None:
    """Forget what this process hashed, as a new command starts (a benchmark timing one); what a
    directory remembers stays (`forget_remembered`)."""
    _in_process.clear()


def file_digest(path: Path, directory: Path | None, bar=None) -> bytes:
    """The blake2b digest of a file's contents, remembered in `directory` for later commands (None:
    in this process only); `bar` (tqdm) counts the bytes read, or passed over where known."""
    stat = path.stat()
    key = _key(stat, path)
    if key not in _in_process:
        digest = _remembered(directory, key)
        if digest is None:
            hashing = hashlib.blake2b()
            with path.open("rb") as f:
                while block := f.read(1 << 22):
                    hashing.update(block)
                    if bar is not None:
                        bar.update(len(block))
            digest = hashing.digest()
            if _key(path.stat(), path) == key:  # not written to while it was read
                _remember(directory, key, stat, digest)
        elif bar is not None:
            bar.update(stat.st_size)
        _in_process[key] = digest
    return _in_process[key]


def hash_files(
    digest, files: list[Path], root: Path, directory: Path | None, desc: str, progress: bool
) -> None:
    """Update `digest` (a hashlib object) with each file's path under `root` and its contents'
    digest (`file_digest`, remembered in `directory`), in order; a file a thread, on every core this
    process may use, with a progress bar over the bytes when `progress`."""
    from tqdm import tqdm

    total = sum(path.stat().st_size for path in files)
    with (
        tqdm(
            total=total,
            desc=desc,
            unit="B",
            unit_scale=True,
            leave=False,
            mininterval=1.0,
            disable=not progress,
        ) as bar,
        ThreadPoolExecutor(cores_per_process()) as pool,  # hashlib lets go of the GIL as it hashes
    ):
        counted = _SharedBar(bar)
        hashed = pool.map(lambda path: file_digest(path, directory, counted), files)
        for path, contents in zip(files, hashed):  # in order: the digest is as one thread made it
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(contents)


class _SharedBar:
    """A progress bar the hashing threads count into: tqdm's `update` is not atomic."""

    def __init__(self, bar):
        self.bar, self.lock = bar, threading.Lock()

    def update(self, count: int) -> None:
        with self.lock:
            self.bar.update(count)


def known(path: Path, directory: Path | None) -> bool:
    """Whether the file's digest (as it is now) is known without reading it: hashed in this
    process, or remembered in `directory`."""
    key = _key(path.stat(), path)
    return key in _in_process or _remembered(directory, key) is not None


def remembered_count(directory: Path) -> int:
    return len(list(directory.glob("*.json")))


def forget_remembered(directory: Path) -> None:
    """Remove every digest `directory` remembers: the next command hashes every file afresh."""
    if directory.is_dir():
        for path in directory.iterdir():  # and what an interrupted write left, not a live one's
            if not being_written(path):
                path.unlink(missing_ok=True)


def forget_stale(directory: Path) -> None:
    """Remove the digests of files that are gone or have changed since, so that `directory` holds
    about one per file a command has read, not one per version of each."""
    for path in directory.glob("*.json"):
        try:
            file = Path(json.loads(path.read_text(encoding="utf-8"))["file"])
            current = _note_path(directory, _key(file.stat(), file))
        except (OSError, ValueError, KeyError, TypeError):  # gone, or the note damaged
            current = None
        if current != path:
            path.unlink(missing_ok=True)


def _key(stat: os.stat_result, path: Path) -> Key:
    return str(path.resolve()), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def _note_path(directory: Path, key: Key) -> Path:
    name = hashlib.blake2b("\0".join(map(str, key)).encode(), digest_size=20).hexdigest()
    return directory / f"{name}.json"


def _remembered(directory: Path | None, key: Key) -> bytes | None:
    """The digest `directory` remembers for the file `key` recognises, if any."""
    if directory is None:
        return None
    try:
        note = json.loads(_note_path(directory, key).read_text(encoding="utf-8"))
        digest = bytes.fromhex(note["digest"])
    except (OSError, ValueError, KeyError, TypeError):  # none, or damaged: hashed again
        return None
    return digest if note.get("file") == key[0] else None


def _remember(directory: Path | None, key: Key, stat: os.stat_result, digest: bytes) -> None:
    """Keep `digest` for later commands, unless the file was written too recently to trust its
    times (SETTLED_S) or `directory` cannot be written (then later commands hash it again)."""
    if directory is None or time.time() - max(stat.st_mtime, stat.st_ctime) < SETTLED_S:
        return
    with contextlib.suppress(OSError):
        write_json_atomic(_note_path(directory, key), {"file": key[0], "digest": digest.hex()})
