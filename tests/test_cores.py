"""The cores a process may use: its affinity, bounded by its cgroup's CPU quota (v1 and v2, the
smallest up the tree, a container's own cgroup at the root), shared with torchrun's other processes."""

from __future__ import annotations

import os
import sys

import pytest

from leanvla import cores
from tests.helpers import cgroup_files


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"a/b/cpu.max": "150000 100000", "a/cpu.max": "max 100000", "cpu.max": "max 100000"}, 1.5),
        ({"a/b/cpu.max": "150000 100000", "a/cpu.max": "50000 100000"}, 0.5),  # the parent's is smaller
        ({"a/b/cpu.max": "max 100000", "a/cpu.max": "max 100000"}, None),
        ({"a/b/cpu.max": "400000 200000"}, 2.0),  # quota and period in microseconds
        ({"a/b/cpu.max": "garbage"}, None),  # not as the kernel writes it: no quota read
        ({}, None),
    ],
)
def test_cgroup_v2_quota_is_the_smallest_up_the_tree(tmp_path, files, quota):
    proc, mount = cgroup_files(tmp_path, ["0::/a/b"], files)
    assert cores.cgroup_quota(proc, mount) == quota


def test_cgroup_v1_quota_is_read_from_the_cpu_controllers_tree(tmp_path):
    lines = ["12:memory:/docker/abc", "4:cpu,cpuacct:/docker/abc", "0::/"]
    # Docker without a cgroup namespace: the path is the host's, and the mount's root is the container's
    container = {"cpu,cpuacct/cpu.cfs_quota_us": "250000", "cpu,cpuacct/cpu.cfs_period_us": "100000"}
    assert cores.cgroup_quota(*cgroup_files(tmp_path / "docker", lines, container)) == 2.5
    nested = {
        "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "100000",
        "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000",
        "cpu,cpuacct/cpu.cfs_quota_us": "-1",  # none at the root
        "cpu,cpuacct/cpu.cfs_period_us": "100000",
    }
    assert cores.cgroup_quota(*cgroup_files(tmp_path / "nested", lines, nested)) == 1.0
    unlimited = {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}
    assert cores.cgroup_quota(*cgroup_files(tmp_path / "none", ["1:cpu:/", "0::/"], unlimited)) is None
    # the memory controller's quota-like files are not the CPU's
    memory = {"memory/docker/abc/cpu.cfs_quota_us": "1000", "memory/docker/abc/cpu.cfs_period_us": "100000"}
    assert cores.cgroup_quota(*cgroup_files(tmp_path / "memory", lines, memory)) is None


def test_no_cgroup_file_or_a_line_out_of_shape_means_no_quota(tmp_path):
    assert cores.cgroup_quota(tmp_path / "absent", tmp_path) is None
    proc, mount = cgroup_files(tmp_path, ["not a cgroup line", "0::/"], {"cpu.max": "200000 100000"})
    assert cores.cgroup_quota(proc, mount) == 2.0


@pytest.mark.parametrize(
    ("affinity", "quota", "usable"), [(8, None, 8), (8, 2.5, 3), (2, 4.0, 2), (8, 0.2, 1)]
)
def test_usable_cores_are_the_fewer_of_affinity_and_quota_rounded_up(monkeypatch, affinity, quota, usable):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(affinity)), raising=False)
    monkeypatch.setattr(cores, "cgroup_quota", lambda: quota)
    assert cores.usable_cores() == usable


@pytest.mark.parametrize(
    ("usable", "local_processes", "per_process"), [(8, None, 8), (8, "3", 2), (8, "16", 1), (1, None, 1)]
)
def test_cores_are_shared_with_torchruns_other_processes(monkeypatch, usable, local_processes, per_process):
    monkeypatch.setattr(cores, "usable_cores", lambda: usable)
    if local_processes is None:
        monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", local_processes)
    assert cores.cores_per_process() == per_process


def test_torch_threads_are_brought_within_the_cores_never_raised(monkeypatch):
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        monkeypatch.setattr(cores, "cores_per_process", lambda: 3)
        cores.fit_torch_threads()
        assert torch.get_num_threads() == 3
        monkeypatch.setattr(cores, "cores_per_process", lambda: 64)
        cores.fit_torch_threads()
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("affinity", "per_process", "threads"),
    [(8, 8, None), (2, 2, None), (8, 1, 1), (8, 3, 4), (64, 32, 16), (64, 15, 16), (64, 14, 15)],
)
def test_decoders_keep_ffmpegs_thread_count_unless_fewer_cores_are_usable(
    monkeypatch, affinity, per_process, threads
):
    monkeypatch.setattr(cores, "affinity_cores", lambda: affinity)
    monkeypatch.setattr(cores, "cores_per_process", lambda: per_process)
    assert cores.decoder_threads() == threads


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="cgroups and affinity are Linux's")
def test_this_machines_cores_are_within_its_affinity():
    quota = cores.cgroup_quota()
    assert quota is None or quota > 0
    assert 1 <= cores.usable_cores() <= len(os.sched_getaffinity(0))
