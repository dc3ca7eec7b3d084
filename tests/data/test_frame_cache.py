"""Decoded frames are kept once and read back exactly; any change to the dataset misses the cache."""

from __future__ import annotations

import errno
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from leanvla.data import file_digests, frame_cache
from leanvla.data.reader import LeRobotDataset
from leanvla.data.resize import fit_square
from leanvla.data.samples import ChunkDataset
from leanvla.errors import InputWarning, UserError
from tests.data.helpers import dataset_with, synthetic_dataset, to_video_dataset

CAM = "observation.images.cam"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache of this test's own, empty."""
    root = tmp_path / "cache"
    monkeypatch.setenv("LEANVLA_CACHE", str(root))
    return root / "frames"


@pytest.fixture
def settled(monkeypatch):
    """Files remembered however recently written, as a real dataset's are (written long before)."""
    monkeypatch.setattr(file_digests, "SETTLED_S", 0.0)


@pytest.fixture
def video_dataset(tmp_path):
    pytest.importorskip("av", reason="PyAV is in the dev extra; `make test` installs it")
    root = synthetic_dataset(tmp_path / "video", image_size=16)
    to_video_dataset(root, episodes_per_file=2)
    return root


def no_decoding(monkeypatch):
    """Make every decoder fail: a read that still succeeds came from the cache."""

    def refuse(*args, **kwargs):
        raise AssertionError("decoded, not read from the cache")

    monkeypatch.setattr("leanvla.data.video._batches", refuse)
    monkeypatch.setattr("leanvla.data.reader.decode_png", refuse)


def test_a_video_decodes_once_and_reads_back_exactly_whole_or_in_part(video_dataset, cache, monkeypatch):
    first = LeRobotDataset(video_dataset).read_images(CAM, size=8)
    assert len(list(cache.glob("*.npy"))) == 1
    no_decoding(monkeypatch)
    again = LeRobotDataset(video_dataset).read_images(CAM, size=8)
    assert again.dtype == np.uint8 and np.array_equal(again, first)
    rows = np.arange(len(first)) % 3 == 1
    assert np.array_equal(LeRobotDataset(video_dataset).read_images(CAM, rows=rows, size=8), first[rows])


def test_a_video_read_in_part_caches_every_frame(video_dataset, cache, monkeypatch):
    rows = np.arange(LeRobotDataset(video_dataset).num_frames) % 2 == 0
    part = LeRobotDataset(video_dataset).read_images(CAM, rows=rows, size=8)
    no_decoding(monkeypatch)
    whole = LeRobotDataset(video_dataset).read_images(CAM, size=8)
    assert len(whole) == len(rows) and np.array_equal(whole[rows], part)


def test_a_few_episodes_of_a_video_are_kept_as_an_entry_of_their_own(
    video_dataset, cache, monkeypatch, capsys
):
    from leanvla.cli import main

    episode = LeRobotDataset(video_dataset).read_array("episode_index")
    rows = np.isin(episode, [2])  # 9 of the 24 frames: at most half, so only they decode
    part = LeRobotDataset(video_dataset).read_images(CAM, rows=rows, size=8)
    (entry,) = cache.glob("*.npy")
    assert np.load(entry).shape == (9, 8, 8, 3)
    other = np.isin(episode, [3])  # in the same mp4: another entry
    other_part = LeRobotDataset(video_dataset).read_images(CAM, rows=other, size=8)
    whole = LeRobotDataset(video_dataset).read_images(CAM, size=8)  # another: every frame
    assert np.array_equal(whole[rows], part) and np.array_equal(whole[other], other_part)
    assert len(list(cache.glob("*.npy"))) == 3
    no_decoding(monkeypatch)
    assert np.array_equal(LeRobotDataset(video_dataset).read_images(CAM, rows=rows, size=8), part)
    assert np.array_equal(LeRobotDataset(video_dataset).read_images(CAM, rows=other, size=8), other_part)
    some = rows & (np.arange(len(rows)) % 2 == 0)
    assert np.array_equal(LeRobotDataset(video_dataset).read_images(CAM, rows=some, size=8), whole[some])
    data = ChunkDataset(LeRobotDataset(video_dataset), [CAM], 4, episodes=[2], image_size=8)
    assert data.mapped and torch.equal(
        data.images(np.arange(9))[:, 0], torch.from_numpy(part).permute(0, 3, 1, 2)
    )
    assert main(["cache"]) == 0
    listed = {e["frames"]: e["episodes"] for e in json.loads(capsys.readouterr().out)["entries"]}
    assert listed == {9: 1, 5: 1, 24: "all"}


