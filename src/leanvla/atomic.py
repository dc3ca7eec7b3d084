"""Write outputs so that a crash never leaves a half-written result behind.

Every file or directory leanvla produces is first written under a temporary sibling name and then
renamed into place; `os.replace` within one filesystem is atomic, so readers see either the old
result or the whole new one.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO

from leanvla.errors import UserError


def default_mode(base: int) -> int:
    """`base` masked by the process umask: what a plain open()/mkdir() would have given.

    mkstemp/mkdtemp create private (0600/0700) entries, and so does safetensors' save_file;
    outputs must be readable like any other file (a checkpoint on a shared disk, by the team).
    """
    umask = os.umask(0)
    os.umask(umask)
    return base & ~umask


def nearest_existing(path: Path) -> Path:
    """`path` itself if it exists, else its closest existing ancestor: where it would be created."""
    path = Path(path).absolute()
    return next(p for p in (path, *path.parents) if p.exists())


def require_creatable(path: Path, flag: str, inputs: Iterable[tuple[str, Path | str | None]] = ()) -> None:
    """Refuse, before any work, an output that cannot be written: one under a file, or in a
    directory where nothing can be created (read-only, not ours). Found when the result is renamed
    into place, it would have thrown the work away with a traceback. A directory is made and
    removed where `path`'s temporary sibling will be, the one test that no permission bits fool.

    An existing output that is, or holds, one of the command's `inputs` ((flag, path) pairs) is refused
    too: replacing it (--overwrite) deletes that input, before it is read where a run starts over
    (`train --init RUN/policy --out RUN --overwrite` deleted its own starting point)."""
    if Path(path).exists():
        here = Path(path).resolve()
        for name, given in inputs:
            if given is not None and (here == Path(given).resolve() or here in Path(given).resolve().parents):
                raise UserError(
                    f"{flag} {path} holds {name} {given}, which replacing it would delete; choose another {flag}"
                )
    home = nearest_existing(Path(path).absolute().parent)
    if not home.is_dir():
        raise UserError(f"{flag} {path}: {home} is a file, not a directory; choose another {flag}")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".leanvla-check-", dir=home))
    except OSError as exc:
        raise UserError(
            f"{flag} {path}: nothing can be created in {home} ({exc.strerror}); choose another {flag}"
        ) from None


def require_changeable(path: Path, flag: str) -> None:
    """An existing output directory, which the command empties or replaces (--overwrite) or goes on
    in (a run resumed), holding a directory this user may not change: another user's, in a shared
    directory. Found when the old one was deleted, it stayed, hidden, where no one but its owner
    can remove it; found writing into it, a traceback naming a temporary."""
    if not path.is_dir() or path.is_symlink():
        return
    for directory, _, _ in os.walk(path):
        if not os.access(directory, os.W_OK | os.X_OK):
            raise UserError(
                f"{flag} {path}: this user may not change {directory} (another user's, or read-only), "
                f"which replacing it or going on in it does; choose another {flag}"
            )


def require_replaceable(path: Path, flag: str) -> None:
    """An existing output, replaced whole (set aside, the new one renamed into its place), that is
    another user's in a directory with the sticky bit (as /tmp has), where only an entry's owner
    may move it: found at the end, it threw the work away and left the new one's temporary."""
    if not path.exists():
        return
    parent = path.absolute().parent
    owner, parent_status = path.stat().st_uid, parent.stat()
    if parent_status.st_mode & stat.S_ISVTX and os.geteuid() not in (0, owner, parent_status.st_uid):
        raise UserError(
            f"{flag} {path} is another user's, in {parent}, where only its owner may replace it (the "
            f"sticky bit); choose another {flag}"
        )


def require_short_enough(path: Path, flag: str, output: Path | None = None) -> None:
    """An output written whole under a temporary sibling name (atomic_dir's, atomic_path's) whose
    name, so lengthened, the filesystem refuses: "OSError: [Errno 36] File name too long", a
    traceback, for a name it would take as it is. `output`, where it is not `path` itself: one
    named after it (an evaluation's rollouts directory)."""
    output = Path(path) if output is None else Path(output)
    written_as = len(f".{output.name}.tmp-abcdefgh".encode())
    what = "it" if output == Path(path) else output.name
    with suppress(OSError, ValueError):  # where the filesystem will not say, mkdtemp tells
        longest = os.pathconf(nearest_existing(output.absolute().parent), "PC_NAME_MAX")
        if written_as > longest:
            raise UserError(
                f"{flag} {path}: {what} is written first as .{output.name[:12]}....tmp-XXXXXXXX, a name of "
                f"{written_as} bytes, over the {longest} this filesystem allows; choose a shorter {flag}"
            )


def require_new(path: Path | str, flag: str, overwrite: bool) -> None:
    """An output that exists is replaced only with --overwrite: one line naming it, and `flag`."""
    if not overwrite and Path(path).exists():
        raise UserError(f"{path} already exists; choose another {flag} or pass --overwrite")


