"""Reading LeRobot's own dataset (written by LeRobot 0.4.4) the way LeRobot does."""

from __future__ import annotations

import io
import json
import os
import re
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from leanvla.data.reader import LeRobotDataset, no_frames_phrase
from leanvla.errors import UserError
from tests.data.helpers import declared_shape, edit_frames, synthetic_dataset


def test_fixture_counts_tasks_and_features(lerobot_fixture):
    ds = LeRobotDataset(lerobot_fixture)
    summary = ds.summary()
    assert summary["episodes"] == 9
    assert summary["frames"] == 679
    assert summary["fps"] == 80
    assert summary["tasks"] == [
        "reach the goal position",
        "close the drawer",
        "press the button from the top",
    ]
    assert summary["features"]["observation.images.corner2"] == {"dtype": "image", "shape": [64, 64, 3]}
    assert ds.episode_column("length") == [84, 57, 54, 88, 88, 89, 76, 73, 70]
    assert ds.read_array("observation.state").shape == (679, 4)
    assert ds.read_array("observation.environment_state").shape == (679, 39)
    assert ds.read_array("action").shape == (679, 4)
    assert np.array_equal(ds.read_array("index"), np.arange(679))


def test_fixture_images_are_pixel_identical_to_stored_pngs(lerobot_fixture):
    ds = LeRobotDataset(lerobot_fixture)
    images = ds.read_images("observation.images.corner2")
    table = pq.read_table(
        lerobot_fixture / "data/chunk-000/file-000.parquet", columns=["observation.images.corner2"]
    )
    blobs = table.column("observation.images.corner2").combine_chunks().field("bytes").to_pylist()
    assert images.shape == (679, 64, 64, 3) and images.dtype == np.uint8
    for i in (0, 83, 84, 400, 678):
        reference = np.asarray(Image.open(io.BytesIO(blobs[i])).convert("RGB"))
        assert np.array_equal(images[i], reference)
    assert images.std() > 10  # real frames, not blank


def test_fixture_task_index_matches_episode_tasks(lerobot_fixture):
    ds = LeRobotDataset(lerobot_fixture)
    task_index = ds.read_array("task_index")
    episode = ds.read_array("episode_index")
    for ep, task in enumerate(ds.episode_tasks()):
        assert {ds.tasks[i] for i in task_index[episode == ep]} == {task}


def _copy(fixture, tmp_path):
    dst = tmp_path / "ds"
    shutil.copytree(fixture, dst)
    return dst


def test_missing_directory_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        LeRobotDataset(tmp_path / "nope")


def test_missing_info_json(lerobot_fixture, tmp_path):
    ds = _copy(lerobot_fixture, tmp_path)
    (ds / "meta/info.json").unlink()
    with pytest.raises(UserError, match="info.json is missing"):
        LeRobotDataset(ds)


def test_missing_parquet_file(lerobot_fixture, tmp_path):
    ds = _copy(lerobot_fixture, tmp_path)
    (ds / "data/chunk-000/file-000.parquet").unlink()
    with pytest.raises(UserError, match=r"data file .*file-000.parquet is missing"):
        LeRobotDataset(ds)