def test_a_few_episodes_read_after_the_whole_camera_in_one_command_come_from_its_entry(
    video_dataset, cache, monkeypatch
):
    episode = LeRobotDataset(video_dataset).read_array("episode_index")
    rows = np.isin(episode, [2])
    whole = LeRobotDataset(video_dataset).read_images(CAM, size=8)  # a training set, say
    with monkeypatch.context() as patched:
        no_decoding(patched)
        frames, index = LeRobotDataset(video_dataset).camera_frames(
            CAM, rows=rows, size=8
        )  # its validation set
    assert len(frames) == len(whole) and np.array_equal(frames[index], whole[rows])
    assert len(list(cache.glob("*.npy"))) == 1
    file_digests.forget_in_process()  # another command, its files written moments ago: not known
    part = LeRobotDataset(video_dataset).read_images(CAM, rows=rows, size=8)
    assert np.array_equal(part, whole[rows]) and len(list(cache.glob("*.npy"))) == 2


def test_a_few_episodes_come_from_the_whole_cameras_entry_in_a_later_command_that_knows_its_digests(
    video_dataset, cache, settled, monkeypatch
):
    episode = LeRobotDataset(video_dataset).read_array("episode_index")
    rows = np.isin(episode, [2])
    whole = LeRobotDataset(video_dataset).read_images(CAM, size=8)  # `train` on every episode
    file_digests.forget_in_process()  # then `probe --episodes`: another command
    with monkeypatch.context() as patched:
        no_decoding(patched)
        part = LeRobotDataset(video_dataset).read_images(CAM, rows=rows, size=8)
    assert np.array_equal(part, whole[rows]) and len(list(cache.glob("*.npy"))) == 1
    file_digests.forget_in_process()
    file_digests.forget_remembered(
        frame_cache.digests_dir()
    )  # a command that would have to hash every file to look
    part = LeRobotDataset(video_dataset).read_images(CAM, rows=rows, size=8)
    assert np.array_equal(part, whole[rows]) and len(list(cache.glob("*.npy"))) == 2


def read_in_binary(root: Path, monkeypatch) -> list[Path]:
    """The files under `root` opened in binary from now on through Path.open, as hashing reads them."""
    opened, real_open = [], Path.open

    def counted_open(self, mode="r", *args, **kwargs):
        if self.is_relative_to(root) and "b" in mode:
            opened.append(self)
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", counted_open)
    return opened


def test_a_later_command_names_its_entry_without_reading_the_datasets_files_again(
    video_dataset, cache, settled, monkeypatch
):
    first = LeRobotDataset(video_dataset).read_images(CAM, size=8)
    file_digests.forget_in_process()
    hashed = read_in_binary(video_dataset, monkeypatch)
    no_decoding(monkeypatch)
    assert np.array_equal(LeRobotDataset(video_dataset).read_images(CAM, size=8), first)
    assert hashed == []
    file_digests.forget_in_process()
    file_digests.forget_remembered(
        frame_cache.digests_dir()
    )  # the first command after the dataset was copied, say
    assert np.array_equal(LeRobotDataset(video_dataset).read_images(CAM, size=8), first)
    assert set(hashed) == set(frame_cache.source_files(LeRobotDataset(video_dataset), CAM))


