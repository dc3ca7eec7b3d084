"""Small LeRobotDatasets written by LeRobotWriter, for tests that need no simulator."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from leanvla.data.format import image_feature
from leanvla.data.reader import LeRobotDataset
from leanvla.data.writer import LeRobotWriter


def synthetic_dataset(
    root: Path,
    lengths=(6, 4, 9, 5),
    tasks=("task a", "task b", "task a", "task c"),
    image_size: int = 16,
    seed: int = 0,
    **writer_options,
) -> Path:
    """Episodes whose action at frame f of episode e is (e, f, 0, 0): chunks are easy to check.
    `writer_options` go to LeRobotWriter (chunks_size, data_files_size_in_mb)."""
    rng = np.random.default_rng(seed)
    features = {
        "observation.images.cam": image_feature(image_size, image_size),
        "observation.state": {"dtype": "float32", "shape": [4], "names": None},
        "action": {"dtype": "float32", "shape": [4], "names": None},
    }
    writer = LeRobotWriter(root, fps=10, features=features, **writer_options)
    for e, (length, task) in enumerate(zip(lengths, tasks)):
        action = np.zeros((length, 4), np.float32)
        action[:, 0], action[:, 1] = e, np.arange(length)
        writer.add_episode(
            task,
            {
                "observation.images.cam": rng.integers(
                    0, 256, (length, image_size, image_size, 3), dtype=np.uint8
                ),
                "observation.state": rng.normal(size=(length, 4)).astype(np.float32),
                "action": action,
            },
            extra={"metaworld/positions": [float(e), 0.5]},
        )
    writer.finalize()
    return root


def dataset_with(
    root: Path, cameras: dict[str, tuple[int, int]], state_dim: int | None = 4, fps: int = 10
) -> Path:
    """Two short episodes of random images from the given cameras (name -> height, width), with a
    state of the given size."""
    features = {f"observation.images.{name}": image_feature(h, w) for name, (h, w) in cameras.items()}
    if state_dim is not None:
        features["observation.state"] = {"dtype": "float32", "shape": [state_dim], "names": None}
    features["action"] = {"dtype": "float32", "shape": [4], "names": None}
    writer = LeRobotWriter(root, fps=fps, features=features)
    rng = np.random.default_rng(0)
    for _ in range(2):
        frames = {
            key: rng.integers(0, 256, [5, *f["shape"]]).astype(
                np.uint8 if f["dtype"] == "image" else np.float32
            )
            for key, f in features.items()
        }
        writer.add_episode("task a", frames)
    writer.finalize()
    return root


def shaped_like(root: Path, recorded: Path, extra_state: int = 0) -> Path:
    """`dataset_with` the cameras (names and sizes), frame rate and state size of the dataset at
    `recorded`, the state `extra_state` numbers longer: data a policy trained on it reads (with 0),
    or cannot (else). Its task is "task a"."""
    dataset = LeRobotDataset(recorded)
    cameras = {
        key.removeprefix("observation.images."): dataset.image_shape(key) for key in dataset.camera_keys
    }
    (state_dim,) = dataset.features["observation.state"]["shape"]
    return dataset_with(root, cameras, state_dim=state_dim + extra_state, fps=dataset.fps)


def declared_shape(root: Path, key: str, shape: list[int]) -> Path:
    """The dataset at `root` with meta/info.json declaring `shape` for feature `key` (its frames
    untouched): a depth or grayscale camera's [H, W, 1], say."""
    info = json.loads((root / "meta/info.json").read_text())
    info["features"][key]["shape"] = shape
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    return root


def without_frames(root: Path, episodes: list[int]) -> Path:
    """The PNG dataset at `root` (one data file, one episodes file) with `episodes` left without
    frames: their rows gone, length 0 in the metadata. No recorder writes that; an edited dataset
    may hold it."""
    (data_file,) = (root / "data").rglob("*.parquet")
    table = pq.read_table(data_file)
    table = table.filter(pa.array(~np.isin(table.column("episode_index").to_numpy(), episodes)))
    index = table.column_names.index("index")
    pq.write_table(table.set_column(index, "index", pa.array(np.arange(table.num_rows))), data_file)
    (episodes_file,) = (root / "meta/episodes").rglob("*.parquet")
    meta = pq.read_table(episodes_file)
    emptied = np.isin(meta.column("episode_index").to_numpy(), episodes)
    lengths = np.where(emptied, 0, meta.column("length").to_numpy())
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    for name, values in (
        ("length", lengths),
        ("dataset_from_index", starts),
        ("dataset_to_index", starts + lengths),
    ):
        meta = meta.set_column(meta.column_names.index(name), name, pa.array(values, pa.int64()))
    pq.write_table(meta, episodes_file)
    info = json.loads((root / "meta/info.json").read_text())
    info["total_frames"] = int(lengths.sum())
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    return root


