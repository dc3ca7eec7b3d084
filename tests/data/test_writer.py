"""What leanvla writes reads back identically and follows LeRobot's layout."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from leanvla.data.reader import LeRobotDataset
from leanvla.data.stats import image_stats, vector_stats
from leanvla.data.writer import EncodedImages, LeRobotWriter, encode_png

FEATURES = {
    "observation.images.cam": {
        "dtype": "image",
        "shape": [16, 16, 3],
        "names": ["height", "width", "channels"],
    },
    "observation.state": {"dtype": "float32", "shape": [4], "names": ["x", "y", "z", "gripper"]},
    "action": {"dtype": "float32", "shape": [4], "names": ["dx", "dy", "dz", "grip"]},
}


def _episodes(rng):
    eps = []
    for length, task in [
        (7, "reach the goal position"),
        (5, "close the drawer"),
        (9, "reach the goal position"),
    ]:
        eps.append(
            (
                task,
                {
                    "observation.images.cam": rng.integers(0, 256, (length, 16, 16, 3), dtype=np.uint8),
                    "observation.state": rng.normal(size=(length, 4)).astype(np.float32),
                    "action": rng.uniform(-1, 1, size=(length, 4)).astype(np.float32),
                },
            )
        )
    return eps


@pytest.fixture
def written(tmp_path):
    rng = np.random.default_rng(0)
    eps = _episodes(rng)
    writer = LeRobotWriter(tmp_path / "ds", fps=80, features=FEATURES, robot_type="sawyer")
    for i, (task, frames) in enumerate(eps):
        writer.add_episode(task, frames, extra={"metaworld/seed": i, "metaworld/positions": [0.1 * i, 0.2]})
    writer.finalize()
    return tmp_path / "ds", eps


def test_round_trip_is_identical(written):
    root, eps = written
    ds = LeRobotDataset(root)
    assert ds.num_episodes == 3 and ds.num_frames == 21
    assert ds.tasks == ["reach the goal position", "close the drawer"]
    assert ds.episode_tasks() == [task for task, _ in eps]
    for key in ("observation.state", "action"):
        assert np.array_equal(ds.read_array(key), np.concatenate([f[key] for _, f in eps]))
    assert np.array_equal(
        ds.read_images("observation.images.cam"),
        np.concatenate([f["observation.images.cam"] for _, f in eps]),
    )
    assert np.array_equal(ds.read_array("episode_index"), np.repeat([0, 1, 2], [7, 5, 9]))
    assert np.array_equal(ds.read_array("task_index"), np.repeat([0, 1, 0], [7, 5, 9]))
    frames = np.concatenate([np.arange(7), np.arange(5), np.arange(9)])
    assert np.array_equal(ds.read_array("frame_index"), frames)
    assert np.array_equal(ds.read_array("index"), np.arange(21))  # global: it runs on across episodes
    assert np.allclose(ds.read_array("timestamp"), frames / 80)  # from each episode's start
    assert ds.episode_column("metaworld/positions")[2] == [0.2, 0.2]


def test_layout_and_keys_follow_lerobot(written, lerobot_fixture):
    root, _ = written
    ours = json.loads((root / "meta/info.json").read_text())
    theirs = json.loads((lerobot_fixture / "meta/info.json").read_text())
    assert list(ours) == list(theirs)
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert ours["features"][key] == theirs["features"][key]
    assert (root / "data/chunk-000/file-000.parquet").is_file()
    assert (root / "meta/episodes/chunk-000/file-000.parquet").is_file()
    # data columns: same Arrow types as LeRobot's for the same kinds of feature
    ours_schema = pq.read_schema(root / "data/chunk-000/file-000.parquet")
    theirs_schema = pq.read_schema(lerobot_fixture / "data/chunk-000/file-000.parquet")
    assert (
        ours_schema.field("observation.images.cam").type
        == theirs_schema.field("observation.images.corner2").type
    )
    assert ours_schema.field("observation.state").type == theirs_schema.field("observation.state").type
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert ours_schema.field(key).type == theirs_schema.field(key).type
    assert (
        json.loads(ours_schema.metadata[b"huggingface"])["info"]["features"]["observation.state"]
        == json.loads(theirs_schema.metadata[b"huggingface"])["info"]["features"]["observation.state"]
    )
    # tasks parquet: the task string is the pandas index, as LeRobot writes it
    assert (
        pq.read_schema(root / "meta/tasks.parquet").names
        == pq.read_schema(lerobot_fixture / "meta/tasks.parquet").names
    )
    assert json.loads(pq.read_schema(root / "meta/tasks.parquet").metadata[b"pandas"])["index_columns"] == [
        "__index_level_0__"
    ]
    # episodes metadata carries every column LeRobot's has, for the features both datasets share
    ours_cols = set(pq.read_schema(root / "meta/episodes/chunk-000/file-000.parquet").names)
    theirs_cols = {
        c.replace("corner2", "cam")
        for c in pq.read_schema(lerobot_fixture / "meta/episodes/chunk-000/file-000.parquet").names
        if "environment_state" not in c
    }
    assert theirs_cols <= ours_cols
    assert set(json.loads((root / "meta/stats.json").read_text())) == set(ours["features"])


def test_dataset_stats_equal_stats_over_all_frames(written):
    root, eps = written
    stats = json.loads((root / "meta/stats.json").read_text())
    actions = np.concatenate([f["action"] for _, f in eps])
    direct = vector_stats(actions)
    for name in ("min", "max", "mean", "std"):
        assert np.allclose(stats["action"][name], direct[name], atol=1e-6), name
    assert stats["action"]["count"] == [21]
    assert np.asarray(stats["observation.images.cam"]["mean"]).shape == (3, 1, 1)


def episode_stats(root, key: str) -> list[dict]:
    """Each episode's statistics of one feature, as written into meta/episodes."""
    ds = LeRobotDataset(root)
    names = [c for c in ds.episodes.column_names if c.startswith(f"stats/{key}/")]
    return [{n: ds.episode_column(n)[e] for n in names} for e in range(ds.num_episodes)]