def test_feature_with_wrong_shape(lerobot_fixture, tmp_path):
    ds = _copy(lerobot_fixture, tmp_path)
    info = json.loads((ds / "meta/info.json").read_text())
    info["features"]["observation.state"]["shape"] = [5]
    (ds / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(UserError, match=r"'observation.state' has length \[4\].*declares shape \[5\]"):
        LeRobotDataset(ds).read_array("observation.state")


def test_image_with_wrong_shape(lerobot_fixture, tmp_path):
    ds = _copy(lerobot_fixture, tmp_path)
    info = json.loads((ds / "meta/info.json").read_text())
    info["features"]["observation.images.corner2"]["shape"] = [32, 32, 3]
    (ds / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(UserError, match=r"shape \[64, 64, 3\] but meta/info.json declares \[32, 32, 3\]"):
        LeRobotDataset(ds).read_images("observation.images.corner2")


def _edit_info(ds, **changes):
    info = json.loads((ds / "meta/info.json").read_text())
    for key, value in changes.items():
        if value is None:
            del info[key]
        else:
            info[key] = value
    (ds / "meta/info.json").write_text(json.dumps(info))


def _rewrite_tasks(ds, **columns):
    pq.write_table(pa.table(columns), ds / "meta/tasks.parquet")


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda ds: (ds / "meta/info.json").write_text("{codebase"), r"info.json is not valid JSON \("),
        (lambda ds: _edit_info(ds, codebase_version="v2.1"), "says codebase_version v2.1; leanvla reads"),
        (
            lambda ds: _edit_info(ds, codebase_version="v4.0"),
            "v3.x: write it as v3.0, or see whether a newer",
        ),
        (
            lambda ds: _edit_info(ds, fps="80"),
            'info.json: fps must be a positive number of frames per second, got "80"$',
        ),
        (lambda ds: (ds / "meta/info.json").write_text("[]"), "info.json must hold a JSON object, not list$"),
        (
            lambda ds: _edit_info(ds, fps=None),
            "info.json has no 'fps' entry; the dataset metadata is incomplete",
        ),
        (
            lambda ds: _edit_info(ds, total_episodes=10),
            r"lists 9 episodes but meta/info.json says total_episodes=10",
        ),
        (
            lambda ds: (ds / "meta/tasks.parquet").unlink(),
            "tasks.parquet is missing; the dataset has no task table",
        ),
        (
            lambda ds: _rewrite_tasks(ds, name=["a"], task_index=[0]),
            "expected task_index and the task string",
        ),
        (
            lambda ds: _rewrite_tasks(ds, task=["a", "b"], task_index=[0, 2]),
            r"task_index values \[0, 2\] are not 0..1",
        ),
        (lambda ds: shutil.rmtree(ds / "meta/episodes"), "holds no chunk-\\*/file-\\*.parquet"),
        # Cut short (a copy interrupted): these two were ArrowInvalid tracebacks.
        (
            lambda ds: os.truncate(ds / "meta/tasks.parquet", 100),
            "^cannot read .*meta/tasks.parquet: .*Parquet magic bytes not found in footer",
        ),
        (
            lambda ds: os.truncate(ds / "meta/episodes/chunk-000/file-000.parquet", 300),
            "^cannot read .*meta/episodes/chunk-000/file-000.parquet: .*Parquet magic bytes not found",
        ),
    ],
)
def test_corrupt_metadata_is_one_clear_error(lerobot_fixture, tmp_path, corrupt, message):
    ds = _copy(lerobot_fixture, tmp_path)
    corrupt(ds)
    with pytest.raises(UserError, match=message):
        LeRobotDataset(ds)


