"""Where the kernel states this process's limits: the directories of its cgroup and of each cgroup
above it, for one controller (`cpu` for a CPU quota, `memory` for a memory limit).

cgroup v2 has one tree (mounted at /sys/fs/cgroup, or at /sys/fs/cgroup/unified in a hybrid
layout); v1 a tree a controller (/sys/fs/cgroup/cpu,cpuacct, /sys/fs/cgroup/memory). The smallest
limit up the tree is the one that holds.
"""

from __future__ import annotations

from pathlib import Path

PROC_CGROUP = Path("/proc/self/cgroup")
CGROUP_MOUNT = Path("/sys/fs/cgroup")


def cgroup_directories(
    controller: str, proc_cgroup: Path = PROC_CGROUP, mount: Path = CGROUP_MOUNT
) -> list[tuple[int, Path]]:
    """(version, directory) for this process's cgroup and each above it where `controller` may
    state a limit; none where /proc/self/cgroup cannot be read (not Linux)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        if line.count(":") < 2:
            continue
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and not controllers:  # v2: one tree
            version, roots = 2, (mount, mount / "unified")
        elif controller in controllers.split(","):  # v1: the controller's own tree
            version, roots = 1, tuple(dict.fromkeys((mount / controllers, mount / controller)))
        else:
            continue
        found += [(version, directory) for root in roots for directory in _up_to(root, path)]
    return found


def _up_to(root: Path, path: str) -> list[Path]:
    """The cgroup `path` under `root` and each directory above it, up to `root`. In a container
    without its own cgroup namespace `path` is the host's, absent here, and `root` is the
    container's own cgroup: its limit is found there."""
    parts = [p for p in path.split("/") if p]
    return [root.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]