def png_at_level_9(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=9)
    return buf.getvalue()


def test_images_given_as_arrays_as_pngs_or_encoded_are_written_alike(written, tmp_path):
    root, eps = written
    key = "observation.images.cam"
    pngs = [[png_at_level_9(image) for image in frames[key]] for _, frames in eps]  # not as leanvla encodes
    for name, form in [
        ("pngs", lambda e: pngs[e]),
        ("encoded", lambda e: EncodedImages.of(eps[e][1][key], pngs[e])),
        ("encoded, its first frames", lambda e: EncodedImages.of(eps[e][1][key], pngs[e])[:3]),
    ]:
        writer = LeRobotWriter(tmp_path / name, fps=80, features=FEATURES, robot_type="sawyer")
        for e, (task, frames) in enumerate(eps):
            kept = len(form(e))
            writer.add_episode(task, {k: v[:kept] for k, v in frames.items()} | {key: form(e)})
        writer.finalize()
        expected = [image_stats(frames[key][: len(form(e))]) for e, (_, frames) in enumerate(eps)]
        for ours, reference in zip(episode_stats(tmp_path / name, key), expected):
            for stat, value in reference.items():  # exactly those of every pixel of the frames
                assert np.array_equal(ours[f"stats/{key}/{stat}"], value.tolist()), (name, stat)
        assert np.array_equal(LeRobotDataset(tmp_path / name).read_images(key)[:3], eps[0][1][key][:3])
    assert episode_stats(tmp_path / "pngs", key) == episode_stats(root, key)
    for name in ("pngs", "encoded"):  # the PNGs as given, not encoded again
        table = pq.read_table(next((tmp_path / name / "data").rglob("*.parquet")), columns=[key])
        assert table.column(key).combine_chunks().field("bytes").to_pylist()[:7] == pngs[0]
    assert pngs[0][0] != encode_png(eps[0][1][key][0])