def test_digests_of_files_gone_are_forgotten_when_an_entry_is_kept(video_dataset, tmp_path, cache, settled):
    gone = tmp_path / "gone.mp4"
    gone.write_bytes(b"contents")
    file_digests.file_digest(gone, frame_cache.digests_dir())
    LeRobotDataset(video_dataset).read_images(CAM, size=8)
    sources = frame_cache.source_files(LeRobotDataset(video_dataset), CAM)
    assert file_digests.remembered_count(frame_cache.digests_dir()) == len(sources) + 1
    gone.unlink()
    LeRobotDataset(video_dataset).read_images(CAM, size=6)  # another entry kept
    notes = frame_cache.digests_dir().glob("*.json")
    assert {json.loads(path.read_text())["file"] for path in notes} == {str(p.resolve()) for p in sources}


def test_images_fitted_from_another_shape_are_cached_and_equal_fitting_them(tmp_path, cache, monkeypatch):
    dataset = LeRobotDataset(dataset_with(tmp_path / "ds", {"cam": (12, 20)}))
    as_stored = dataset.read_images(CAM)  # not fitted: not cached
    assert not cache.exists()
    rows = np.arange(len(as_stored)) % 2 == 0
    dataset.read_images(CAM, rows=rows, size=8)  # part of the images: only those decode, none kept
    assert not cache.exists()
    for fit in ("pad", "crop"):
        assert np.array_equal(dataset.read_images(CAM, size=8, fit=fit), fit_square(as_stored, 8, fit))
    assert len(list(cache.glob("*.npy"))) == 2  # one entry per fit
    no_decoding(monkeypatch)
    for fit in ("pad", "crop"):
        assert np.array_equal(dataset.read_images(CAM, size=8, fit=fit), fit_square(as_stored, 8, fit))
        assert np.array_equal(
            dataset.read_images(CAM, rows=rows, size=8, fit=fit), fit_square(as_stored[rows], 8, fit)
        )


def test_images_already_at_the_policys_size_are_cached_only_from_png_kept_from_bytes(
    tmp_path, cache, monkeypatch
):
    dataset = LeRobotDataset(synthetic_dataset(tmp_path / "ds", image_size=16))
    decoded = dataset.read_images(CAM, size=16)
    assert not cache.exists()  # a few small frames: PNG decodes them in a moment
    frames_bytes = dataset.num_frames * 16 * 16 * 3
    monkeypatch.setattr(frame_cache, "PNG_KEPT_FROM", frames_bytes + 1)
    assert np.array_equal(LeRobotDataset(dataset.root).read_images(CAM, size=16), decoded)
    assert not cache.exists()
    monkeypatch.setattr(frame_cache, "PNG_KEPT_FROM", frames_bytes)
    frames, index = LeRobotDataset(dataset.root).camera_frames(CAM, size=16)
    assert isinstance(frames, np.memmap) and np.array_equal(frames[index], decoded)
    no_decoding(monkeypatch)
    assert np.array_equal(LeRobotDataset(dataset.root).read_images(CAM, size=16), decoded)


def test_any_change_to_a_source_file_names_another_entry_and_a_copy_the_same(video_dataset, tmp_path):
    dataset = LeRobotDataset(video_dataset)
    name = frame_cache.entry_name(dataset, CAM, 8, "pad")
    sources = frame_cache.source_files(dataset, CAM)
    kinds = {p.relative_to(video_dataset).parts[0] for p in sources}
    assert kinds == {"meta", "videos"} and len([p for p in sources if p.suffix == ".mp4"]) == 2
    copy = LeRobotDataset(shutil.copytree(video_dataset, tmp_path / "copy"))
    assert frame_cache.entry_name(copy, CAM, 8, "pad") == name
    assert frame_cache.entry_name(dataset, CAM, 8, "crop") != name
    assert frame_cache.entry_name(dataset, CAM, 16, "pad") != name
    for source in sources:  # one byte more in any of them (read afresh: the metadata read stays)
        changed = copy.root / source.relative_to(video_dataset)
        original = changed.read_bytes()
        changed.write_bytes(original + b" ")
        assert frame_cache.entry_name(copy, CAM, 8, "pad") != name, source
        changed.write_bytes(original)
    assert frame_cache.entry_name(copy, CAM, 8, "pad") == name


