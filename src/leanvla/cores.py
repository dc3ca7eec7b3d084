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

from leanvla.cgroups import CGROUP_MOUNT, PROC_CGROUP, cgroup_directories
from leanvla.errors import require


def usable_cores() -> int:
    """The cores this process may run on (its affinity), fewer where its cgroup's quota allows less
    (rounded up: a quota of 1.5 cores keeps 2 threads busy)."""
    cores = affinity_cores()
    quota = cgroup_quota()
    return max(1, cores if quota is None else min(cores, math.ceil(quota)))


def check_threads(threads: int | None) -> None:
    """A --threads past the machine's cores is refused: the extra threads could only wait (and a
    count past a C int overflowed deep in torch, a traceback)."""
    cores = os.cpu_count() or 1
    require(
        threads is None or threads <= cores,
        f"--threads {threads} is more than this machine's {cores} cores; threads beyond them only wait",
    )


def affinity_cores() -> int:
    """The cores this process may run on, whatever its quota: what torch and FFmpeg count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cores_per_process() -> int:
    """`usable_cores()` shared with the other processes torchrun started on this machine."""
    return max(1, usable_cores() // int(os.environ.get("LOCAL_WORLD_SIZE", 1)))


def fit_torch_threads() -> None:
    """Lower torch's thread count to `cores_per_process()` where its default (counted from the
    affinity, whatever the quota) is more; never raise it above torch's own choice."""
    import torch

    torch.set_num_threads(max(1, min(torch.get_num_threads(), cores_per_process())))


def decoder_threads() -> int | None:
    """Threads for FFmpeg's video decoders: None (FFmpeg's own choice) where it counts the cores
    right, else its rule (the cores and one more, at most 16; one thread on one core) applied to
    `cores_per_process()`. FFmpeg counts the affinity's cores, not a quota's nor those torchrun's
    other processes use: 3 threads under a one-core quota of this 2-core machine, 16 on a large
    host. Here one thread decoded in 0.86x the time its 3 took, within this machine's noise
    (docs/RESULTS.md, "FFmpeg's decoder threads follow the cores a process may use")."""
    cores = cores_per_process()
    if cores >= affinity_cores():
        return None
    return 1 if cores == 1 else min(cores + 1, FFMPEG_MAX_AUTO_THREADS)


FFMPEG_MAX_AUTO_THREADS = 16  # libavcodec's MAX_AUTO_THREADS


def cgroup_quota(proc_cgroup: Path = PROC_CGROUP, mount: Path = CGROUP_MOUNT) -> float | None:
    """The CPU quota, in cores, of this process's cgroup and the cgroups above it (the smallest
    counts), from cgroup v2's cpu.max or v1's cpu.cfs_quota_us; None where none is set or none can
    be read (not Linux, or no cgroup filesystem)."""
    read = {2: _v2_quota, 1: _v1_quota}
    quotas = [
        read[version](directory) for version, directory in cgroup_directories("cpu", proc_cgroup, mount)
    ]
    return min((q for q in quotas if q is not None), default=None)


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
