"""The directories where a process's cgroups state its limits, for one controller, v1 and v2."""

from __future__ import annotations

from leanvla.cgroups import cgroup_directories
from tests.helpers import cgroup_files


def test_v2_lists_the_cgroup_and_each_above_it_in_the_one_tree_and_its_hybrid_mount(tmp_path):
    proc, mount = cgroup_files(tmp_path, ["0::/a/b"], {})
    found = cgroup_directories("memory", proc, mount)
    assert found == [
        (2, mount / "a" / "b"),
        (2, mount / "a"),
        (2, mount),
        (2, mount / "unified" / "a" / "b"),
        (2, mount / "unified" / "a"),
        (2, mount / "unified"),
    ]
    assert cgroup_directories("cpu", proc, mount) == found  # one tree for every controller


def test_v1_lists_only_the_controllers_own_tree(tmp_path):
    lines = ["12:memory:/docker/abc", "4:cpu,cpuacct:/docker/abc", "not a cgroup line"]
    proc, mount = cgroup_files(tmp_path, lines, {})
    assert cgroup_directories("memory", proc, mount) == [
        (1, mount / "memory" / "docker" / "abc"),
        (1, mount / "memory" / "docker"),
        (1, mount / "memory"),
    ]
    cpu = [d for _, d in cgroup_directories("cpu", proc, mount)]
    assert cpu[:3] == [
        mount / "cpu,cpuacct" / "docker" / "abc",
        mount / "cpu,cpuacct" / "docker",
        mount / "cpu,cpuacct",
    ]
    assert cpu[3:] == [mount / "cpu" / "docker" / "abc", mount / "cpu" / "docker", mount / "cpu"]  # its link
    assert cgroup_directories("pids", proc, mount) == []


def test_no_proc_file_means_no_directories(tmp_path):
    assert cgroup_directories("cpu", tmp_path / "absent", tmp_path) == []
