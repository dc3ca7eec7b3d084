"""One process at a time in an output directory that a command goes on in (a training run, a
curation, a demo): a second one started by mistake (a job submitted twice, a requeued job whose
first copy still runs) wrote its metrics and checkpoints among the first's, and both reported
success; with --overwrite it emptied the directory under the first.

The lock is the kernel's (flock) on the directory itself: no file is left behind, and it goes with
the process that held it, however that ended. Where the filesystem has no such locks (some network
filesystems), the run goes on unguarded, as it always did.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from leanvla.errors import UserError


class DirectoryLock:
    """Held from `take` (once the directory exists) until `release`."""

    def __init__(self, directory: Path, flag: str):
        self.directory, self.flag = Path(directory), flag
        self._fd: int | None = None

    def take(self) -> None:
        """Hold the lock, or refuse in one line if another process does; again, nothing."""
        if self._fd is None and self._flock() is False:
            raise UserError(
                f"{self.flag} {self.directory} is in use by another leanvla process (a run started twice?); "
                f"wait for it to end, or choose another {self.flag}"
            )

    def try_take(self) -> bool:
        """Hold the lock if no process does: True then (or already held); False where another
        process holds it, or the filesystem has no locks (so no one can tell)."""
        return self._fd is not None or bool(self._flock())

    def held_elsewhere(self) -> bool:
        """Whether another process holds the lock now (False where the filesystem has none); the
        lock is not kept."""
        if self._fd is not None:
            return False
        free = self._flock()
        self.release()
        return free is False

    def _flock(self) -> bool | None:
        """True: now held; False: another process holds it; None: no locks on this filesystem."""
        fd = os.open(self.directory, os.O_RDONLY)  # a file's lock too: atomic_path's temporary files
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except OSError:  # no locks on this filesystem: unguarded
            os.close(fd)
            return None
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the lock
            self._fd = None
