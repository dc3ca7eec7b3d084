"""How many cores this process may use: the fewer of its CPU affinity and its cgroup's CPU quota.

`os.cpu_count()` counts the machine's cores, not this process's: under `taskset`, Slurm or a
container's cpuset the affinity is smaller, and under `docker --cpus` or a Kubernetes CPU limit the
quota is (the scheduler runs the process that many cores' worth of each period, then stops it).
Threads beyond either wait on each other: given one core of this 2-core machine, `leanvla train`
took 0.75-0.86x the time a step on one thread that it took on os.cpu_count()'s two when pinned to
it, and 0.73-0.77x under a quota of one core (two runs of docs/results/cores.md's benchmark).
torch's own default honours the affinity, not a quota.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

PROC_CGROUP = Path("/proc/self/cgroup")
CGROUP_MOUNT = Path("/sys/fs/cgroup")


def usable_cores() -> int:
    """The cores this process may run on (its affinity), fewer where its cgroup's quota allows less
    (rounded up: a quota of 1.5 cores keeps 2 threads busy)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cgroup_quota()
    return max(1, cores if quota is None else min(cores, math.ceil(quota)))


def cores_per_process() -> int:
    """`usable_cores()` shared with the other processes torchrun started on this machine."""
    return max(1, usable_cores() // int(os.environ.get("LOCAL_WORLD_SIZE", 1)))


def fit_torch_threads() -> None:
    """Lower torch's thread count to `cores_per_process()` where its default (counted from the
    affinity, whatever the quota) is more; never raise it above torch's own choice."""
    import torch

    torch.set_num_threads(max(1, min(torch.get_num_threads(), cores_per_process())))


def cgroup_quota(proc_cgroup: Path = PROC_CGROUP, mount: Path = CGROUP_MOUNT) -> float | None:
    """The CPU quota, in cores, of this process's cgroup and the cgroups above it (the smallest
    counts), from cgroup v2's cpu.max or v1's cpu.cfs_quota_us; None where none is set or none can
    be read (not Linux, or no cgroup filesystem)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    quotas = []
    for line in lines:
        if line.count(":") < 2:
            continue
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and not controllers:  # v2: one tree; `unified` in a hybrid layout
            roots, read = [mount, mount / "unified"], _v2_quota
        elif "cpu" in controllers.split(","):  # v1: the cpu controller's own tree
            roots, read = [mount / controllers, mount / "cpu"], _v1_quota
        else:
            continue
        for root in roots:
            quotas += [q for d in _up_to(root, path) if (q := read(d)) is not None]
    return min(quotas, default=None)


def _up_to(root: Path, path: str) -> list[Path]:
    """The cgroup `path` under `root` and each directory above it, up to `root`. In a container
    without its own cgroup namespace `path` is the host's, absent here, and `root` is the
    container's own cgroup: its quota is found there."""
    parts = [p for p in path.split("/") if p]
    return [root.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def _v2_quota(directory: Path) -> float | None:
    """cpu.max holds 'QUOTA PERIOD' in microseconds, or 'max PERIOD' for none."""
    try:
        quota, period = (directory / "cpu.max").read_text().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):  # absent, or not as the kernel writes it
        return None


def _v1_quota(directory: Path) -> float | None:
    """cpu.cfs_quota_us is -1 for none; cpu.cfs_period_us beside it."""
    try:
        quota = int((directory / "cpu.cfs_quota_us").read_text())
        period = int((directory / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 else None
    except (OSError, ValueError, ZeroDivisionError):
        return None