def test_files_hash_side_by_side_and_name_the_entry_as_one_thread_would(video_dataset, cache, monkeypatch):
    import hashlib
    import threading
    import time

    dataset = LeRobotDataset(video_dataset)
    sources = frame_cache.source_files(dataset, CAM)
    one_thread = hashlib.blake2b(digest_size=20)  # the name, slowly: every part and file in order
    for part in [*frame_cache._code_and_decoders(), CAM, "8", "pad", "every episode"]:
        one_thread.update(part.encode() + b"\0")
    for path in sources:
        one_thread.update(path.relative_to(video_dataset).as_posix().encode() + b"\0")
        one_thread.update(hashlib.blake2b(path.read_bytes()).digest())
    together, alone = threading.Barrier(2, timeout=10), file_digests.file_digest

    def file_digest(path, directory, bar=None):
        if path in sources[:2]:  # the first two files pass only if they are hashed at once
            try:
                together.wait()
            except threading.BrokenBarrierError:
                pass
            if path == sources[0]:
                time.sleep(0.2)  # and the first finishes last
        return alone(path, directory, bar)

    monkeypatch.setattr(file_digests, "file_digest", file_digest)
    monkeypatch.setattr(file_digests, "cores_per_process", lambda: 2)
    assert frame_cache.entry_name(dataset, CAM, 8, "pad") == one_thread.hexdigest()
    assert not together.broken


def test_the_data_files_name_an_image_cameras_entry(tmp_path):
    dataset = LeRobotDataset(synthetic_dataset(tmp_path / "ds"))
    sources = frame_cache.source_files(dataset, CAM)
    assert set(dataset.data_files) <= set(sources)
    assert (tmp_path / "ds/meta/info.json") in sources


def test_a_damaged_entry_is_decoded_again_and_replaced(video_dataset, cache):
    first = LeRobotDataset(video_dataset).read_images(CAM, size=8)
    (entry,) = cache.glob("*.npy")
    entry.write_bytes(entry.read_bytes()[:100])  # truncated
    assert np.array_equal(LeRobotDataset(video_dataset).read_images(CAM, size=8), first)
    assert np.array_equal(np.load(entry), first)


def test_an_entry_of_another_shape_is_not_read(video_dataset, cache):
    first = LeRobotDataset(video_dataset).read_images(CAM, size=8)
    (entry,) = cache.glob("*.npy")
    np.save(entry, first[:-1])  # one frame short
    assert np.array_equal(LeRobotDataset(video_dataset).read_images(CAM, size=8), first)
    assert np.array_equal(np.load(entry), first)