def test_frames_that_do_not_match_the_metadata_are_one_clear_error(lerobot_fixture, tmp_path):
    ds = _copy(lerobot_fixture, tmp_path)
    _edit_info(ds, total_frames=680)
    with pytest.raises(
        UserError, match="data files hold 679 frames but meta/info.json says total_frames=680"
    ):
        LeRobotDataset(ds).read_array("action")
    with pytest.raises(
        UserError, match="data files hold 679 frames but meta/info.json says total_frames=680"
    ):
        LeRobotDataset(ds).read_images("observation.images.corner2")  # before any frame decodes
    ds = _copy(lerobot_fixture, tmp_path / "garbled")
    (ds / "data/chunk-000/file-000.parquet").write_bytes(b"not parquet")
    with pytest.raises(UserError, match=r"cannot read .*file-000.parquet: "):
        LeRobotDataset(ds).read_array("action")
    with pytest.raises(UserError, match=r"cannot read .*file-000.parquet: "):
        LeRobotDataset(ds).read_images("observation.images.corner2")
    ds = _copy(lerobot_fixture, tmp_path / "scalar")
    info = json.loads((ds / "meta/info.json").read_text())
    info["features"]["timestamp"]["shape"] = [2]
    (ds / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(
        UserError, match=r"'timestamp' is a scalar column in the data but meta/info.json declares shape \[2\]"
    ):
        LeRobotDataset(ds).read_array("timestamp")


def test_asking_for_what_the_dataset_lacks_is_one_clear_error(lerobot_fixture):
    ds = LeRobotDataset(lerobot_fixture)
    with pytest.raises(UserError, match="the episodes metadata has no column 'success'"):
        ds.episode_column("success")
    with pytest.raises(UserError, match="feature 'observation.wrist' is not in meta/info.json"):
        ds.read_table(["action", "observation.wrist"])
    with pytest.raises(UserError, match="no feature 'observation.wrist' \\(it has"):
        ds.read_array("observation.wrist")
    with pytest.raises(UserError, match="'observation.images.corner2' is an image feature; use read_images"):
        ds.read_array("observation.images.corner2")
    with pytest.raises(
        UserError,
        match="'action' is not an image or video feature \\(cameras: \\['observation.images.corner2'\\]\\)",
    ):
        ds.read_images("action")


@pytest.mark.parametrize("shape", [[16, 16, 1], [16, 16], [16, 16, 4]], ids=["gray", "no-channels", "rgba"])
def test_a_camera_not_rgb_is_one_line_before_any_frame_decodes(tmp_path, shape):
    """Frames decode as RGB and policies see 3 channels: a depth or grayscale camera is named, with
    its shape, where reading it would fail on a shape no one declared (or read a wrong one)."""
    root = declared_shape(synthetic_dataset(tmp_path / "ds"), "observation.images.cam", shape)
    ds = LeRobotDataset(root)  # the dataset itself opens (`leanvla info`)
    message = (
        f"camera 'observation.images.cam' has shape {shape} in meta/info.json; leanvla reads RGB cameras"
    )
    with pytest.raises(UserError, match=re.escape(message)):
        ds.read_images("observation.images.cam")
    with pytest.raises(UserError, match=re.escape(message)):
        next(ds.episode_frames("observation.images.cam"))


def test_png_frames_are_read_a_batch_at_a_time_across_data_files_and_equal_each_png_decoded(
    tmp_path, monkeypatch
):
    import tracemalloc

    from leanvla.data.format import image_feature
    from leanvla.data.writer import LeRobotWriter

    key = "observation.images.cam"
    features = {key: image_feature(64, 64), "action": {"dtype": "float32", "shape": [2], "names": None}}
    writer = LeRobotWriter(tmp_path / "ds", fps=10, features=features, data_files_size_in_mb=1e-6)
    rng = np.random.default_rng(0)
    for length in (20, 30, 25):  # a data file each
        frames = rng.integers(0, 256, (length, 64, 64, 3), dtype=np.uint8)  # noise: PNG cannot shrink it
        writer.add_episode("task", {key: frames, "action": np.zeros((length, 2), np.float32)})
    writer.finalize()
    dataset = LeRobotDataset(tmp_path / "ds")
    assert len(dataset.data_files) == 3
    blobs = dataset.read_table([key]).column(key).combine_chunks().field("bytes").to_pylist()
    reference = np.stack([np.asarray(Image.open(io.BytesIO(blob)).convert("RGB")) for blob in blobs])
    monkeypatch.setattr("leanvla.data.resize.BATCH", 5)  # batches across the files' ends
    # three threads: the batches of 3-5 frames decode in slices of 1-2
    monkeypatch.setattr("leanvla.data.reader.cores_per_process", lambda: 3)
    # Some rows of every batch; then the first episode left out (as train --episodes may), whole
    # batches keeping none of their frames.
    for rows in (np.arange(75) % 3 != 1, np.arange(75) >= 20):
        assert np.array_equal(dataset.read_images(key, rows=rows), reference[rows])
    out = np.empty_like(reference)
    tracemalloc.start()
    dataset._decode_images(key, False, None, None, "pad", out)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert np.array_equal(out, reference)
    assert peak < sum(map(len, blobs)) / 2  # a batch's PNGs held, not the camera's


def test_episode_frames_are_each_episodes_frames_of_one_pass_over_the_pngs(tmp_path, monkeypatch):
    key = "observation.images.cam"
    dataset = LeRobotDataset(synthetic_dataset(tmp_path / "ds", lengths=(6, 4, 9, 5)))  # one data file
    every = dataset.read_images(key)
    monkeypatch.setattr("leanvla.data.resize.BATCH", 5)  # batches across episodes' ends
    passes = []
    monkeypatch.setattr(dataset, "_png_batches", record_calls(dataset._png_batches, passes))
    yielded = list(dataset.episode_frames(key))
    assert [episode for episode, _ in yielded] == [0, 1, 2, 3]
    assert [len(frames) for _, frames in yielded] == [6, 4, 9, 5]
    assert np.array_equal(np.concatenate([frames for _, frames in yielded]), every)
    assert len(passes) == 1  # the data files read once, not once an episode


def record_calls(function, calls: list):
    """`function`, noting each call's arguments in `calls`."""

    def noted(*args, **kwargs):
        calls.append((args, kwargs))
        return function(*args, **kwargs)

    return noted


def test_a_damaged_page_or_image_in_a_data_file_is_one_clear_error(lerobot_fixture, tmp_path):
    key = "observation.images.corner2"
    name = "data/chunk-000/file-000.parquet"
    column = next(
        chunk
        for chunk in (
            pq.ParquetFile(lerobot_fixture / name).metadata.row_group(0).column(i) for i in range(10)
        )
        if chunk.path_in_schema == f"{key}.bytes"
    )
    for damaged, at, message in (
        ("page", column.data_page_offset, r"cannot read .*file-000.parquet: [^\n]*page header failed\.$"),
        (
            "image",
            (column.dictionary_page_offset + column.data_page_offset) // 2,
            rf"image \d+ of '{key}' cannot be decoded .*the dataset is damaged",
        ),
    ):
        ds = _copy(lerobot_fixture, tmp_path / damaged)
        data = bytearray((ds / name).read_bytes())
        data[at : at + 16] = b"\xff" * 16  # the footer intact: the frame count still reads
        (ds / name).write_bytes(bytes(data))
        with pytest.raises(UserError, match=message):
            LeRobotDataset(ds).read_images(key)


def _png_dataset(root, blobs: list[bytes]) -> LeRobotDataset:
    """A one-episode dataset whose camera's frames are these PNGs."""
    from leanvla.data.format import image_feature
    from leanvla.data.writer import LeRobotWriter

    features = {
        "observation.images.cam": image_feature(8, 8),
        "action": {"dtype": "float32", "shape": [2], "names": None},
    }
    writer = LeRobotWriter(root, fps=10, features=features)
    writer.add_episode(
        "task", {"observation.images.cam": blobs, "action": np.zeros((len(blobs), 2), np.float32)}
    )
    writer.finalize()
    return LeRobotDataset(root)


def _png(value: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(out, format="PNG")
    return out.getvalue()


def test_pngs_decode_side_by_side_on_threads(tmp_path, monkeypatch):
    import itertools
    import threading

    from leanvla.data import reader

    dataset = _png_dataset(tmp_path / "ds", [_png(v) for v in range(12)])
    together = threading.Barrier(2, timeout=5)  # the first two decodes pass it only if they run at once
    calls = itertools.count()
    alone = reader.decode_png

    def decode_png(data):
        if next(calls) < 2:
            try:
                together.wait()
            except threading.BrokenBarrierError:
                pass
        return alone(data)

    monkeypatch.setattr(reader, "decode_png", decode_png)
    monkeypatch.setattr(reader, "cores_per_process", lambda: 2)
    frames = dataset.read_images("observation.images.cam")
    assert not together.broken
    assert [int(f[0, 0, 0]) for f in frames] == list(range(12))
    monkeypatch.setattr(reader, "cores_per_process", lambda: 64)  # more threads than frames
    assert np.array_equal(dataset.read_images("observation.images.cam"), frames)


def test_the_first_damaged_png_in_order_is_named_though_a_later_one_fails_sooner(tmp_path, monkeypatch):
    import time

    from leanvla.data import reader

    blobs = [_png(v) for v in range(12)]
    dataset = _png_dataset(tmp_path / "ds", blobs)
    alone = reader.decode_png

    def decode_png(data):
        if data == blobs[6]:
            time.sleep(0.3)  # image 9, in the same batch, fails first
        return alone(b"damaged" if data in (blobs[6], blobs[9]) else data)

    monkeypatch.setattr(reader, "decode_png", decode_png)
    monkeypatch.setattr(reader, "cores_per_process", lambda: 4)
    monkeypatch.setattr("leanvla.data.resize.BATCH", 5)  # images 5-9 are the second batch
    with pytest.raises(UserError, match="image 6 of 'observation.images.cam' cannot be decoded"):
        dataset.read_images("observation.images.cam")


def test_episodes_of_no_frames_are_named_in_one_phrase():
    assert no_frames_phrase([0, 1, 2], [3, 4, 5]) == ""
    assert no_frames_phrase([4, 7], [0, 2]) == "episode 4 has no frames (length 0 in the metadata)"
    assert no_frames_phrase(list(range(3, 15)), [0] * 12) == (
        "episodes 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, ... have no frames (length 0 in the metadata)"
    )


def test_an_episode_length_that_disagrees_with_its_span_is_one_line(tmp_path):
    """The readers find an episode's frames by its length: one edited out of step with its frame
    indices is refused on opening (synthetic lengths 6, 4, 9, 5)."""
    root = synthetic_dataset(tmp_path / "ds")
    (episodes_file,) = (root / "meta/episodes").rglob("*.parquet")
    meta = pq.read_table(episodes_file)
    lengths = meta.column("length").to_pylist()
    lengths[1] += 1
    at = meta.column_names.index("length")
    pq.write_table(meta.set_column(at, "length", pa.array(lengths, pa.int64())), episodes_file)
    with pytest.raises(
        UserError,
        match=r"meta/episodes: episode 1 has length 5 but its dataset_from_index and dataset_to_index "
        r"\(6, 10\) span 4 frames; the episodes metadata disagrees with itself \(was it edited\?\)$",
    ):
        LeRobotDataset(root).episode_tasks()


@pytest.mark.skipif(
    int(pa.__version__.split(".")[0]) < 26,
    reason="pyarrow before 26 cannot read a null frame of a fixed-size list (its refusal is then "
    "`cannot read FILE: Expected all lists to be of size=4 ...`, one line too) and before 25 cannot "
    "write one",
)
def test_a_frame_without_a_value_is_one_line_naming_it(lerobot_fixture, tmp_path):
    ds = _copy(lerobot_fixture, tmp_path)
    row = LeRobotDataset(ds).episode_column("length")[0] + 1  # episode 1's frame 1
    edit_frames(ds, "action", lambda rows: [*rows[:row], None, *rows[row + 1 :]])
    message = r"'action' has no value \(null\) in episode 1, frame 1 \(1 such frame\): repair the recording"
    with pytest.raises(UserError, match=message):
        LeRobotDataset(ds).read_array("action")
    ds = _copy(lerobot_fixture, tmp_path / "inside")  # a null inside a frame's vector
    edit_frames(
        ds, "observation.state", lambda rows: [*rows[:3], [0.0, None, 0.0, 0.0], [None] * 4, *rows[5:]]
    )
    with pytest.raises(
        UserError, match=r"'observation.state' has no value \(null\) in episode 0, frame 3 \(2 such frames\)"
    ):
        LeRobotDataset(ds).read_array("observation.state")
