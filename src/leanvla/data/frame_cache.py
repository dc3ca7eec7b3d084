"""Decoded camera frames kept on disk, so a dataset's cameras decode once, not once per command.

A robot's mp4 cameras decode and fit at a few hundred frames a second on a laptop's CPU
(docs/results/video_read.md): 50 episodes of 600 frames from two cameras take minutes, and
`train`, `curate`, `prune`, `probe` and `export` each read them. The first command to decode a
camera at a policy's size decodes its frames (uint8, fitted) straight into one .npy file; later
commands read them in a moment.

Training reads an entry memory-mapped (`LeRobotDataset.camera_frames`): a step reads its batch's
frames from the page cache or the disk, so the frames need not fit in a process's memory, and
processes reading one camera (torchrun's ranks) share one copy. The first read puts each frame
into place as it decodes, holding a batch of frames (full-size ones at most 64 MB), not a file's.
A read of episodes that hold at most half a camera's frames (`--episodes`, a few of a large
dataset) decodes only theirs, by seeking, and keeps them as an entry of their own. Entries are
only ever replaced by renaming a new file over them, never rewritten in place, so a map stays valid
while another command replaces or evicts its entry.

What is cached: a camera's frames fitted to a square (`read_images(size=...)`) when decoding them
costs, that is a video feature, images stored at another shape, or images stored at the policy's
size whose frames take PNG_KEPT_FROM bytes or more. Fewer PNG frames at the policy's size decode
in seconds and are read as they are: their entry would be larger than the dataset, PNG compressing
what an entry holds raw.

An entry is named by a digest of everything its frames depend on: the contents of the dataset's
files they come from (meta/info.json, meta/episodes/, and the camera's mp4 files or the data
files), the camera, size and fit, the decoders' versions and the source of the code that decodes
and fits. A dataset that changes in any way gets another name, so a stale entry is never read; a
dataset copied elsewhere finds its entries. Each file's digest is remembered in the cache, known
again by the file's size, inode and times (`file_digests`), so a later command finds its entries
without reading the dataset's files once more (seconds a gigabyte).

LEANVLA_CACHE: the cache directory (default `$XDG_CACHE_HOME/leanvla`, else `~/.cache/leanvla`),
or `off`. LEANVLA_CACHE_GB (default 20): above it, the least recently used entries are removed.
`leanvla cache` lists the entries; `leanvla cache --clear` removes them.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from leanvla.atomic import atomic_path, being_written, write_json_atomic
from leanvla.data import file_digests
from leanvla.errors import InputWarning, UserError, require

if TYPE_CHECKING:
    from leanvla.data.reader import LeRobotDataset

FORMAT = "leanvla-frames-1"  # the layout of an entry; a new layout must change it
DEFAULT_LIMIT_GB = 20.0
DIGESTS = "digests"  # the directory in the cache where file_digests remembers the files' digests
# PNG decodes at ~2400 frames/s at 64 x 64 but 370-590 at 224 x 224 on one core here, as slowly as
# an mp4 (docs/results/png_cameras.md): from 512 MB a camera's frames cost a command seconds to
# decode and that much memory to hold.
PNG_KEPT_FROM = 512 * 2**20


def cache_root() -> Path | None:
    """The cache directory, or None when LEANVLA_CACHE is `off`."""
    setting = os.environ.get("LEANVLA_CACHE", "").strip()
    if setting.lower() == "off":
        return None
    if setting:
        return Path(setting).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "leanvla"


def limit_bytes() -> int:
    """LEANVLA_CACHE_GB in bytes (DEFAULT_LIMIT_GB when unset or empty); anything but a number >= 0
    is refused."""
    setting = os.environ.get("LEANVLA_CACHE_GB", "").strip() or str(DEFAULT_LIMIT_GB)
    try:
        gigabytes = float(setting)
    except ValueError:
        gigabytes = math.nan
    require(
        gigabytes >= 0,  # NaN too fails it
        f"LEANVLA_CACHE_GB is '{setting}': give the decoded-frame cache's size limit in gigabytes, "
        f"a number >= 0 (unset: {DEFAULT_LIMIT_GB:g})",
    )
    return sys.maxsize if math.isinf(gigabytes) else int(gigabytes * 2**30)  # inf: no limit


def worth_caching(dataset: LeRobotDataset, key: str, size: int | None) -> bool:
    """Whether a read of `key` at `size` is cached: fitted frames that were costly to decode."""
    if size is None:  # frames as stored: caching them would copy the dataset in raw pixels
        return False
    if dataset.features[key]["dtype"] == "video" or dataset.image_shape(key) != (size, size):
        return True
    return dataset.num_frames * size * size * 3 >= PNG_KEPT_FROM


def source_files(dataset: LeRobotDataset, key: str, episodes: np.ndarray | None = None) -> list[Path]:
    """The dataset's files a camera's frames (of `episodes` alone, when given) are decoded from,
    metadata first."""
    from leanvla.data import format as fmt
    from leanvla.data.video import video_files

    meta = [dataset.root / fmt.INFO_PATH, *sorted((dataset.root / "meta" / "episodes").rglob("*.parquet"))]
    if dataset.features[key]["dtype"] != "video":
        return meta + sorted(set(dataset.data_files))
    files = video_files(dataset, key)
    return meta + sorted(set(files if episodes is None else [files[ep] for ep in episodes]))


def frame_count(dataset: LeRobotDataset, episodes: np.ndarray | None = None) -> int:
    """How many frames the dataset (or its `episodes`) holds."""
    if episodes is None:
        return dataset.num_frames
    return int(np.asarray(dataset.episode_column("length"), dtype=np.int64)[episodes].sum())


@functools.cache
def _code_and_decoders() -> tuple[str, ...]:
    """What decodes and fits frames besides the files: the source of leanvla's decoding and fitting
    modules and the versions of the libraries they call (a new release may round differently)."""
    import PIL
    import torch

    from leanvla.data import reader, resize, video

    parts = [FORMAT, np.__version__, torch.__version__, PIL.__version__]
    try:
        import av

        parts.append(av.__version__)
    except ImportError:
        parts.append("no av")
    for module in (reader, resize, video):
        parts.append(hashlib.blake2b(Path(module.__file__).read_bytes(), digest_size=16).hexdigest())
    return tuple(parts)


def digests_dir() -> Path | None:
    """Where the digests of the files entries are named by are remembered across commands
    (`file_digests`), or None when the cache is off."""
    root = cache_root()
    return None if root is None else root / DIGESTS


def entry_name(
    dataset: LeRobotDataset,
    key: str,
    size: int,
    fit: str,
    progress: bool = False,
    episodes: np.ndarray | None = None,
) -> str:
    """The digest that names a camera's cached frames at `size` and `fit`, of every episode or of
    `episodes` alone (see the module's docstring), with a progress bar over the bytes hashed when
    `progress`."""
    digest = hashlib.blake2b(digest_size=20)
    which = "every episode" if episodes is None else "episodes " + ",".join(map(str, episodes))
    for part in [*_code_and_decoders(), key, str(size), fit, which]:
        digest.update(part.encode() + b"\0")
    sources = source_files(dataset, key, episodes)
    file_digests.hash_files(digest, sources, dataset.root, digests_dir(), f"hash {key}", progress)
    return digest.hexdigest()


def load_frames(
    dataset: LeRobotDataset,
    key: str,
    size: int,
    fit: str,
    progress: bool = False,
    episodes: np.ndarray | None = None,
    if_digests_known: bool = False,
) -> tuple[np.ndarray | None, str]:
    """(The cached frames of `key` at `size` and `fit` (of `episodes` alone, when given),
    memory-mapped read-only, or None when there are none; the entry's name, for
    `decode_into_entry`). With `if_digests_known`, only where the digest of every file it is named
    by is known (hashed in this process, or remembered from an earlier command): looking costs
    nothing then, where hashing a large dataset's every mp4 would cost more than decoding a few of
    its episodes."""
    root = cache_root()
    if root is None:
        return None, ""
    sources = source_files(dataset, key, episodes) if if_digests_known else []
    remembered_in = digests_dir()
    if not all(file_digests.known(path, remembered_in) for path in sources):
        return None, ""
    limit_bytes()  # a bad limit is refused now, not after the frames have decoded
    name = entry_name(dataset, key, size, fit, progress, episodes)
    path = root / "frames" / f"{name}.npy"
    try:
        frames = np.load(path, mmap_mode="r")
    except (OSError, ValueError):  # absent, or unreadable: decode again, and overwrite it
        return None, name
    if frames.shape != (frame_count(dataset, episodes), size, size, 3) or frames.dtype != np.uint8:
        return None, name
    with contextlib.suppress(OSError):  # a cache shared read-only is still read
        os.utime(path)  # recently used: the last to be removed when the cache is over its limit
    return frames, name


def decode_into_entry(
    dataset: LeRobotDataset,
    key: str,
    size: int,
    fit: str,
    name: str,
    decode: Callable[[np.ndarray], object],
    progress: bool,
    episodes: np.ndarray | None = None,
) -> np.ndarray:
    """Every frame of a camera (of `episodes` alone, when given), `decode(out)` filling `out`
    (frames x size x size x 3): straight into a new entry `name`, returned memory-mapped read-only,
    so a camera larger than memory decodes; into memory when the cache is off or cannot be written
    (a warning)."""
    shape = (frame_count(dataset, episodes), size, size, 3)

    def in_memory(why: str) -> np.ndarray:
        try:
            out = np.empty(shape, np.uint8)
        except MemoryError:
            raise UserError(
                f"{dataset.root}: '{key}' fitted to {size} x {size} needs {math.prod(shape) / 2**30:.1f} GB "
                f"for its {shape[0]} frames, more than this process can hold in memory ({why}): let the "
                "frame cache keep them on disk (LEANVLA_CACHE, a writable directory), or read fewer "
                "episodes (--episodes) or smaller images (--model.image-size)"
            ) from None
        decode(out)
        return out

    root = cache_root()
    if root is None or not name:
        return in_memory("LEANVLA_CACHE is off")
    directory = root / "frames"
    decoding = False
    try:
        with atomic_path(directory / f"{name}.npy") as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
            _reserve(tmp, out)
            decoding = True
            decode(out)
            decoding = False
            out.flush()
    except OSError as exc:
        if decoding:  # the dataset's error, not the cache's
            raise
        warnings.warn(
            f"cannot keep decoded frames in {directory} ({exc.strerror or exc}); every command decodes "
            "them afresh: set LEANVLA_CACHE to a writable directory, or to off",
            InputWarning,
            stacklevel=2,
        )
        return in_memory(f"the frame cache cannot be written: {exc.strerror or exc}")
    with contextlib.suppress(OSError):  # what the entry holds, for a person looking through the cache
        note = {"dataset": str(dataset.root.resolve()), "camera": key, "shape": list(shape), "fit": fit}
        if episodes is not None:
            note["episodes"] = [int(ep) for ep in episodes]
        write_json_atomic(directory / f"{name}.json", note)
    out.flags.writeable = False  # the entry is shared: nothing may write through this map
    if progress:
        print(
            f"{key}: {out.nbytes / 2**20:.0f} MB of decoded frames kept in {directory} for the next "
            "command (LEANVLA_CACHE=off: not kept)",
            file=sys.stderr,
        )
    evict(directory, limit_bytes())
    file_digests.forget_stale(root / DIGESTS)
    return out


def _reserve(path: Path, frames: np.memmap) -> None:
    """Allocate the entry's disk blocks before writing through the map: on a full disk that is an
    OSError now, where a page written later would kill the process (SIGBUS)."""
    if not hasattr(os, "posix_fallocate"):  # not Linux: the filesystem allocates as pages land
        return
    with path.open("r+b") as f:
        try:
            os.posix_fallocate(f.fileno(), 0, frames.offset + frames.nbytes)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # a filesystem that cannot reserve
                raise


def _entries(directory: Path) -> list[tuple[os.stat_result, Path]]:
    """The entries in `directory` with their stat, most recently used first."""
    entries = []
    for path in directory.glob("*.npy"):
        try:
            entries.append((path.stat(), path))
        except FileNotFoundError:  # another process (a torchrun rank) removed it meanwhile
            continue
    return sorted(entries, key=lambda entry: entry[0].st_mtime, reverse=True)


def evict(directory: Path, limit: int) -> list[Path]:
    """Remove the least recently used entries until those left fit in `limit` bytes; the removed."""
    kept, removed = 0, []
    for rank, (stat, path) in enumerate(_entries(directory)):
        kept += stat.st_size
        if kept > limit and rank > 0:  # the newest, the entry just written, always stays
            path.unlink(missing_ok=True)
            path.with_suffix(".json").unlink(missing_ok=True)
            removed.append(path)
    return removed


def listing() -> dict:
    """What `leanvla cache` prints: the directory, each entry (the dataset and camera it holds,
    its shape, size and last use, newest first) and their total size."""
    root = cache_root()
    if root is None:
        return {
            "directory": None,
            "entries": [],
            "total_mb": 0.0,
            "file_digests": 0,
            "note": "LEANVLA_CACHE=off: nothing is kept",
        }
    directory = root / "frames"
    rows = []
    for stat, path in _entries(directory):
        try:
            note = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError):  # its description lost: the entry is still usable
            note = {}
        shape = note.get("shape") or [None] * 3
        rows.append(
            {
                "entry": path.name,
                "dataset": note.get("dataset"),
                "camera": note.get("camera"),
                "episodes": (len(note["episodes"]) if "episodes" in note else "all") if note else None,
                "frames": shape[0],
                "fitted_to": f"{shape[1]} x {shape[2]}, {note.get('fit')}" if note else None,
                "mb": round(stat.st_size / 2**20, 1),
                "last_used": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stat.st_mtime)),
            }
        )
    return {
        "directory": str(directory),
        "entries": rows,
        "total_mb": round(sum(r["mb"] for r in rows), 1),
        "file_digests": file_digests.remembered_count(root / DIGESTS),  # remembered across commands
    }


def clear() -> tuple[int, int]:
    """Remove every entry (and any temporary file an interrupted write left) and every remembered
    digest; how many entries, and how many entries being written were left to the commands writing
    them (removed, a command decoding a camera failed once it had decoded it)."""
    root = cache_root()
    if root is None:
        return 0, 0
    file_digests.forget_remembered(root / DIGESTS)
    if not (root / "frames").is_dir():
        return 0, 0
    directory = root / "frames"
    count = left = 0
    for path in directory.iterdir():
        if being_written(path):
            left += path.name.split(".tmp-")[0].endswith(".npy")  # an entry, not its description
            continue
        if path.suffix == ".npy" and not path.name.startswith("."):
            count += 1
        if path.is_file():
            path.unlink(missing_ok=True)
    return count, left