def require_own(path: Path | str, flag: str, what: str, mark: str, overwrite: bool) -> None:
    """An existing output directory that a command replaces (--overwrite deletes it) or goes on in
    (a run resumed) must be empty or `what` the command writes, told by `mark`, a name in it. Other
    files are the user's own: `train --out ~/project --overwrite` deleted them, and a run was written
    among them. The working directory, or one holding it (`--out ""` or `--out .`), is never deleted.
    The command's own must be this user's to change (require_changeable)."""
    path = Path(path)
    if not path.exists():
        return
    here, target = Path.cwd().resolve(), path.resolve()
    if overwrite and (target == here or target in here.parents):
        where = "the working directory" if target == here else "a directory holding the working directory"
        raise UserError(f"{flag} {path} is {where}, which --overwrite would delete; choose another {flag}")
    if not path.is_dir():
        raise UserError(f"{flag} {path} is a file, not {what}; choose another {flag}")
    if (path / mark).exists() or not any(path.iterdir()):
        require_changeable(path, flag)  # only now: a directory not the command's is not looked through
        return
    fate = (
        "--overwrite would delete them" if overwrite else "leanvla writes only into a new or empty directory"
    )
    raise UserError(
        f"{flag} {path} holds files but not {what} (no {mark}), and {fate}; choose another {flag}"
    )


def require_output(
    path: Path | str,
    flag: str,
    overwrite: bool,
    what: str,
    mark: str,
    inputs: Iterable[tuple[str, Path | str | None]] = (),
) -> None:
    """An output directory a command writes whole: creatable and none of its `inputs`
    (require_creatable: told first, as --overwrite would not help), of a name its temporary sibling
    can have (require_short_enough), new unless --overwrite (require_new), and, replaced, only
    `what` the command writes, which this user may change (require_own) and set aside
    (require_replaceable)."""
    require_creatable(Path(path), flag, inputs)
    require_short_enough(Path(path), flag)
    require_new(path, flag, overwrite)
    require_own(path, flag, what, mark, overwrite)
    require_replaceable(Path(path), flag)


def empty_directory(path: Path) -> None:
    """Delete what `path` holds, keeping the directory itself (and so a lock held on it)."""
    for entry in Path(path).iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def require_creatable_file(path: Path, flag: str, example: str) -> None:
    """`require_creatable` for an output that is one file: a directory of that name is refused too
    (replacing it failed once the work was done), suggesting `example` inside it."""
    require_creatable(path, flag)
    require_short_enough(Path(path), flag)
    if Path(path).is_dir():
        raise UserError(f"{flag} {path} is a directory; name a file, e.g. {Path(path) / example}")
    require_replaceable(Path(path), flag)


