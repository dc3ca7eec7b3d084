"""A file's digest is read once: within a process, and across commands from what a directory
remembers, never for a file whose contents changed since."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from leanvla.data import file_digests


@pytest.fixture
def remembered(tmp_path, monkeypatch):
    """A directory of remembered digests of this test's own; every file trusted however recently
    written, as a real dataset's are (written long before a command reads them)."""
    monkeypatch.setattr(file_digests, "SETTLED_S", 0.0)
    file_digests.forget_in_process()
    return tmp_path / "digests"


def written(path: Path, contents: bytes) -> Path:
    path.write_bytes(contents)
    return path


def a_later_command():
    file_digests.forget_in_process()


def test_a_later_command_takes_the_remembered_digest_without_opening_the_file(
    tmp_path, remembered, monkeypatch
):
    path = written(tmp_path / "file-000.mp4", b"contents")
    assert file_digests.file_digest(path, remembered) == hashlib.blake2b(b"contents").digest()
    a_later_command()
    assert file_digests.known(path, remembered)

    real_open = Path.open

    def no_reading(self, *args, **kwargs):
        assert self != path, "the file was read"
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", no_reading)
    assert file_digests.file_digest(path, remembered) == hashlib.blake2b(b"contents").digest()


def test_without_a_directory_a_digest_is_known_in_its_process_only(tmp_path, remembered):
    path = written(tmp_path / "file-000.mp4", b"contents")
    file_digests.file_digest(path, None)
    assert file_digests.known(path, None) and not remembered.exists()
    a_later_command()
    assert not file_digests.known(path, None)


def test_a_file_changed_with_its_size_and_modification_time_kept_is_hashed_afresh(tmp_path, remembered):
    path = written(tmp_path / "file-000.mp4", b"before")
    file_digests.file_digest(path, remembered)
    stat = path.stat()
    time.sleep(0.05)  # past the filesystem's clock tick
    path.write_bytes(b"after!")  # in place: the same inode and size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as `cp -p` or `rsync -t` keep it
    a_later_command()
    assert (path.stat().st_ino, path.stat().st_size, path.stat().st_mtime_ns) == (
        stat.st_ino,
        stat.st_size,
        stat.st_mtime_ns,
    )
    assert not file_digests.known(path, remembered)
    assert file_digests.file_digest(path, remembered) == hashlib.blake2b(b"after!").digest()


def test_a_file_written_moments_ago_or_while_it_is_read_is_not_remembered(tmp_path, remembered, monkeypatch):
    path = written(tmp_path / "file-000.mp4", b"fresh")
    with monkeypatch.context() as patched:
        patched.setattr(file_digests, "SETTLED_S", 2.0)  # the default: trusted 2 s after its last write
        file_digests.file_digest(path, remembered)
    assert not remembered.exists()

    class WriterMeanwhile:  # a progress bar whose update stands for a writer racing the read
        def update(self, count):
            path.write_bytes(b"rewritten while read")

    a_later_command()
    file_digests.file_digest(path, remembered, WriterMeanwhile())
    assert not remembered.exists()
    a_later_command()
    file_digests.file_digest(path, remembered)
    assert file_digests.remembered_count(remembered) == 1


def test_a_damaged_remembered_digest_is_hashed_again(tmp_path, remembered):
    path = written(tmp_path / "file-000.mp4", b"contents")
    file_digests.file_digest(path, remembered)
    (note,) = remembered.glob("*.json")
    for damage in ("{not json", json.dumps({"file": str(path.resolve()), "digest": "xyz"}), "[]"):
        note.write_text(damage)
        a_later_command()
        assert not file_digests.known(path, remembered)
        assert file_digests.file_digest(path, remembered) == hashlib.blake2b(b"contents").digest()


def test_a_note_for_another_file_is_not_taken(tmp_path, remembered):
    path = written(tmp_path / "file-000.mp4", b"contents")
    file_digests.file_digest(path, remembered)
    (note,) = remembered.glob("*.json")
    note.write_text(json.dumps({"file": "/elsewhere/file-000.mp4", "digest": "00" * 64}))
    a_later_command()
    assert file_digests.file_digest(path, remembered) == hashlib.blake2b(b"contents").digest()


def test_stale_digests_go_and_current_ones_stay(tmp_path, remembered):
    kept, gone, changed = (
        written(tmp_path / f"{name}.mp4", b"contents") for name in ("kept", "gone", "changed")
    )
    for path in (kept, gone, changed):
        file_digests.file_digest(path, remembered)
    gone.unlink()
    changed.write_bytes(b"changed")
    (remembered / "damaged.json").write_text("{not json")
    file_digests.forget_stale(remembered)
    (note,) = remembered.glob("*.json")
    assert json.loads(note.read_text())["file"] == str(kept.resolve())


def test_forgetting_what_is_remembered_removes_every_note_and_leftover(tmp_path, remembered):
    file_digests.file_digest(written(tmp_path / "file-000.mp4", b"contents"), remembered)
    (remembered / ".note.json.tmp-1").write_bytes(b"")  # what an interrupted write leaves
    file_digests.forget_remembered(remembered)
    assert list(remembered.iterdir()) == []
    file_digests.forget_remembered(tmp_path / "never-made")  # nothing to forget: no error
