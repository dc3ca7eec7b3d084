import os
import stat

import pytest

from leanvla.atomic import atomic_dir, atomic_file, atomic_path, write_bytes_atomic


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_written_file_has_default_permissions(tmp_path):
    path = tmp_path / "report.md"
    write_bytes_atomic(path, b"hello")
    assert path.read_bytes() == b"hello"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_atomic_dir_has_default_permissions_and_replaces(tmp_path):
    target = tmp_path / "policy"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~_umask()
    with atomic_dir(target, replace=True) as tmp:
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert [p.name for p in tmp_path.iterdir()] == ["policy"]  # the old one is gone, not set aside


def test_failed_block_leaves_nothing_behind(tmp_path):
    target = tmp_path / "policy"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_an_atomic_file_appears_whole_or_not_at_all(tmp_path):
    path = tmp_path / "frames.npy"
    with pytest.raises(RuntimeError), atomic_file(path) as f:
        f.write(b"half of it")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with atomic_file(path) as f:
        f.write(b"all")
        assert not path.exists()  # not until the block ends
    assert path.read_bytes() == b"all"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["frames.npy"]


def test_an_atomic_path_is_an_empty_file_that_becomes_the_target_or_goes(tmp_path):
    path = tmp_path / "frames.npy"
    with pytest.raises(KeyboardInterrupt), atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp.read_bytes() == b""
        tmp.write_bytes(b"half of it")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"all")
        assert not path.exists()
    assert path.read_bytes() == b"all" and [p.name for p in tmp_path.iterdir()] == ["frames.npy"]