def test_off_keeps_nothing(video_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("LEANVLA_CACHE", "off")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    LeRobotDataset(video_dataset).read_images(CAM, size=8)
    assert frame_cache.cache_root() is None and not (tmp_path / "home").exists()


def test_an_unwritable_cache_is_one_warning_and_the_frames_still_come(video_dataset, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("LEANVLA_CACHE", str(blocker))
    with pytest.warns(InputWarning, match="cannot keep decoded frames in .*a-file/frames .*LEANVLA_CACHE"):
        frames = LeRobotDataset(video_dataset).read_images(CAM, size=8)
    assert frames.shape == (LeRobotDataset(video_dataset).num_frames, 8, 8, 3)
    assert not list(tmp_path.glob("**/.*.tmp-*"))


def test_the_default_place_follows_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.delenv("LEANVLA_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert frame_cache.cache_root() == tmp_path / "xdg" / "leanvla"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert frame_cache.cache_root() == tmp_path / "home" / ".cache" / "leanvla"
    monkeypatch.setenv("LEANVLA_CACHE", "~/elsewhere")
    assert frame_cache.cache_root() == tmp_path / "home" / "elsewhere"


def test_the_least_recently_used_entries_go_first_and_the_newest_always_stays(tmp_path):
    sizes = {"old": 300, "middle": 300, "new": 300}
    for age, (name, size) in enumerate(reversed(sizes.items())):
        path = tmp_path / f"{name}.npy"
        path.write_bytes(b"x" * size)
        (tmp_path / f"{name}.json").write_text("{}")
        os.utime(path, (1000 - age, 1000 - age))
    removed = frame_cache.evict(tmp_path, limit=700)
    assert [p.stem for p in removed] == ["old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["middle.json", "middle.npy", "new.json", "new.npy"]
    assert [p.stem for p in frame_cache.evict(tmp_path, limit=100)] == ["middle"]  # new alone is 300
    assert [p.name for p in tmp_path.glob("*.npy")] == ["new.npy"]


def test_a_read_entry_counts_as_recently_used(video_dataset, cache):
    LeRobotDataset(video_dataset).read_images(CAM, size=8)
    (entry,) = cache.glob("*.npy")
    os.utime(entry, (1000, 1000))
    LeRobotDataset(video_dataset).read_images(CAM, size=8)
    assert entry.stat().st_mtime > 1000


def test_the_limit_is_read_in_gigabytes(monkeypatch):
    monkeypatch.delenv("LEANVLA_CACHE_GB", raising=False)
    assert frame_cache.limit_bytes() == 20 * 2**30
    monkeypatch.setenv("LEANVLA_CACHE_GB", "")  # set empty, as unset
    assert frame_cache.limit_bytes() == 20 * 2**30
    monkeypatch.setenv("LEANVLA_CACHE_GB", "0.5")
    assert frame_cache.limit_bytes() == 2**29
    monkeypatch.setenv("LEANVLA_CACHE_GB", "inf")  # no limit
    assert frame_cache.limit_bytes() > 2**50


@pytest.mark.parametrize("setting", ["lots", "-1", "nan"])
def test_a_limit_that_is_not_a_size_is_refused_before_anything_decodes(
    video_dataset, cache, monkeypatch, capsys, setting
):
    from leanvla.cli import main

    monkeypatch.setenv("LEANVLA_CACHE_GB", setting)
    no_decoding(monkeypatch)
    with pytest.raises(
        UserError, match=f"LEANVLA_CACHE_GB is '{setting}': give .* in gigabytes, a number >= 0"
    ):
        LeRobotDataset(video_dataset).read_images(CAM, size=8)
    out = video_dataset.parent / "run"
    assert main(["train", "--data", str(video_dataset), "--out", str(out), "--model.image-size", "8"]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not out.exists()


def test_a_command_says_where_its_frames_came_from(video_dataset, cache, capsys):
    dataset = LeRobotDataset(video_dataset)
    ChunkDataset(dataset, [CAM], chunk_size=4, progress=True, image_size=8)
    assert f"{CAM}: 0 MB of decoded frames kept in {cache} for the next command" in capsys.readouterr().err
    ChunkDataset(dataset, [CAM], chunk_size=4, progress=True, image_size=8)
    assert f"{CAM}: {dataset.num_frames} decoded frames read from the frame cache" in capsys.readouterr().err


def test_leanvla_cache_lists_each_entry_and_clear_removes_them_all(tmp_path, cache, settled, capsys):
    from leanvla.cli import main

    dataset = LeRobotDataset(dataset_with(tmp_path / "ds", {"cam": (12, 20)}))
    dataset.read_images(CAM, size=8, fit="crop")
    (first,) = cache.glob("*.npy")
    os.utime(first, (1000, 1000))  # used long ago
    dataset.read_images(CAM, size=6)
    assert main(["cache"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["directory"] == str(cache)
    newest, oldest = listed["entries"]
    assert (newest["fitted_to"], oldest["fitted_to"]) == ("6 x 6, pad", "8 x 8, crop")
    assert newest["dataset"] == str((tmp_path / "ds").resolve()) and newest["camera"] == CAM
    assert newest["frames"] == dataset.num_frames
    assert listed["total_mb"] == round(newest["mb"] + oldest["mb"], 1)
    assert listed["file_digests"] == len(frame_cache.source_files(dataset, CAM))
    (cache / f".{oldest['entry']}.tmp-1").write_bytes(b"")  # what an interrupted write leaves
    assert main(["cache", "--clear"]) == 0
    assert capsys.readouterr().out.startswith(f"removed 2 entries (0 MB) from {cache}")
    assert list(cache.iterdir()) == [] and list((cache.parent / "digests").iterdir()) == []
    assert main(["cache"]) == 0 and json.loads(capsys.readouterr().out)["entries"] == []


def test_clearing_leaves_an_entry_another_command_is_writing(tmp_path, cache, capsys):
    """Removed, the command decoding the camera failed with a traceback once it had decoded it all."""
    from leanvla.atomic import atomic_path, write_json_atomic
    from leanvla.cli import main

    digests = cache.parent / "digests"
    cache.mkdir(parents=True)
    (cache / "old.npy").write_bytes(b"0" * 2**20)
    with atomic_path(cache / "new.npy") as decoding, atomic_path(digests / "f.json") as hashing:
        assert main(["cache", "--clear"]) == 0
        assert capsys.readouterr().out.splitlines() == [
            f"removed 1 entry (1 MB) from {cache}",
            "left 1 being written by another command; clear again once it ends",
        ]
        assert list(cache.iterdir()) == [decoding] and list(digests.iterdir()) == [hashing]
        decoding.write_bytes(b"frames")
        write_json_atomic(cache / "new.json", {})  # its description: written after, as any command does
    assert sorted(p.name for p in cache.iterdir()) == ["new.json", "new.npy"]
    assert main(["cache", "--clear"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"removed 1 entry (0 MB) from {cache}"]


def test_leanvla_cache_shows_its_limit_and_refuses_a_bad_one(cache, monkeypatch, capsys):
    """The listing gave the entries' total but not the bound they are evicted at, and a bad
    LEANVLA_CACHE_GB went unnoticed until a training run met it."""
    from leanvla.cli import main

    for setting, limit_mb in (("", frame_cache.DEFAULT_LIMIT_GB * 1024), ("0.5", 512), ("inf", None)):
        monkeypatch.setenv("LEANVLA_CACHE_GB", setting)
        assert main(["cache"]) == 0
        assert json.loads(capsys.readouterr().out)["limit_mb"] == limit_mb
    monkeypatch.setenv("LEANVLA_CACHE_GB", "20GB")
    assert main(["cache"]) == 2
    assert capsys.readouterr().err.strip() == (
        "leanvla cache: error: LEANVLA_CACHE_GB is '20GB': give the decoded-frame cache's size limit in "
        f"gigabytes, a number >= 0 (unset: {frame_cache.DEFAULT_LIMIT_GB:g})"
    )
    assert main(["cache", "--clear"]) == 0  # clearing needs no limit


def test_leanvla_cache_when_off(monkeypatch, capsys):
    from leanvla.cli import main

    monkeypatch.setenv("LEANVLA_CACHE", "off")
    assert main(["cache"]) == 0
    assert json.loads(capsys.readouterr().out)["directory"] is None
    assert main(["cache", "--clear"]) == 0
    assert "LEANVLA_CACHE=off: nothing is kept" in capsys.readouterr().out


def test_a_cache_shared_read_only_is_still_read(video_dataset, cache, monkeypatch):
    first = LeRobotDataset(video_dataset).read_images(CAM, size=8)

    def read_only(*args, **kwargs):  # as os.utime fails on another user's file
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "utime", read_only)
    no_decoding(monkeypatch)
    assert np.array_equal(LeRobotDataset(video_dataset).read_images(CAM, size=8), first)


def test_within_a_process_each_file_is_hashed_once_though_cameras_share_it(tmp_path, monkeypatch):
    file_digests.forget_in_process()
    dataset = LeRobotDataset(dataset_with(tmp_path / "ds", {"a": (12, 20), "b": (12, 20)}))
    hashed = read_in_binary(dataset.root, monkeypatch)
    names = {frame_cache.entry_name(dataset, f"observation.images.{c}", 8, "pad") for c in "ab"}
    assert len(names) == 2
    assert sorted(hashed) == sorted(frame_cache.source_files(dataset, "observation.images.a")) != []


def test_new_decoding_code_or_a_new_decoder_names_another_entry(tmp_path, monkeypatch):
    import hashlib

    import PIL

    from leanvla.data import resize

    dataset = LeRobotDataset(synthetic_dataset(tmp_path / "ds"))
    name = frame_cache.entry_name(dataset, CAM, 8, "pad")
    parts = frame_cache._code_and_decoders()
    assert PIL.__version__ in parts
    assert hashlib.blake2b(Path(resize.__file__).read_bytes(), digest_size=16).hexdigest() in parts
    monkeypatch.setattr(frame_cache, "_code_and_decoders", lambda: (*parts[:-1], "an edited video.py"))
    assert frame_cache.entry_name(dataset, CAM, 8, "pad") != name


def decoded_without_the_cache(monkeypatch, read):
    """What `read()` gives with the cache off (the frames decoded, held in memory)."""
    with monkeypatch.context() as off:
        off.setenv("LEANVLA_CACHE", "off")
        return read()


def test_cached_frames_are_mapped_read_only_from_the_first_read_on_and_equal_decoded_ones(
    video_dataset, cache, monkeypatch
):
    decoded = decoded_without_the_cache(
        monkeypatch, lambda: LeRobotDataset(video_dataset).read_images(CAM, size=8)
    )
    rows = np.arange(len(decoded)) % 3 != 1
    for read in ("first", "later"):
        frames, index = LeRobotDataset(video_dataset).camera_frames(CAM, size=8)
        assert isinstance(frames, np.memmap) and not frames.flags.writeable, read
        assert np.array_equal(frames[index], decoded), read
        frames, index = LeRobotDataset(video_dataset).camera_frames(CAM, rows=rows, size=8)
        assert isinstance(frames, np.memmap) and np.array_equal(frames[index], decoded[rows]), read
        no_decoding(monkeypatch)
    assert len(list(cache.glob("*.npy"))) == 1


def test_a_training_set_reads_its_rows_of_the_mapped_frames_as_it_would_decoded_ones(
    video_dataset, cache, monkeypatch
):
    dataset = LeRobotDataset(video_dataset)
    held = decoded_without_the_cache(
        monkeypatch, lambda: ChunkDataset(dataset, [CAM, CAM], 4, episodes=[1, 2], image_size=8)
    )
    mapped = ChunkDataset(dataset, [CAM, CAM], 4, episodes=[1, 2], image_size=8)
    assert mapped.mapped and not held.mapped and len(mapped) == len(held) < dataset.num_frames
    rows = torch.arange(len(mapped)).flip(0)
    images = mapped.images(rows)
    assert images.shape == (len(rows), 2, 3, 8, 8) and images.is_contiguous()
    assert torch.equal(images, held.images(rows))
    a, b = mapped.batch(rows[::3]), held.batch(rows[::3])
    assert all(torch.equal(getattr(a, f), getattr(b, f)) for f in ("images", "state", "actions", "frame"))
    assert mapped.stats()[CAM]["mean"].tolist() == held.stats()[CAM]["mean"].tolist()


def full_disk(fd, offset, length):
    raise OSError(errno.ENOSPC, "No space left on device")


def cannot_reserve(fd, offset, length):
    raise OSError(errno.EOPNOTSUPP, "Operation not supported")


def test_a_full_disk_is_found_before_anything_decodes_and_the_frames_come_from_memory(
    video_dataset, cache, monkeypatch
):
    decoded = decoded_without_the_cache(
        monkeypatch, lambda: LeRobotDataset(video_dataset).read_images(CAM, size=8)
    )
    monkeypatch.setattr(os, "posix_fallocate", full_disk, raising=False)
    with pytest.warns(InputWarning, match=r"cannot keep decoded frames in .* \(No space left on device\)"):
        frames, index = LeRobotDataset(video_dataset).camera_frames(CAM, size=8)
    assert index is None and not isinstance(frames, np.memmap) and np.array_equal(frames, decoded)
    assert list(cache.iterdir()) == []  # the reserved file is gone


def test_a_filesystem_that_cannot_reserve_space_still_keeps_the_frames(video_dataset, cache, monkeypatch):
    monkeypatch.setattr(os, "posix_fallocate", cannot_reserve, raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frames, _ = LeRobotDataset(video_dataset).camera_frames(CAM, size=8)
    assert isinstance(frames, np.memmap) and len(list(cache.glob("*.npy"))) == 1


@pytest.mark.parametrize(
    "failure", [OSError(errno.EIO, "Input/output error"), KeyboardInterrupt()], ids=["read error", "Ctrl-C"]
)
def test_a_decode_that_fails_is_the_datasets_error_and_leaves_no_entry(
    video_dataset, cache, monkeypatch, failure
):
    def failing(*args, **kwargs):
        raise failure

    monkeypatch.setattr("leanvla.data.video._batches", failing)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not blamed on the cache
        with pytest.raises(type(failure)):
            LeRobotDataset(video_dataset).read_images(CAM, size=8)
    assert list(cache.iterdir()) == []


def test_frames_that_cannot_be_held_in_memory_with_the_cache_off_are_one_clear_error(
    video_dataset, monkeypatch
):
    monkeypatch.setenv("LEANVLA_CACHE", "off")
    info = json.loads((video_dataset / "meta/info.json").read_text())
    info["total_frames"] = 10**12  # 179 thousand GB of 8 x 8 frames: no allocator gives that
    (video_dataset / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(
        UserError,
        match=r"'observation.images.cam' fitted to 8 x 8 needs 178813.9 GB for its 1000000000000 frames, more "
        r"than this process can hold in memory \(LEANVLA_CACHE is off\): let the frame cache keep them on disk",
    ):
        LeRobotDataset(video_dataset).read_images(CAM, size=8)


def test_training_on_every_episode_keeps_images_of_another_shape_and_maps_them(tmp_path, cache, monkeypatch):
    dataset = LeRobotDataset(dataset_with(tmp_path / "ds", {"cam": (12, 20)}))
    first = ChunkDataset(dataset, [CAM], 4, image_size=8)  # every episode: a mask with every row set
    assert first.mapped and len(list(cache.glob("*.npy"))) == 1
    no_decoding(monkeypatch)
    again = ChunkDataset(dataset, [CAM], 4, image_size=8)
    rows = torch.arange(len(again))
    assert again.mapped and torch.equal(again.images(rows), first.images(rows))


def test_an_entry_another_process_removes_meanwhile_is_passed_over(tmp_path, cache, monkeypatch):
    dataset = LeRobotDataset(dataset_with(tmp_path / "ds", {"cam": (12, 20)}))
    dataset.read_images(CAM, size=8)
    dataset.read_images(CAM, size=6)
    gone, real_stat = sorted(cache.glob("*.npy"))[0], Path.stat

    def removed_after_the_glob(self, *args, **kwargs):  # as a torchrun rank's eviction would
        if self == gone:
            raise FileNotFoundError(2, "No such file or directory", str(self))
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", removed_after_the_glob)
    assert [entry["entry"] for entry in frame_cache.listing()["entries"]] == [
        p.name for p in cache.glob("*.npy") if p != gone
    ]
    assert frame_cache.evict(cache, limit=0) == []  # the one left is the newest: it stays