def test_encoded_images_of_another_shape_are_refused(tmp_path):
    writer = LeRobotWriter(tmp_path / "ds", fps=80, features=FEATURES)
    frames = _episodes(np.random.default_rng(0))[0][1]
    frames["observation.images.cam"] = EncodedImages.of(np.zeros((7, 8, 16, 3), np.uint8))
    with pytest.raises(ValueError, match=r"'observation.images.cam' has shape \[8, 16, 3\], info declares"):
        writer.add_episode("t", frames)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"observation.images.cam": np.zeros((7, 16, 16, 3), np.float32)},
            r"^image feature 'observation.images.cam' has float32 frames of shape \[16, 16, 3\]; info declares "
            r"uint8 frames of \[16, 16, 3\] \(height, width, channels; 0-255\)$",
        ),
        (
            {"observation.images.cam": np.zeros((7, 3, 16, 16), np.uint8)},  # channels first
            r"^image feature 'observation.images.cam' has uint8 frames of shape \[3, 16, 16\]; info declares",
        ),
        (
            {"observation.extra": np.zeros((7, 2), np.float32)},
            r"^episode has features \['observation.extra'\] that the dataset does not declare; add them to "
            "LeRobotWriter's features, or leave them out$",
        ),
        (
            {"timestamp": np.arange(7, dtype=np.float32) / 30, "frame_index": np.arange(7)},
            r"^episode gives \['frame_index', 'timestamp'\], which the writer fills itself \(timestamp = "
            r"frame_index / fps, the indices in order\); leave them out$",
        ),
    ],
)
def test_frames_the_features_do_not_describe_are_refused_and_the_writer_goes_on(tmp_path, change, message):
    writer = LeRobotWriter(tmp_path / "ds", fps=80, features=FEATURES)
    task, frames = _episodes(np.random.default_rng(0))[0]
    with pytest.raises(ValueError, match=message):
        writer.add_episode(task, {**frames, **change})
    writer.add_episode(task, frames)
    writer.finalize()
    assert LeRobotDataset(tmp_path / "ds").num_episodes == 1


def test_extra_columns_of_the_writers_own_names_are_refused_before_anything_is_written(tmp_path):
    from leanvla.data.writer import EPISODE_COLUMNS

    writer = LeRobotWriter(tmp_path / "ds", fps=80, features=FEATURES)
    task, frames = _episodes(np.random.default_rng(0))[0]
    for taken in ({"length": 3}, {"tasks": ["other"]}, {"stats/action/mean": [0.0] * 4}):
        with pytest.raises(
            ValueError, match=rf"^extra columns \['{re.escape(next(iter(taken)))}'\] are the writer's own"
        ):
            writer.add_episode(task, frames, extra=taken)
    writer.add_episode(task, frames, extra={"robot/serial": "A7"})
    writer.finalize()
    dataset = LeRobotDataset(tmp_path / "ds")  # the refused ones left no rows behind
    assert dataset.num_frames == len(frames["action"]) and dataset.episode_column("robot/serial") == ["A7"]
    own = {c for c in dataset.episodes.column_names if not c.startswith("stats/")} - {"robot/serial"}
    assert own == set(EPISODE_COLUMNS)  # every column the writer fills is one an extra may not take


def test_data_files_roll_over_and_read_back(tmp_path):
    rng = np.random.default_rng(1)
    eps = _episodes(rng)
    writer = LeRobotWriter(tmp_path / "ds", fps=80, features=FEATURES, data_files_size_in_mb=1e-6)
    for task, frames in eps:
        writer.add_episode(task, frames)
    writer.finalize()
    assert len(list((tmp_path / "ds/data").glob("chunk-*/file-*.parquet"))) == 3
    ds = LeRobotDataset(tmp_path / "ds")
    assert np.array_equal(ds.read_array("action"), np.concatenate([f["action"] for _, f in eps]))


def test_wrong_dim_is_rejected(tmp_path):
    writer = LeRobotWriter(tmp_path / "ds", fps=80, features=FEATURES)
    frames = _episodes(np.random.default_rng(0))[0][1]
    frames["action"] = np.zeros((7, 5), np.float32)
    with pytest.raises(ValueError, match="'action' has dim 5"):
        writer.add_episode("t", frames)