@contextmanager
def scheduling_kept() -> Iterator[None]:
    """Put this thread's scheduling back as it was afterwards: SVT-AV1 (libsvtav1), where it may
    (as root), leaves the thread that encoded at real-time priority (SCHED_FIFO 99), and every
    process started from it afterwards, a command a benchmark times included, would run so: ahead
    of everything else on the machine, its threads never sharing a core by turns."""
    if not hasattr(os, "sched_getscheduler"):  # not Linux: nothing to keep
        yield
        return
    policy, priority = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        yield
    finally:
        os.sched_setscheduler(0, policy, priority)


def encode_mp4(path, frames, fps, codec: str = "libx264", gop: int | None = None, bframes: int = 0):
    """frames (N x H x W x 3 uint8) as an mp4 at fps: lossless H.264, or as LeRobot encodes by
    default (`codec="libsvtav1"`: AV1, 4:2:0, lossy); a keyframe every `gop` frames when given
    (LeRobot's AV1 has one every 2), else the encoder's default (libx264: every 250). With
    `bframes`, lossy H.264 puts that many B-frames between the others, always: frames then decode
    out of presentation order, and decoding times start before 0."""
    import av  # in the dev extra; tests that use it skip without it

    with scheduling_kept(), av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=int(fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        if codec == "libx264":  # no keyframes at scene cuts (random frames are all cuts): only every gop
            stream.pix_fmt, stream.options = "yuv444p", {"crf": "0", "sc_threshold": "0"}
            if bframes:  # lossy: lossless H.264 has none
                stream.options = {"crf": "18", "bf": str(bframes), "x264-params": "b-adapt=0:scenecut=0"}
        else:
            stream.pix_fmt = "yuv420p"
        if gop is not None:
            stream.options = {**stream.options, "g": str(gop)}
        container.start_encoding()  # the header, even when there are no frames
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def to_video_dataset(
    root,
    key="observation.images.cam",
    episodes_per_file: int | None = None,
    gop: int | None = None,
    codec: str = "libx264",
    bframes: int = 0,
):
    """Move an image feature of a parquet dataset into mp4 files, as LeRobot v3 stores video: all
    episodes in one file, or `episodes_per_file` in each (each file's times start at 0), encoded as
    `encode_mp4` says. Returns the frames the feature held."""
    ds = LeRobotDataset(root)
    frames = ds.read_images(key)
    fps = ds.fps
    (ep_path,) = (root / "meta/episodes").rglob("*.parquet")
    episodes = pq.read_table(ep_path)
    lengths = np.asarray(episodes.column("length").to_pylist())
    n = episodes.num_rows
    file_index = np.arange(n) // (episodes_per_file or n)
    first_frame = np.r_[0, np.cumsum(lengths)[:-1]]
    start = np.zeros(n)
    for f in range(file_index.max() + 1):
        members = np.flatnonzero(file_index == f)
        path = root / f"videos/{key}/chunk-000/file-{f:03d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = first_frame[members[0]], first_frame[members[-1]] + lengths[members[-1]]
        encode_mp4(path, frames[rows[0] : rows[1]], fps, codec, gop, bframes)
        start[members] = (first_frame[members] - rows[0]) / fps
    # As LeRobot writes a video feature: no column in the data files, only the mp4s.
    for data_file in (root / "data").rglob("*.parquet"):
        pq.write_table(pq.read_table(data_file).drop([key]), data_file)
    info = json.loads((root / "meta/info.json").read_text())
    info["features"][key]["dtype"] = "video"
    info["video_path"] = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    (root / "meta/info.json").write_text(json.dumps(info))
    for name, values in [
        ("chunk_index", [0] * n),
        ("file_index", file_index.tolist()),
        ("from_timestamp", start.tolist()),
        ("to_timestamp", (start + lengths / fps).tolist()),
    ]:
        episodes = episodes.append_column(f"videos/{key}/{name}", pa.array(values))
    pq.write_table(episodes, ep_path)
    return frames


def to_v21(
    source: Path,
    root: Path,
    video_keys: tuple[str, ...] = (),
    chunks_size: int = 1000,
    codec: str = "libx264",
    bframes: int = 0,
) -> Path:
    """A v3 dataset of image features rewritten in LeRobot v2.1's layout at `root`: a data file and
    (for `video_keys`, encoded as `encode_mp4` says) an mp4 a camera per episode, meta/*.jsonl, and info.json
    as LeRobot v2.1 wrote it (its templates, total_chunks and total_videos; no file sizes; no
    quantiles in the statistics). The source's video features, each an mp4 an episode from time 0,
    are hard-linked as they are."""
    from leanvla.data.video import video_files

    ds = LeRobotDataset(source)
    table = ds.read_table()
    episodes = ds.episodes.to_pylist()
    linked = [k for k, f in ds.features.items() if f["dtype"] == "video"]
    for key in linked:
        assert len(set(video_files(ds, key))) == len(episodes), f"{key}: not an mp4 an episode"
        assert set(ds.episode_column(f"videos/{key}/from_timestamp")) == {0.0}, key
    info = {k: v for k, v in json.loads(json.dumps(ds.info)).items() if not k.endswith("_files_size_in_mb")}
    info |= {
        "codebase_version": "v2.1",
        "chunks_size": chunks_size,
        "total_chunks": -(-len(episodes) // chunks_size),
        "total_videos": len(episodes) * (len(video_keys) + len(linked)),
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
        if video_keys or linked
        else None,
    }
    for key in video_keys:
        info["features"][key] = {**info["features"][key], "dtype": "video"}
    lines: dict[str, list[dict]] = {"episodes": [], "episodes_stats": [], "tasks": []}
    for e, row in enumerate(episodes):
        chunk = e // chunks_size
        frames = table.slice(row["dataset_from_index"], row["length"])
        for key in video_keys:
            path = root / info["video_path"].format(episode_chunk=chunk, video_key=key, episode_index=e)
            path.parent.mkdir(parents=True, exist_ok=True)
            images = ds.read_images(key)[row["dataset_from_index"] : row["dataset_to_index"]]
            encode_mp4(path, images, ds.fps, codec, bframes=bframes)
            frames = frames.drop([key])
        for key in linked:
            path = root / info["video_path"].format(episode_chunk=chunk, video_key=key, episode_index=e)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.link(video_files(ds, key)[e], path)
        path = root / info["data_path"].format(episode_chunk=chunk, episode_index=e)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(frames, path)
        lines["episodes"].append({"episode_index": e, "tasks": row["tasks"], "length": row["length"]})
        stats: dict[str, dict] = {}
        for name, value in row.items():
            if name.startswith("stats/") and not name.rsplit("/", 1)[1].startswith("q"):
                key, stat = name[len("stats/") :].rsplit("/", 1)
                stats.setdefault(key, {})[stat] = value
        lines["episodes_stats"].append({"episode_index": e, "stats": stats})
    lines["tasks"] = [{"task_index": i, "task": task} for i, task in enumerate(ds.tasks)]
    (root / "meta").mkdir(parents=True, exist_ok=True)
    for name, objects in lines.items():
        (root / f"meta/{name}.jsonl").write_text("".join(json.dumps(o) + "\n" for o in objects))
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    return root


def _counting(decoded_from, count: list[int]):
    """`video._decoded_from` that adds each frame it gives to count[0]."""

    def counted(*args):
        for frame in decoded_from(*args):
            count[0] += 1
            yield frame

    return counted


def decoded_frame_count(monkeypatch) -> list[int]:
    """Count every frame the video decoder gives from here on, wanted or not: [count]."""
    from leanvla.data import video

    count = [0]
    monkeypatch.setattr(video, "_decoded_from", _counting(video._decoded_from, count))
    return count


@contextmanager
def decoded_frames() -> Iterator[list[int]]:
    """`decoded_frame_count` within a block, outside pytest (benchmarks): [count]."""
    from leanvla.data import video

    count, real = [0], video._decoded_from
    video._decoded_from = _counting(real, count)
    try:
        yield count
    finally:
        video._decoded_from = real


def edit_frames(root: Path, name: str, edit) -> None:
    """Rewrite column `name` of a one-file dataset's data (LeRobot's fixture) as `edit`, given its
    Python values, makes it."""
    path = root / "data/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    column = table.column(name)
    values = edit(column.to_pylist())
    pq.write_table(
        table.set_column(table.column_names.index(name), name, pa.array(values, column.type)), path
    )
