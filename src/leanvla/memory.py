"""How much more memory this process may take: the machine's (/proc/meminfo's MemAvailable),
bounded by what its cgroup's memory limit leaves (the smallest up the tree).

A container's memory limit (`docker --memory`, a Kubernetes memory limit) is often set without a
CPU limit: the process sees every core of the machine and may use them, but a worker process a
core would pass the limit, and the kernel kills the processes it holds.
"""

from __future__ import annotations

from pathlib import Path

from leanvla.cgroups import CGROUP_MOUNT, PROC_CGROUP, cgroup_directories

MEMINFO = Path("/proc/meminfo")
NO_LIMIT = 1 << 60  # v1 writes "no limit" as the largest page-aligned 64-bit count


def available_memory(
    meminfo: Path = MEMINFO, proc_cgroup: Path = PROC_CGROUP, mount: Path = CGROUP_MOUNT
) -> int | None:
    """Bytes this process may still take: the fewer of the machine's available memory and each
    cgroup limit's room (the limit less what the cgroup uses, its page cache that the kernel
    drops before it runs out, inactive_file, not counted as used); None where neither can be read
    (not Linux)."""
    rooms = [_meminfo_available(meminfo)]
    for version, directory in cgroup_directories("memory", proc_cgroup, mount):
        rooms.append(_v2_room(directory) if version == 2 else _v1_room(directory))
    return min((room for room in rooms if room is not None), default=None)


def _meminfo_available(meminfo: Path) -> int | None:
    """MemAvailable, in bytes (the file counts kB): the kernel's estimate of what can be taken
    without swapping, page cache it can drop included."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _v2_room(directory: Path) -> int | None:
    """memory.max ('max' for none) less memory.current, plus memory.stat's inactive_file."""
    return _room(directory, "memory.max", "memory.current", "inactive_file")


def _v1_room(directory: Path) -> int | None:
    """memory.limit_in_bytes (a count past NO_LIMIT for none) less memory.usage_in_bytes, plus
    memory.stat's total_inactive_file (this cgroup's and those under it)."""
    return _room(directory, "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")


def _room(directory: Path, limit_file: str, usage_file: str, inactive_key: str) -> int | None:
    try:
        limit = (directory / limit_file).read_text().strip()
        if limit == "max" or int(limit) >= NO_LIMIT:
            return None
        used = int((directory / usage_file).read_text())
        return max(0, int(limit) - used + _stat(directory, inactive_key))
    except (OSError, ValueError):  # absent, or not as the kernel writes it
        return None


def _stat(directory: Path, key: str) -> int:
    """A count from memory.stat; 0 where it is not there."""
    try:
        for line in (directory / "memory.stat").read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0
