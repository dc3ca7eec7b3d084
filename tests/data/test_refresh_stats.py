"""`leanvla data stats` writes every episode's statistics from its frames into every file of the
episodes metadata, and meta/stats.json, leaving everything else as it was."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leanvla.cli import main
from leanvla.data import refresh_stats as refresh_module
from leanvla.data.convert import ConvertConfig, convert
from leanvla.data.reader import LeRobotDataset
from leanvla.data.refresh_stats import StatsConfig, refresh_stats, with_statistics
from leanvla.data.stats import QUANTILES
from leanvla.errors import UserError
from tests.data.helpers import (
    dataset_with,
    declared_shape,
    synthetic_dataset,
    to_v21,
    to_video_dataset,
    without_frames,
)

CAM = "observation.images.cam"
EPISODES_FILE = "meta/episodes/chunk-000/file-000.parquet"


@pytest.fixture
def written(tmp_path) -> Path:
    """A dataset as leanvla's writer wrote it: its statistics are its frames' already."""
    return synthetic_dataset(tmp_path / "written")


def episode_files(root: Path) -> list[Path]:
    return sorted((root / "meta/episodes").rglob("*.parquet"))


def contents(root: Path) -> dict[str, bytes]:
    """Every file of a dataset by its path inside it."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def split_episodes_file(root: Path, first: int) -> None:
    """The episodes metadata as two files, episodes before `first` and the rest, as LeRobot leaves
    it once it has added episodes to a dataset."""
    table = pq.read_table(root / EPISODES_FILE)
    pq.write_table(table.slice(0, first), root / EPISODES_FILE)
    pq.write_table(table.slice(first), root / "meta/episodes/chunk-000/file-001.parquet")


def test_statistics_already_the_frames_are_rewritten_as_they_were(written, tmp_path):
    before = pq.read_table(written / EPISODES_FILE)
    stats_before = json.loads((written / "meta/stats.json").read_text())
    report = refresh_stats(StatsConfig(written))
    assert pq.read_table(written / EPISODES_FILE).equals(before)  # every column, in the same order
    assert json.loads((written / "meta/stats.json").read_text()) == stats_before
    assert report["missing"] == {} and report["changed"] == {} and report["removed"] == []
    assert report["written"] and report["episode_files"] == 1 and report["episodes"] == 4
    assert report["features"] == list(LeRobotDataset(written).features)


def test_missing_and_stale_statistics_are_the_frames_again_and_reported(written, tmp_path):
    expected = pq.read_table(written / EPISODES_FILE)
    stats_expected = json.loads((written / "meta/stats.json").read_text())
    table = expected.drop_columns([n for n in expected.column_names if n.endswith("/q50")])
    maxima = table.column("stats/action/max").to_pylist()
    maxima[2] = [value + 0.25 for value in maxima[2]]
    table = table.set_column(table.column_names.index("stats/action/max"), "stats/action/max", [maxima])
    table = table.append_column("stats/gone/mean", pa.array([[0.0]] * 4))
    pq.write_table(table, written / EPISODES_FILE)
    (written / "meta/stats.json").write_text("{}")
    report = refresh_stats(StatsConfig(written))
    assert report["missing"] == dict.fromkeys(LeRobotDataset(written).features, 4)
    assert report["changed"] == {"action": {"episodes": 1, "largest_difference": 0.25}}
    assert report["removed"] == ["stats/gone/mean"]
    refreshed = pq.read_table(written / EPISODES_FILE)
    assert sorted(refreshed.column_names) == sorted(expected.column_names)
    assert refreshed.select(expected.column_names).equals(expected)
    assert json.loads((written / "meta/stats.json").read_text()) == stats_expected


def test_every_file_keeps_its_episodes_and_other_columns(written):
    split_episodes_file(written, first=3)
    first = pq.read_table(written / EPISODES_FILE)
    pq.write_table(
        first.drop_columns([n for n in first.column_names if n.endswith(tuple(QUANTILES))]),
        written / EPISODES_FILE,
    )
    kept = {path: pq.read_table(path) for path in episode_files(written)}
    report = refresh_stats(StatsConfig(written))
    assert report["missing"] == dict.fromkeys(LeRobotDataset(written).features, 3)
    assert report["episode_files"] == 2
    schemas = [pq.read_schema(path) for path in episode_files(written)]
    assert schemas[0].equals(schemas[1])  # LeRobot loads files of the same columns only
    for path, before in kept.items():
        after = pq.read_table(path)
        assert after.column("episode_index").to_pylist() == before.column("episode_index").to_pylist()
        for name in before.column_names:
            if not name.startswith("stats/"):
                assert after.column(name).equals(before.column(name)), (path, name)
    q50 = pq.read_table(episode_files(written)[0]).column("stats/action/q50").to_pylist()
    assert q50 == [[float(e), (n - 1) / 2, 0.0, 0.0] for e, n in enumerate((6, 4, 9))]  # (e, f, 0, 0)


