"""Datasets whose cameras are stored as mp4 (LeRobot's default) read frame-accurately."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leanvla.data.reader import LeRobotDataset
from tests.data.helpers import dataset_with, synthetic_dataset

av = pytest.importorskip("av", reason="PyAV is in the dev extra; `make test` installs it")


def _to_video_dataset(root, key="observation.images.cam"):
    """Move an image feature of a parquet dataset into one mp4 file, as LeRobot v3 stores video."""
    ds = LeRobotDataset(root)
    frames = ds.read_images(key)
    fps = ds.fps
    path = root / f"videos/{key}/chunk-000/file-000.mp4"
    path.parent.mkdir(parents=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv444p"
        stream.options = {"crf": "0"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    info = json.loads((root / "meta/info.json").read_text())
    info["features"][key]["dtype"] = "video"
    info["video_path"] = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    (root / "meta/info.json").write_text(json.dumps(info))
    ep_path = root / "meta/episodes/chunk-000/file-000.parquet"
    episodes = pq.read_table(ep_path)
    lengths = np.asarray(episodes.column("length").to_pylist())
    start = np.r_[0, np.cumsum(lengths)[:-1]] / fps
    n = episodes.num_rows
    for name, values in [
        ("chunk_index", [0] * n),
        ("file_index", [0] * n),
        ("from_timestamp", start.tolist()),
        ("to_timestamp", (start + lengths / fps).tolist()),
    ]:
        episodes = episodes.append_column(f"videos/{key}/{name}", pa.array(values))
    pq.write_table(episodes, ep_path)
    return frames


def test_video_frames_match_the_encoded_images(tmp_path):
    root = synthetic_dataset(tmp_path / "ds", image_size=32)
    original = _to_video_dataset(root)
    decoded = LeRobotDataset(root).read_images("observation.images.cam")
    assert decoded.shape == original.shape
    rows = np.arange(len(decoded)) % 3 == 1  # a subset of the frames, as ChunkDataset asks for
    assert np.array_equal(
        LeRobotDataset(root).read_images("observation.images.cam", rows=rows), decoded[rows]
    )
    # lossless H.264 in YUV 4:4:4: only the RGB <-> YUV rounding remains
    assert np.abs(decoded.astype(int) - original.astype(int)).mean() < 2.0
    # frame-accurate: each decoded frame is closest to its own original
    dists = np.abs(decoded[:, None].astype(int) - original[None].astype(int)).mean(axis=(2, 3, 4))
    assert np.array_equal(dists.argmin(1), np.arange(len(original)))


def test_a_missing_video_file_is_one_clear_error(tmp_path):
    from leanvla.errors import UserError

    root = synthetic_dataset(tmp_path / "ds", image_size=16)
    _to_video_dataset(root)
    video = root / "videos/observation.images.cam/chunk-000/file-000.mp4"
    video.unlink()
    with pytest.raises(
        UserError, match=f"video file {video} is missing \\(episode 0 of 'observation.images.cam'"
    ):
        LeRobotDataset(root).read_images("observation.images.cam")


def test_video_frames_are_fitted_a_few_at_a_time_as_one_call_fits_them_all(tmp_path, monkeypatch):
    import leanvla.data.resize
    from leanvla.data.resize import fit_square

    root = synthetic_dataset(tmp_path / "ds", image_size=16)
    _to_video_dataset(root)
    full = LeRobotDataset(root).read_images("observation.images.cam")
    monkeypatch.setattr(leanvla.data.resize, "BATCH", 3)  # several batches, the last one short
    rows = np.arange(len(full)) % 3 != 1
    fitted = LeRobotDataset(root).read_images("observation.images.cam", rows=rows, size=8)
    assert np.array_equal(fitted, fit_square(full, 8)[rows])


def test_video_frames_are_cropped_when_asked(tmp_path):
    from leanvla.data.resize import fit_square

    root = dataset_with(tmp_path / "ds", {"cam": (12, 20)})
    _to_video_dataset(root)
    full = LeRobotDataset(root).read_images("observation.images.cam")
    cropped = LeRobotDataset(root).read_images("observation.images.cam", size=8, fit="crop")
    assert np.array_equal(cropped, fit_square(full, 8, "crop"))
    assert not np.array_equal(cropped, fit_square(full, 8))
