"""The memory a process may still take: the machine's available memory, bounded by the room its
cgroups' memory limits leave (v1 and v2, the smallest up the tree), page cache counted as room."""

from __future__ import annotations

import sys

import pytest

from leanvla import memory
from tests.helpers import cgroup_files

GIB = 1 << 30
MEMINFO = "MemTotal:       32000000 kB\nMemFree:         1000000 kB\nMemAvailable:   20000000 kB\n"


def _meminfo(tmp_path, text: str = MEMINFO):
    path = tmp_path / "meminfo"
    path.write_text(text)
    return path


def test_without_a_cgroup_limit_it_is_the_machines_available_memory(tmp_path):
    proc, mount = cgroup_files(tmp_path, ["0::/a"], {"a/memory.max": "max", "a/memory.current": "5"})
    assert memory.available_memory(_meminfo(tmp_path), proc, mount) == 20000000 * 1024


@pytest.mark.parametrize(
    ("files", "room"),
    [
        # the limit less what is used, page cache the kernel would drop first counted as room
        ({"a/b/memory.max": str(4 * GIB), "a/b/memory.current": str(3 * GIB)}, 1 * GIB),
        (
            {
                "a/b/memory.max": str(4 * GIB),
                "a/b/memory.current": str(3 * GIB),
                "a/b/memory.stat": f"anon 1000\ninactive_file {GIB // 2}\nactive_file 7\n",
            },
            GIB + GIB // 2,
        ),
        # the parent's room is smaller
        (
            {
                "a/b/memory.max": str(8 * GIB),
                "a/b/memory.current": str(GIB),
                "a/memory.max": str(2 * GIB),
                "a/memory.current": str(GIB + 5),
            },
            GIB - 5,
        ),
        ({"a/b/memory.max": str(GIB), "a/b/memory.current": str(2 * GIB)}, 0),  # over it: no room
        ({"a/b/memory.max": "garbage", "a/b/memory.current": "1"}, None),  # not as the kernel writes it
        ({"a/b/memory.max": str(GIB)}, None),  # no usage beside it
    ],
)
def test_cgroup_v2_room_is_the_smallest_up_the_tree(tmp_path, files, room):
    proc, mount = cgroup_files(tmp_path, ["0::/a/b"], files)
    assert memory.available_memory(tmp_path / "no-meminfo", proc, mount) == room


def test_cgroup_v1_room_reads_the_memory_controllers_tree_and_its_no_limit(tmp_path):
    lines = ["12:memory:/docker/abc", "4:cpu,cpuacct:/docker/abc"]
    limited = {
        "memory/memory.limit_in_bytes": str(6 * GIB),  # a container's own cgroup at the mount's root
        "memory/memory.usage_in_bytes": str(2 * GIB),
        "memory/memory.stat": f"cache 9\ninactive_file 1\ntotal_inactive_file {GIB}\n",
    }
    proc, mount = cgroup_files(tmp_path / "limited", lines, limited)
    assert memory.available_memory(tmp_path / "none", proc, mount) == 5 * GIB
    unlimited = {"memory/memory.limit_in_bytes": "9223372036854771712", "memory/memory.usage_in_bytes": "5"}
    proc, mount = cgroup_files(tmp_path / "unlimited", lines, unlimited)
    assert memory.available_memory(tmp_path / "none", proc, mount) is None
    assert memory.available_memory(_meminfo(tmp_path), proc, mount) == 20000000 * 1024


def test_the_machines_memory_bounds_a_larger_cgroup_room(tmp_path):
    proc, mount = cgroup_files(tmp_path, ["0::/"], {"memory.max": str(64 * GIB), "memory.current": "0"})
    assert memory.available_memory(_meminfo(tmp_path), proc, mount) == 20000000 * 1024


def test_nothing_readable_means_unknown(tmp_path):
    assert memory.available_memory(tmp_path / "a", tmp_path / "b", tmp_path) is None
    assert memory.available_memory(_meminfo(tmp_path, "MemTotal: 5 kB\n"), tmp_path / "b", tmp_path) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and cgroups are Linux's")
def test_this_machine_has_some_memory_available():
    assert 0 < memory.available_memory() <= memory._meminfo_available(memory.MEMINFO)