def test_a_directory_holding_files_is_refused_and_left_as_it_was(tmp_path):
    (tmp_path / "ds").mkdir()
    LeRobotWriter(tmp_path / "ds", fps=80, features=FEATURES)  # empty: taken
    (tmp_path / "ds/notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="ds is not empty; LeRobotWriter writes a new dataset"):
        LeRobotWriter(tmp_path / "ds", fps=80, features=FEATURES)
    assert [p.name for p in (tmp_path / "ds").iterdir()] == ["notes.txt"]


STATE = {"dtype": "float32", "shape": [4], "names": None}


@pytest.mark.parametrize(
    "options, message",
    [
        ({"fps": 0}, "fps must be a positive number of frames per second, got 0"),
        ({"fps": "30"}, "fps must be a positive number of frames per second, got '30'"),
        ({"robot_type": 3}, "robot_type must be a string or None, got 3"),
        (
            {"features": {"s": {**STATE, "dtype": "complex64"}}},
            "feature 's' has dtype 'complex64'; the writer writes image",
        ),
        ({"features": {"s": {"shape": [4]}}}, "feature 's' has dtype None; the writer writes image"),
        (
            {"features": {"s": {**STATE, "shape": "4"}}},
            "feature 's' must have a shape of whole numbers >= 1, got '4'",
        ),
        (
            {"features": {"s": {**STATE, "shape": [4, 0]}}},
            "feature 's' must have a shape of whole numbers >= 1, got [4, 0]",
        ),
        (
            {"features": {"s": {**STATE, "shape": [True]}}},
            "feature 's' must have a shape of whole numbers >= 1, got [True]",
        ),
        (
            {"features": {"timestamp": {**STATE, "shape": [1]}}},
            "feature 'timestamp' is one the writer fills itself (timestamp,",
        ),
    ],
)
def test_a_setting_the_writer_cannot_write_is_refused_before_anything_is_written(tmp_path, options, message):
    # each was a KeyError or a TypeError mid-write, or (fps 0) a dataset no reader opens
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        LeRobotWriter(tmp_path / "ds", **{"fps": 80, "features": FEATURES, **options})
    assert not (tmp_path / "ds").exists()
    # a camera's rate; a shape as numpy gives it, written as LeRobot's list of ints
    writer = LeRobotWriter(
        tmp_path / "ds", fps=29.97, features={"action": {**STATE, "shape": (np.int64(4),)}}
    )
    writer.add_episode("t", {"action": np.zeros((3, 4), np.float32)})
    writer.finalize()
    assert json.loads((tmp_path / "ds/meta/info.json").read_text())["features"]["action"]["shape"] == [4]


@pytest.mark.parametrize("task", [None, 3, ["pick"]])
def test_a_task_that_is_not_a_string_is_refused(tmp_path, task):
    writer = LeRobotWriter(tmp_path / "ds", fps=80, features=FEATURES)
    task_given, frames = _episodes(np.random.default_rng(0))[0]
    with pytest.raises(
        ValueError, match=f"^task must be a string, the episode's instruction; got {re.escape(repr(task))}$"
    ):
        writer.add_episode(task, frames)
    writer.add_episode(task_given, frames)
    writer.finalize()
    assert LeRobotDataset(tmp_path / "ds").tasks == [task_given]


def test_an_episode_of_no_frames_is_refused_and_the_writer_goes_on(tmp_path):
    eps = _episodes(np.random.default_rng(0))
    writer = LeRobotWriter(tmp_path / "ds", fps=80, features=FEATURES)
    task, frames = eps[0]
    with pytest.raises(ValueError, match="episode has no frames"):
        writer.add_episode(task, {key: values[:0] for key, values in frames.items()})
    writer.add_episode(task, frames)
    writer.finalize()
    assert LeRobotDataset(tmp_path / "ds").num_episodes == 1


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_a_value_that_is_not_finite_is_refused_and_the_episode_not_written(tmp_path, bad):
    """The reader refuses a dataset holding one; the writer refuses it first, naming where it is."""
    eps = _episodes(np.random.default_rng(0))
    writer = LeRobotWriter(tmp_path / "ds", fps=80, features=FEATURES)
    writer.add_episode(*eps[0])
    task, frames = eps[1]
    frames["observation.state"][3, 2] = frames["observation.state"][4, 0] = bad
    with pytest.raises(
        ValueError,
        match=rf"'observation.state' is {bad} at frame 3, dimension 2 of this episode \(2 such values\)",
    ):
        writer.add_episode(task, frames)
    writer.add_episode(*eps[2])  # the writer goes on as if the refused episode had not come
    writer.finalize()
    written = LeRobotDataset(tmp_path / "ds")
    assert written.num_episodes == 2 and written.num_frames == 7 + 9
    assert written.tasks == ["reach the goal position"]  # the refused episode's task is not listed
    expected = np.concatenate([eps[0][1]["observation.state"], eps[2][1]["observation.state"]])
    assert np.array_equal(written.read_array("observation.state"), expected)