@contextmanager
def atomic_dir(target: Path, *, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that becomes `target` when the block exits without error.

    With `replace=True` an existing `target` is swapped out (the old one is removed only after the
    new one is complete); otherwise an existing `target` is an error the caller must check first
    (one found at the end was written meanwhile: a UserError).

    The temporary directory is locked while it is written (run_lock): one whose lock is free, and
    in which nothing has changed for an hour, was left by a process killed outright (SIGKILL, the
    kernel out of memory, a power cut) and is removed here, where it stayed forever, hidden (a
    dataset's conversion: the dataset's size). So is an old `target` whose removal was cut short.
    """
    from leanvla.run_lock import DirectoryLock

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    tmp.chmod(default_mode(0o777))
    writing = DirectoryLock(tmp, "")
    writing.try_take()
    try:
        remove_abandoned(target)
        try:
            with naming_a_full_disk(target, tmp):
                yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if target.exists():
            if not replace:  # another process wrote it meanwhile (a job submitted twice): a traceback
                shutil.rmtree(tmp, ignore_errors=True)
                raise UserError(
                    f"{target} was written by another process while this command ran; that output is kept "
                    "and this one's discarded: write elsewhere, or pass --overwrite to replace it"
                )
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            _into_place(tmp, target, aside=old)
            shutil.rmtree(old, ignore_errors=True)
        else:
            _into_place(tmp, target)
    finally:
        writing.release()


def _into_place(tmp: Path, target: Path, aside: Path | None = None) -> None:
    """Rename `tmp` to `target`, the old `target` first set `aside` where one is given. Where a
    rename fails (a filesystem's refusal: require_changeable and require_replaceable tell most
    first), the old `target` is put back and `tmp` removed: it stayed, hidden, the size of the
    output."""
    try:
        if aside is not None:
            os.replace(target, aside)
        try:
            os.replace(tmp, target)
        except BaseException:
            if aside is not None:
                os.replace(aside, target)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# Untouched this long, a temporary directory whose lock is free is no one's. The wait covers
# filesystems whose locks only this machine sees (some network mounts), where another machine's
# writer, which changes its files as it goes, would look abandoned.
ABANDONED_AFTER_S = 3600.0


# Each directory's temporary entries when this process first wrote there: a leftover is left by a
# process killed before, so one listing serves, where listing a directory of 10000 remembered
# digests at every write (11.7 ms) cost minutes.
_CANDIDATES: dict[str, list[str]] = {}


def remove_abandoned(target: Path) -> list[Path]:
    """Remove the temporary directories or files of `target` (atomic_dir's, atomic_path's) that no
    process is writing: those whose lock is free and in which nothing changed for
    ABANDONED_AFTER_S (where the filesystem has no locks, none: no one can tell), and the old
    `target`s atomic_dir set aside whose removal was cut short (a Ctrl-C, a kill), once a `target`
    is in place again (before, the old one is the only one). Returns those removed."""
    from leanvla.run_lock import DirectoryLock

    directory = Path(target).parent
    key = os.path.abspath(directory)
    if key not in _CANDIDATES:
        with suppress(OSError):
            _CANDIDATES[key] = [
                e.name
                for e in os.scandir(directory)
                if e.name.startswith(".") and (".tmp-" in e.name or ".old-" in e.name)
            ]
    # Exactly the names mkdtemp/mkstemp and atomic_dir give: a user's `.dataset.old-backup` is not one.
    ours = re.compile(rf"\.{re.escape(Path(target).name)}\.(?:tmp-[a-z0-9_]{{8}}|old-[0-9]+)")
    replaced, removed = f".{Path(target).name}.old-", []
    for name in [n for n in _CANDIDATES.get(key, []) if ours.fullmatch(n)]:
        leftover, lock, gone = directory / name, DirectoryLock(directory / name, ""), True
        try:
            if leftover.is_symlink():
                continue
            if name.startswith(replaced):
                abandoned = Path(target).exists()
            else:
                abandoned = lock.try_take() and time.time() - _last_change(leftover) > ABANDONED_AFTER_S
            if abandoned:
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink()
                removed.append(leftover)
            else:
                gone = False  # being written, not yet an hour old, or the only one: looked at again
        except OSError:  # gone meanwhile (this process's own, renamed into place)
            pass
        finally:
            lock.release()
        if gone:
            _CANDIDATES[key].remove(name)
    return removed


def being_written(path: Path) -> bool:
    """Whether `path` is a temporary directory or file of atomic_dir's or atomic_path's that a
    process is writing now (its lock is held): one a clearing must leave, or that process's rename
    into place fails, the work done thrown away with a traceback."""
    from leanvla.run_lock import DirectoryLock

    path = Path(path)
    if not (path.name.startswith(".") and ".tmp-" in path.name) or path.is_symlink():
        return False
    try:
        return DirectoryLock(path, "").held_elsewhere()
    except OSError:  # gone meanwhile
        return False


def _last_change(path: Path) -> float:
    """The latest modification time of `path` or, a directory, of anything in it."""
    latest = path.stat().st_mtime
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            with suppress(OSError):  # removed meanwhile
                latest = max(latest, os.lstat(os.path.join(root, name)).st_mtime)
    return latest


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield the path of an empty temporary file in the same directory that becomes `path` when the
    block exits without error (for writers that open a file by name: a memory-mapped array).
    Locked while written, as atomic_dir's directories are, and abandoned ones are removed alike (a
    camera's decoded frames in the frame cache: gigabytes the cache's limit never counted)."""
    from leanvla.run_lock import DirectoryLock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    writing = DirectoryLock(Path(tmp), "")
    writing.try_take()
    try:
        remove_abandoned(path)
        with naming_a_full_disk(path, Path(tmp)):
            yield Path(tmp)
        os.chmod(tmp, default_mode(0o666))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        writing.release()


@contextmanager
def naming_a_full_disk(output: Path, written_as: Path | None = None) -> Iterator[None]:
    """Where the disk fills up in the block, that error naming `output`, the file or directory
    being written: where it says not where (pyarrow's "Error writing bytes to file. Detail: [errno
    28] No space left on device", a file's write), or names a place in `written_as`, its temporary
    (`.last.tmp-x1y2z3w4/model.safetensors` is `last/model.safetensors` to the user)."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        if exc.filename is None:
            named = Path(output)
        elif written_as is not None and Path(exc.filename).is_relative_to(written_as):
            named = Path(output) / Path(exc.filename).relative_to(written_as)
        else:
            raise
        raise OSError(exc.errno, os.strerror(exc.errno), str(named)) from exc


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Yield a binary file, written in a temporary file in the same directory, that becomes `path`
    when the block exits without error (a large array can be saved into it without a copy in memory)."""
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        yield f


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same directory."""
    with atomic_file(path) as f:
        f.write(data)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write `obj` as indented JSON, atomically."""
    write_bytes_atomic(path, (json.dumps(obj, indent=2) + "\n").encode())
