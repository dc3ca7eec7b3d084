"""Failures of the machine rather than of leanvla or its input: memory or disk space ran out, a
filesystem refused a write. The CLI prints each as one line (what ran out, where, what asks for
less) with exit code 1, not 2: the input was valid, the machine too small for it, and a script
searching for the largest batch that fits can tell the two apart. Anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import errno
import re

from leanvla.memory import available_memory

# What to do about an OSError the filesystem gave, by its number; others (a missing file, say)
# mean a bug or a check leanvla lacks, and keep their traceback.
FILESYSTEM_REMEDIES = {
    errno.ENOSPC: "free some space there, or write elsewhere",
    errno.EDQUOT: "free some space there, or write elsewhere",
    errno.EROFS: "write elsewhere",
    errno.EACCES: "change its permissions, or use another place",
    errno.EPERM: "change its permissions, or use another place",
}

MEMORY_REMEDY = "close what else holds memory, or run it on a machine with more"

_CPU_ALLOCATION = re.compile(r"can't allocate memory: you tried to allocate (\d+) bytes")


def refusal_to_open(path) -> OSError | None:
    """The error Python's open gives reading `path` where the filesystem refuses it (a file another
    user wrote 0600, as safetensors writes its files), naming the file; else None. Libraries say it
    their own way: pyarrow "Failed to open local file ... Detail: [errno 13]", naming the file in
    its text alone, and safetensors "No such file or directory" of a file that is there."""
    try:
        with open(path, "rb"):
            return None
    except OSError as exc:
        return exc if exc.errno in FILESYSTEM_REMEDIES else None


def machine_failure(exc: BaseException, memory_remedy: str = MEMORY_REMEDY) -> str | None:
    """The one line that says what `exc` ran out of and what to do, or None when `exc` is not a
    failure of the machine. `memory_remedy` names the command's options that ask for less memory."""
    if isinstance(exc, OSError) and exc.errno in FILESYSTEM_REMEDIES:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}; {FILESYSTEM_REMEDIES[exc.errno]}"
    ran_out = out_of_memory(exc)
    return None if ran_out is None else f"out of memory ({ran_out}); {memory_remedy}"


def out_of_memory(exc: BaseException) -> str | None:
    """What could not be allocated, when `exc` is an allocation that failed: Python's MemoryError
    (numpy's says how much), PyTorch's OutOfMemoryError (a GPU's), or the RuntimeError its CPU
    allocator raises; else None."""
    if isinstance(exc, MemoryError):
        return str(exc) or "an allocation failed"
    if not isinstance(exc, RuntimeError):
        return None
    text = str(exc)
    cpu = _CPU_ALLOCATION.search(text)
    if cpu:
        free = available_memory()
        room = f"; {free / 2**30:.1f} GiB was available" if free is not None else ""
        return f"tried to allocate {int(cpu.group(1)) / 2**30:.1f} GiB{room}"
    if type(exc).__name__ == "OutOfMemoryError" or "out of memory" in text.lower():
        # PyTorch's GPU message ("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a
        # total capacity of ...") runs on about the process's use and the allocator's settings:
        # its second and third sentences say what was asked and what the device had.
        sentences = text.strip().splitlines()[0].split(". ")
        return "; ".join(sentences[1:3]).rstrip(".") or sentences[0]
    return None