@pytest.mark.parametrize("video", [False, True], ids=["PNG", "mp4"])
def test_afterwards_they_are_what_convert_computes_from_the_frames(tmp_path, video):
    if video:
        pytest.importorskip("av", reason="PyAV is in the dev extra; `make test` installs it")
    v21 = to_v21(synthetic_dataset(tmp_path / "v30"), tmp_path / "v21", video_keys=(CAM,) if video else ())
    convert(ConvertConfig(v21, out=tmp_path / "kept"))
    convert(ConvertConfig(v21, out=tmp_path / "frames", stats="frames"))
    report = refresh_stats(StatsConfig(tmp_path / "kept"))
    assert report["missing"] == dict.fromkeys(LeRobotDataset(tmp_path / "kept").features, 4)  # quantiles
    restated, computed = (pq.read_table(tmp_path / run / EPISODES_FILE) for run in ("kept", "frames"))
    assert restated.equals(computed, check_metadata=True)  # every column, in the same order
    stats = "meta/stats.json"
    assert (tmp_path / "kept" / stats).read_text() == (tmp_path / "frames" / stats).read_text()


def test_a_video_cameras_statistics_are_those_of_its_frames_as_they_decode(tmp_path):
    pytest.importorskip("av", reason="PyAV is in the dev extra; `make test` installs it")
    root = synthetic_dataset(tmp_path / "ds", image_size=16)
    original = to_video_dataset(root, episodes_per_file=2)  # its statistics: the frames before encoding
    refresh_stats(StatsConfig(root))
    frames = LeRobotDataset(root).read_images(CAM)
    assert not np.array_equal(frames, original)  # encoding moved pixels
    stats = json.loads((root / "meta/stats.json").read_text())[CAM]
    pixels = frames.reshape(-1, 3) / 255
    assert np.allclose(np.ravel(stats["mean"]), pixels.mean(axis=0), rtol=1e-9)
    assert np.allclose(np.ravel(stats["std"]), pixels.std(axis=0), rtol=1e-9)
    assert np.array_equal(np.ravel(stats["min"]), pixels.min(axis=0))
    assert stats["count"] == [len(frames)]


def test_check_writes_nothing(written):
    table = pq.read_table(written / EPISODES_FILE)
    pq.write_table(table.drop_columns(["stats/action/q99"]), written / EPISODES_FILE)
    before = contents(written)
    report = refresh_stats(StatsConfig(written, check=True))
    assert report["missing"] == {"action": 4}
    assert not report["written"] and report["episode_files"] == 0
    assert contents(written) == before


def test_an_interrupted_run_leaves_every_file_whole_and_running_again_finishes(written, monkeypatch):
    split_episodes_file(written, first=2)
    first = pq.read_table(episode_files(written)[0])
    pq.write_table(first.drop_columns(["stats/action/q99"]), episode_files(written)[0])
    second = episode_files(written)[1].read_bytes()
    writes, write = [], pq.write_table

    def write_once(table, where):
        if writes:
            raise KeyboardInterrupt
        writes.append(where)
        write(table, where)

    monkeypatch.setattr(refresh_module.pq, "write_table", write_once)
    with pytest.raises(KeyboardInterrupt):
        refresh_stats(StatsConfig(written))
    monkeypatch.undo()
    assert episode_files(written)[1].read_bytes() == second  # untouched
    names = sorted(p.name for p in (written / "meta/episodes/chunk-000").iterdir())
    assert names == ["file-000.parquet", "file-001.parquet"]  # no temporary file left beside them
    assert "stats/action/q99" in pq.read_schema(episode_files(written)[0]).names  # the first, whole
    LeRobotDataset(written)
    assert refresh_stats(StatsConfig(written, check=True))["missing"] == {}
    refresh_stats(StatsConfig(written))
    schemas = [pq.read_schema(path) for path in episode_files(written)]
    assert schemas[0].equals(schemas[1])


def test_a_dataset_it_cannot_write_to_is_refused_before_any_frame_is_read(written, monkeypatch):
    before = contents(written)
    meta = written / "meta"
    monkeypatch.setattr(refresh_module.os, "access", lambda path, mode: Path(path) != meta)

    def decoded(*args):
        raise AssertionError("frames read")

    monkeypatch.setattr("leanvla.data.episode_stats.episode_stats_from_frames", decoded)
    with pytest.raises(UserError, match=r"meta is not writable: .*pass --check to only report them"):
        refresh_stats(StatsConfig(written))
    assert contents(written) == before


def test_with_statistics_puts_them_where_the_old_ones_were_or_before_the_metadata_file_columns():
    statistics = pa.table({"stats/a/min": [[0.0]], "stats/a/max": [[1.0]]})
    table = pa.table({"episode_index": [0], "stats/a/min": [[5.0]], "length": [3]})
    assert with_statistics(table, statistics).column_names == [
        "episode_index",
        "stats/a/min",
        "stats/a/max",
        "length",
    ]
    assert with_statistics(table, statistics).column("stats/a/min").to_pylist() == [[0.0]]
    none = pa.table({"episode_index": [0], "meta/episodes/chunk_index": [0], "length": [3]})
    assert with_statistics(none, statistics).column_names == [
        "episode_index",
        "stats/a/min",
        "stats/a/max",
        "meta/episodes/chunk_index",
        "length",
    ]


def test_the_command_prints_its_report_and_refuses_a_v21_dataset_in_one_line(written, tmp_path, capsys):
    assert main(["data", "stats", str(written), "--check"]) == 0  # nothing stale
    assert json.loads(capsys.readouterr().out)["written"] is False
    table = pq.read_table(written / EPISODES_FILE)
    pq.write_table(table.drop_columns(["stats/action/q99"]), written / EPISODES_FILE)
    assert main(["data", "stats", str(written), "--check"]) == 1  # as a formatter's --check
    assert json.loads(capsys.readouterr().out)["missing"] == {"action": 4}
    assert main(["data", "stats", str(written)]) == 0  # written
    assert main(["data", "stats", str(written), "--check"]) == 0
    capsys.readouterr()
    v21 = to_v21(written, tmp_path / "v21")
    assert main(["data", "stats", str(v21)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("leanvla data stats: error: ") and "\n" not in error
    assert "codebase_version v2.1" in error and "leanvla data convert" in error


def test_episodes_of_no_frames_are_refused_in_one_line_before_any_frame_is_read(
    tmp_path, capsys, monkeypatch
):
    """A minimum or a quantile of no frames has no value: one line naming the episodes and how to
    remove them, where it was a traceback (an IndexError from the quantiles)."""
    root = without_frames(synthetic_dataset(tmp_path / "ds"), [1])
    LeRobotDataset(root)  # a dataset the reader takes, and training trains on
    before = contents(root)
    assert main(["data", "stats", str(root)]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error
    assert error.endswith(
        ": episode 1 has no frames (length 0 in the metadata), so no statistics from frames; remove it "
        "(LeRobot: lerobot-edit-dataset --operation.type delete_episodes --operation.episode_indices '[1]') "
        "and run it again"
    )
    assert contents(root) == before

    def decoded(*args):
        raise AssertionError("frames read")

    monkeypatch.setattr("leanvla.data.episode_stats.episode_stats_from_frames", decoded)
    without_frames(root, [1, 3])
    with pytest.raises(UserError, match=r"episodes 1, 3 have no frames .* remove them .*'\[1, 3\]'"):
        refresh_stats(StatsConfig(root, check=True))


def test_a_camera_not_rgb_is_refused_before_any_camera_decodes(tmp_path, monkeypatch):
    root = dataset_with(tmp_path / "ds", {"rgb": (16, 16), "depth": (16, 16)})
    declared_shape(root, "observation.images.depth", [16, 16, 1])
    monkeypatch.setattr(LeRobotDataset, "episode_frames", lambda *given: pytest.fail("decoded"))
    with pytest.raises(UserError, match=r"camera 'observation.images.depth' has shape \[16, 16, 1\]"):
        refresh_stats(StatsConfig(root, check=True))
