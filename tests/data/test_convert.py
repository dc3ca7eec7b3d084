"""`leanvla data convert`: LeRobot v2.1 datasets rewritten as v3.0, read back frame for frame."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from leanvla.data import convert as convert_module
from leanvla.data.convert import ConvertConfig, convert
from leanvla.data.reader import LeRobotDataset
from leanvla.errors import UserError
from tests.data.helpers import decoded_frame_count, synthetic_dataset, to_v21, without_frames
from tests.helpers import refused_by_the_filesystem

FIXTURE = Path(__file__).resolve().parents[3] / "shared/fixtures/lerobot_metaworld_v30"
CAM = "observation.images.cam"
# What converting the fixture, laid out as v2.1, reports (besides where it wrote).
FIXTURE_SUMMARY = {
    "episodes": 9,
    "frames": 679,
    "tasks": 3,
    "data_files": 1,
    "video_files": 0,
    "episode_videos": {"joined": 0, "linked": 0, "copied": 0},
    "stats": "kept",
}


@pytest.fixture
def v21(tmp_path) -> Path:
    """The fixture LeRobot wrote, in v2.1's layout (an episode a file, PNG frames in the parquet)."""
    return to_v21(FIXTURE, tmp_path / "v21")


def episode_frames(v21_root: Path, key: str) -> np.ndarray:
    """A v2.1 camera's frames: each episode's mp4 decoded whole, in episode order."""
    from leanvla.data import video

    paths = sorted((v21_root / "videos").rglob(f"{key}/episode_*.mp4"))
    return np.concatenate([frames.copy() for path in paths for frames, _ in video._batches(path)])


def test_lerobots_dataset_converts_back_to_the_same_frames_tasks_and_statistics(v21, tmp_path):
    summary = convert(ConvertConfig(v21, out=tmp_path / "v30"))
    original, converted = LeRobotDataset(FIXTURE), LeRobotDataset(tmp_path / "v30")
    assert summary == {"out": str(tmp_path / "v30"), **FIXTURE_SUMMARY}
    assert converted.summary() | {"root": None} == original.summary() | {"root": None}
    assert converted.read_table().equals(original.read_table())  # every column, every frame
    assert np.array_equal(
        converted.read_images("observation.images.corner2"),
        original.read_images("observation.images.corner2"),
    )
    for column in ("episode_index", "tasks", "length", "dataset_from_index", "dataset_to_index"):
        assert converted.episode_column(column) == original.episode_column(column)
    for name in original.episodes.column_names:  # v2.1 kept no quantiles: the rest come back
        if name.startswith("stats/") and not name.rsplit("/", 1)[1].startswith("q"):
            assert converted.episode_column(name) == original.episode_column(name), name
    ours = json.loads((tmp_path / "v30/meta/stats.json").read_text())
    lerobots = json.loads((FIXTURE / "meta/stats.json").read_text())
    assert ours.keys() == lerobots.keys()
    for key in ours:
        for name in ("min", "max", "mean", "std", "count"):
            assert np.allclose(ours[key][name], lerobots[key][name], rtol=1e-5, atol=1e-7), (key, name)
    info = json.loads((tmp_path / "v30/meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and "total_chunks" not in info and "total_videos" not in info
    assert info["data_path"] == original.info["data_path"] and info["video_path"] is None


def test_videos_are_linked_unchanged_and_read_as_the_v21_files_decode(tmp_path):
    pytest.importorskip("av", reason="PyAV is in the dev extra; `make test` installs it")
    source = to_v21(synthetic_dataset(tmp_path / "v30", image_size=32), tmp_path / "v21", video_keys=(CAM,))
    summary = convert(ConvertConfig(source, out=tmp_path / "out", videos="link"))
    assert summary["video_files"] == 4
    assert summary["episode_videos"] == {"joined": 0, "linked": 4, "copied": 0}
    converted = LeRobotDataset(tmp_path / "out")
    assert np.array_equal(converted.read_images(CAM), episode_frames(source, CAM))
    for e in range(4):
        ours = tmp_path / f"out/videos/{CAM}/chunk-000/file-{e:03d}.mp4"
        theirs = source / f"videos/chunk-000/{CAM}/episode_{e:06d}.mp4"
        assert os.path.samefile(ours, theirs)
    lengths = np.array(converted.episode_column("length"))
    assert converted.episode_column(f"videos/{CAM}/from_timestamp") == [0.0] * 4
    assert np.allclose(converted.episode_column(f"videos/{CAM}/to_timestamp"), lengths / converted.fps)
    # the vectors are those the v3 dataset held before its cameras went into mp4s
    assert np.array_equal(
        converted.read_array("action"), LeRobotDataset(tmp_path / "v30").read_array("action")
    )


def test_videos_are_copied_where_they_cannot_be_linked(tmp_path, monkeypatch):
    pytest.importorskip("av", reason="PyAV is in the dev extra; `make test` installs it")
    source = to_v21(synthetic_dataset(tmp_path / "v30", image_size=32), tmp_path / "v21", video_keys=(CAM,))

    def other_filesystem(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(convert_module.os, "link", other_filesystem)
    summary = convert(ConvertConfig(source, out=tmp_path / "out", videos="link"))
    assert summary["episode_videos"] == {"joined": 0, "linked": 0, "copied": 4}
    ours = tmp_path / f"out/videos/{CAM}/chunk-000/file-002.mp4"
    theirs = source / f"videos/chunk-000/{CAM}/episode_{2:06d}.mp4"
    assert not os.path.samefile(ours, theirs) and ours.read_bytes() == theirs.read_bytes()
    assert np.array_equal(LeRobotDataset(tmp_path / "out").read_images(CAM), episode_frames(source, CAM))


def video_dataset(tmp_path: Path, **encoding) -> Path:
    """The synthetic dataset in v2.1's layout, its camera an mp4 an episode encoded as `encoding` says."""
    pytest.importorskip("av", reason="PyAV is in the dev extra; `make test` installs it")
    return to_v21(
        synthetic_dataset(tmp_path / "v30", image_size=32), tmp_path / "v21", video_keys=(CAM,), **encoding
    )


def video_file_names(root: Path) -> list[str]:
    return sorted(p.relative_to(root / "videos").as_posix() for p in (root / "videos").rglob("*.mp4"))


@pytest.mark.parametrize(
    "encoding",
    [{}, {"bframes": 2}, {"codec": "libsvtav1"}],
    ids=["H.264", "H.264 with B-frames", "AV1 as LeRobot encodes"],
)
def test_videos_are_joined_into_one_file_that_decodes_as_the_v21_files_do(tmp_path, monkeypatch, encoding):
    from leanvla.data import video

    source = video_dataset(tmp_path, **encoding)
    summary = convert(ConvertConfig(source, out=tmp_path / "out"))
    assert summary["video_files"] == 1
    assert summary["episode_videos"] == {"joined": 4, "linked": 0, "copied": 0}
    assert video_file_names(tmp_path / "out") == [f"{CAM}/chunk-000/file-000.mp4"]
    converted = LeRobotDataset(tmp_path / "out")
    v21_frames = episode_frames(source, CAM)
    assert np.array_equal(converted.read_images(CAM), v21_frames)  # every pixel, nothing re-encoded
    lengths = np.array(converted.episode_column("length"))
    starts = np.r_[0, np.cumsum(lengths)[:-1]] / converted.fps  # one after another
    assert np.allclose(converted.episode_column(f"videos/{CAM}/from_timestamp"), starts)
    assert np.allclose(
        converted.episode_column(f"videos/{CAM}/to_timestamp"), starts + lengths / converted.fps
    )
    # Each frame is shown when LeRobot's reader looks for it: within its tolerance, 1e-4 s.
    (joined,) = (tmp_path / "out/videos").rglob("*.mp4")
    shown = np.concatenate([times for _, times in video._batches(joined, pixels=False)])
    frame_times = np.concatenate([start + np.arange(n) / converted.fps for start, n in zip(starts, lengths)])
    assert np.abs(shown - frame_times).max() < 1e-4
    # Episodes read apart are the v2.1 files' frames too, each decoded from its own first frame
    # (a keyframe): nothing of the episode before it, and at most a frame past it.
    first = np.r_[0, np.cumsum(lengths)]
    count = decoded_frame_count(monkeypatch)
    apart = video.read_video_frames(converted, CAM, episodes=np.array([1, 3]))
    assert np.array_equal(apart, np.concatenate([v21_frames[first[e] : first[e + 1]] for e in (1, 3)]))
    assert count[0] <= lengths[1] + lengths[3] + 2


def test_video_files_fill_up_to_their_size_and_chunks_to_their_count(tmp_path):
    source = video_dataset(tmp_path, chunks_size=3)
    info = json.loads((source / "meta/info.json").read_text())
    info["video_files_size_in_mb"] = 1e-6  # smaller than any episode's mp4: a file each
    (source / "meta/info.json").write_text(json.dumps(info))
    assert convert(ConvertConfig(source, out=tmp_path / "out"))["video_files"] == 4
    assert video_file_names(tmp_path / "out") == [
        f"{CAM}/chunk-000/file-000.mp4",
        f"{CAM}/chunk-000/file-001.mp4",
        f"{CAM}/chunk-000/file-002.mp4",
        f"{CAM}/chunk-001/file-000.mp4",
    ]
    converted = LeRobotDataset(tmp_path / "out")
    assert converted.episode_column(f"videos/{CAM}/from_timestamp") == [0.0] * 4
    assert np.array_equal(converted.read_images(CAM), episode_frames(source, CAM))


def test_an_mp4_encoded_otherwise_starts_a_file_of_its_own(tmp_path):
    from tests.data.helpers import encode_mp4

    source = video_dataset(tmp_path)
    other = source / f"videos/chunk-000/{CAM}/episode_000002.mp4"
    frames = LeRobotDataset(tmp_path / "v30").read_images(CAM)[10:19]  # episode 2's
    encode_mp4(other, frames, 10, codec="libsvtav1")  # another codec: not one stream with the rest
    assert convert(ConvertConfig(source, out=tmp_path / "out"))["video_files"] == 3
    converted = LeRobotDataset(tmp_path / "out")
    assert converted.episode_column(f"videos/{CAM}/file_index") == [0, 0, 1, 2]
    assert converted.episode_column(f"videos/{CAM}/from_timestamp") == [0.0, 0.6, 0.0, 0.0]
    assert np.array_equal(converted.read_images(CAM), episode_frames(source, CAM))


def encode_h264(path: Path, frames: np.ndarray, container_format: str | None = None, **options) -> None:
    """frames as lossless H.264 at 10 fps with the encoder's `options` (x264 settings), in an mp4 or
    `container_format`."""
    import av

    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream("libx264", rate=10, options={"crf": "0", **options})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv444p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def test_an_mp4_encoded_with_other_settings_starts_a_file_of_its_own(tmp_path):
    """Same codec, size and pixel format, but other x264 settings (CAVLC, not CABAC): a decoder
    reading it with the first file's parameters would decode garbage."""
    source = video_dataset(tmp_path)
    other = source / f"videos/chunk-000/{CAM}/episode_000002.mp4"
    encode_h264(other, LeRobotDataset(tmp_path / "v30").read_images(CAM)[10:19], preset="ultrafast")
    assert convert(ConvertConfig(source, out=tmp_path / "out"))["video_files"] == 3
    converted = LeRobotDataset(tmp_path / "out")
    assert converted.episode_column(f"videos/{CAM}/file_index") == [0, 0, 1, 2]
    assert np.array_equal(converted.read_images(CAM), episode_frames(source, CAM))


def test_an_mp4_with_a_frame_more_than_its_episode_keeps_the_next_episode_after_it(tmp_path):
    source = video_dataset(tmp_path)
    frames = LeRobotDataset(tmp_path / "v30").read_images(CAM)
    longer = source / f"videos/chunk-000/{CAM}/episode_000001.mp4"
    encode_h264(longer, np.concatenate([frames[6:10], frames[9:10]]))  # episode 1's 4 frames, and one more
    convert(ConvertConfig(source, out=tmp_path / "out"))
    converted = LeRobotDataset(tmp_path / "out")
    assert np.allclose(converted.episode_column(f"videos/{CAM}/from_timestamp"), [0.0, 0.6, 1.1, 2.0])
    decoded = episode_frames(source, CAM)  # episode 1's extra frame is the 11th
    assert np.array_equal(converted.read_images(CAM), np.delete(decoded, 10, axis=0))


def test_an_mp4_with_a_frame_less_than_its_episode_is_refused_when_read_as_before(tmp_path):
    """The next episode starts where this one's frames should end: the missing frame is not
    taken from the next episode, and reading says the file is short, as for unjoined files."""
    source = video_dataset(tmp_path)
    frames = LeRobotDataset(tmp_path / "v30").read_images(CAM)
    encode_h264(source / f"videos/chunk-000/{CAM}/episode_000001.mp4", frames[6:9])  # 3 of its 4 frames
    convert(ConvertConfig(source, out=tmp_path / "out"))
    converted = LeRobotDataset(tmp_path / "out")
    assert np.allclose(converted.episode_column(f"videos/{CAM}/from_timestamp"), [0.0, 0.6, 1.0, 1.9])
    with pytest.raises(UserError, match=r"episode 1 of .* needs a frame at 0\.900 s of .*file-000\.mp4"):
        converted.read_images(CAM)


def test_an_mp4_the_filesystem_refuses_is_not_said_to_be_damaged(tmp_path, monkeypatch):
    """PyAV's PermissionError is an FFmpegError: a colleague's 0600 episode file was "cannot read
    ...; is it truncated or damaged?"."""
    import av

    source = video_dataset(tmp_path)
    video = source / f"videos/chunk-000/{CAM}/episode_000002.mp4"
    refused_by_the_filesystem(monkeypatch, video)
    real_open = av.open

    def as_pyav_refuses(path, *args, **kwargs):
        if Path(path) == video:
            raise av.error.PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(av, "open", as_pyav_refuses)
    with pytest.raises(PermissionError) as refused:
        convert(ConvertConfig(source, out=tmp_path / "out"))
    assert refused.value.filename == str(video) and not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage", ["cut in half", "no frames", "no timestamps"])
def test_an_mp4_that_cannot_be_joined_is_one_line_naming_its_episode(tmp_path, damage):
    from tests.data.helpers import encode_mp4

    source = video_dataset(tmp_path)
    video = source / f"videos/chunk-000/{CAM}/episode_000002.mp4"
    if damage == "cut in half":
        video.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
        message = rf"cannot read {re.escape(str(video))} \(episode 2\): .*; is it truncated or damaged\? \(--videos link"
    elif damage == "no frames":
        encode_mp4(video, np.zeros((0, 32, 32, 3), np.uint8), 10)
        message = rf"{re.escape(str(video))} \(episode 2\) has no video stream"
    else:  # a raw H.264 stream, named .mp4: its packets carry no times
        encode_h264(video, np.zeros((9, 32, 32, 3), np.uint8), container_format="h264")
        message = rf"{re.escape(str(video))} \(episode 2\) has packets without timestamps; re-encode it"
    with pytest.raises(UserError, match=message) as caught:
        convert(ConvertConfig(source, out=tmp_path / "out"))
    assert "\n" not in str(caught.value) and not (tmp_path / "out").exists()


def test_data_files_fill_up_to_their_size_and_chunks_to_their_count(tmp_path):
    source = to_v21(synthetic_dataset(tmp_path / "v30"), tmp_path / "v21", chunks_size=3)
    info = json.loads((source / "meta/info.json").read_text())
    info["data_files_size_in_mb"] = 1e-6  # smaller than any episode: a file each
    (source / "meta/info.json").write_text(json.dumps(info))
    assert convert(ConvertConfig(source, out=tmp_path / "out"))["data_files"] == 4
    files = sorted(
        p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out/data").rglob("*.parquet")
    )
    assert files == [
        "data/chunk-000/file-000.parquet",
        "data/chunk-000/file-001.parquet",
        "data/chunk-000/file-002.parquet",
        "data/chunk-001/file-000.parquet",
    ]
    converted, original = LeRobotDataset(tmp_path / "out"), LeRobotDataset(tmp_path / "v30")
    assert converted.read_table().equals(original.read_table())
    assert np.array_equal(converted.read_images(CAM), original.read_images(CAM))


def test_the_reader_names_the_command_that_converts_a_v21_dataset(v21):
    with pytest.raises(UserError, match=re.escape(f"convert it with `leanvla data convert {v21} --out DIR`")):
        LeRobotDataset(v21)


def as_v20(root: Path) -> Path:
    """A v2.1 dataset as LeRobot v2.0 kept it: no per-episode statistics, meta/stats.json instead."""
    (root / "meta/episodes_stats.jsonl").unlink()
    shutil.copy(FIXTURE / "meta/stats.json", root / "meta/stats.json")
    edit_info(root, codebase_version="v2.0")
    return root


def test_a_v20_dataset_converts_keeping_its_statistics_over_the_dataset(v21, tmp_path):
    with pytest.raises(UserError, match=re.escape(f"convert it with `leanvla data convert {v21} --out DIR`")):
        LeRobotDataset(as_v20(v21))
    convert(ConvertConfig(v21, out=tmp_path / "v30"))
    original, converted = LeRobotDataset(FIXTURE), LeRobotDataset(tmp_path / "v30")
    assert converted.read_table().equals(original.read_table())
    assert converted.episode_tasks() == original.episode_tasks()
    assert not [name for name in converted.episodes.column_names if name.startswith("stats/")]
    stats = tmp_path / "v30/meta/stats.json"
    assert json.loads(stats.read_text()) == json.loads((FIXTURE / "meta/stats.json").read_text())


def stats_columns_of(dataset: LeRobotDataset) -> dict[str, list]:
    return {
        name: dataset.episode_column(name)
        for name in dataset.episodes.column_names
        if name.startswith("stats/")
    }


@pytest.mark.parametrize("version", ["v2.1", "v2.0"])
def test_statistics_from_the_frames_are_those_leanvla_writes_quantiles_and_all(tmp_path, version):
    # The source was written by leanvla's writer, its statistics (quantiles too) from its frames;
    # v2.1 kept them without quantiles, v2.0 none an episode and a dataset's that are not these.
    source = LeRobotDataset(synthetic_dataset(tmp_path / "v30", image_size=16))
    v2 = to_v21(source.root, tmp_path / "v2")
    if version == "v2.0":
        as_v20(v2)
    summary = convert(ConvertConfig(v2, out=tmp_path / "out", stats="frames"))
    converted = LeRobotDataset(tmp_path / "out")
    assert summary["stats"] == "frames"
    assert stats_columns_of(converted) == stats_columns_of(source)  # every value, equal
    kept = [name for name in source.episodes.column_names if name != "metaworld/positions"]  # not in v2
    assert converted.episodes.column_names == kept  # in the writer's order too
    assert json.loads((converted.root / "meta/stats.json").read_text()) == json.loads(
        (source.root / "meta/stats.json").read_text()
    )


def test_statistics_of_a_video_camera_are_those_of_its_frames_as_converted(tmp_path):
    from leanvla.data.stats import image_stats

    source = LeRobotDataset(synthetic_dataset(tmp_path / "v30", image_size=32))
    v21 = to_v21(source.root, tmp_path / "v21", video_keys=(CAM,))
    convert(ConvertConfig(v21, out=tmp_path / "out", stats="frames"))
    converted = LeRobotDataset(tmp_path / "out")
    ours, written = stats_columns_of(converted), stats_columns_of(source)
    assert ours.keys() == written.keys()
    for name in [n for n in ours if not n.startswith(f"stats/{CAM}/")]:
        assert ours[name] == written[name], name
    frames, first = converted.read_images(CAM), np.r_[0, np.cumsum(converted.episode_column("length"))]
    for episode in range(converted.num_episodes):
        for stat, value in image_stats(frames[first[episode] : first[episode + 1]]).items():
            assert np.array_equal(ours[f"stats/{CAM}/{stat}"][episode], value), (episode, stat)


def test_a_v20_dataset_without_its_statistics_is_one_line(v21):
    as_v20(v21)
    (v21 / "meta/stats.json").unlink()
    with pytest.raises(UserError, match="stats.json is missing; a v2.0 dataset keeps its statistics there"):
        convert(ConvertConfig(v21, out=v21.parent / "out"))
    (v21 / "meta/stats.json").write_text("[1, 2]")
    with pytest.raises(UserError, match="stats.json is not a JSON object of statistics"):
        convert(ConvertConfig(v21, out=v21.parent / "out"))
    assert sorted(p.name for p in v21.parent.iterdir()) == ["v21"]


def test_an_older_dataset_is_sent_to_lerobots_converter_first(v21):
    edit_info(v21, codebase_version="v1.6")
    with pytest.raises(UserError, match="convert it to v2.0 with lerobot's convert_dataset_v1_to_v2"):
        LeRobotDataset(v21)
    with pytest.raises(
        UserError, match=r"converts v2.0 and v2.1: convert it to v2.0 with lerobot's convert_"
    ):
        convert(ConvertConfig(v21, out=v21.parent / "out"))


def edit_jsonl(path: Path, edit) -> None:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(line) + "\n" for line in edit(lines)))


def edit_info(root: Path, *dropped: str, **changes) -> None:
    info = json.loads((root / "meta/info.json").read_text())
    info = {k: v for k, v in info.items() if k not in dropped} | changes
    (root / "meta/info.json").write_text(json.dumps(info))


BAD_SOURCES = {
    "no directory": (lambda r: shutil.rmtree(r), "dataset directory .* does not exist"),
    "no info": (
        lambda r: (r / "meta/info.json").unlink(),
        "info.json is missing: .* is not a LeRobotDataset",
    ),
    "bad info": (lambda r: (r / "meta/info.json").write_text("{"), "info.json is not valid JSON"),
    "already v3": (
        lambda r: edit_info(r, codebase_version="v3.0"),
        "is already LeRobotDataset v3.0: leanvla reads it as it is",
    ),
    "no fps": (lambda r: edit_info(r, "fps"), "has no 'fps' entry"),
    "fps of text": (
        lambda r: edit_info(r, fps="30"),
        'info.json: fps must be a positive number of frames per second, got "30"$',
    ),
    "no tasks file": (
        lambda r: (r / "meta/tasks.jsonl").unlink(),
        "tasks.jsonl is missing; a v2.1 dataset has",
    ),
    "bad line": (
        lambda r: (r / "meta/episodes.jsonl").write_text('{"episode_index": 0, "length": 5}\n{oops\n'),
        r"episodes.jsonl, line 2, is not valid JSON",
    ),
    "no index": (
        lambda r: edit_jsonl(r / "meta/tasks.jsonl", lambda ls: [{"task": t["task"]} for t in ls]),
        r"tasks.jsonl, line 1, has no integer 'task_index'",
    ),
    "no length": (
        lambda r: edit_jsonl(r / "meta/episodes.jsonl", lambda ls: ls[:3] + [{"episode_index": 3}] + ls[4:]),
        r"episodes.jsonl, line 4, has no 'length'; the dataset is corrupt",
    ),
    "length of text": (
        lambda r: edit_jsonl(
            r / "meta/episodes.jsonl", lambda ls: [{**e, "length": str(e["length"])} for e in ls]
        ),
        r"episodes.jsonl: episode 0's length must be a whole number of frames, got \"\d+\"; the dataset is corrupt",
    ),
    "null length": (
        lambda r: edit_jsonl(
            r / "meta/episodes.jsonl", lambda ls: ls[:2] + [{**ls[2], "length": None}] + ls[3:]
        ),
        r"episodes.jsonl: episode 2's length must be a whole number of frames, got null",
    ),
    "chunks of none": (
        lambda r: edit_info(r, chunks_size=0),
        r"info.json: chunks_size must be a whole number >= 1 \(episodes a chunk directory\), got 0$",
    ),
    "chunks of null": (
        lambda r: edit_info(r, chunks_size=None),
        r"chunks_size must be a whole number >= 1 .*, got null$",
    ),
    "task gap": (
        lambda r: edit_jsonl(
            r / "meta/tasks.jsonl", lambda ls: [{**t, "task_index": 2 * t["task_index"]} for t in ls]
        ),
        r"task_index values are not 0..2",
    ),
    "episode gap": (
        lambda r: edit_jsonl(
            r / "meta/episodes.jsonl", lambda ls: [e for e in ls if e["episode_index"] != 4]
        ),
        r"episodes.jsonl lists 8 episodes but not episode 4: LeRobot numbers them 0..N-1, so one is lost",
    ),
    "stats gap": (
        lambda r: edit_jsonl(
            r / "meta/episodes_stats.jsonl", lambda ls: ls[:-1] + [{**ls[-1], "episode_index": 0}]
        ),
        r"episodes_stats.jsonl lists 9 episodes but not episode 8",
    ),
    "episode count": (
        lambda r: edit_info(r, total_episodes=10),
        r"lists 9 episodes but .*info.json says total_episodes=10",
    ),
    "frame count": (
        lambda r: edit_info(r, total_frames=680),
        r"add up to 679 frames but .*info.json says total_frames=680",
    ),
    "no video path": (
        lambda r: edit_info(r, video_path=None, features=_as_video(r)),
        r"info.json has video features but no 'video_path'",
    ),
    "bad template": (
        lambda r: edit_info(r, data_path="data/{chunk}/episode_{episode_index:06d}.parquet"),
        r'info.json: data_path "data/\{chunk\}/episode_\{episode_index:06d\}.parquet" is not a path template '
        r"\(KeyError: 'chunk'\); it may name \{episode_chunk\}, \{episode_index\}$",
    ),
    "missing data file": (
        lambda r: (r / "data/chunk-000/episode_000003.parquet").unlink(),
        r"episode_000003.parquet is missing \(episode 3\); the dataset is incomplete",
    ),
}


def _as_video(root: Path) -> dict:
    features = json.loads((root / "meta/info.json").read_text())["features"]
    features["observation.images.corner2"]["dtype"] = "video"
    return features


@pytest.mark.parametrize("damage", BAD_SOURCES, ids=list(BAD_SOURCES))
def test_a_source_that_cannot_be_converted_is_one_line_and_nothing_is_written(v21, damage):
    spoil, message = BAD_SOURCES[damage]
    spoil(v21)
    with pytest.raises(UserError, match=message) as caught:
        convert(ConvertConfig(v21, out=v21.parent / "out"))
    assert "\n" not in str(caught.value)
    assert sorted(p.name for p in v21.parent.iterdir() if p.name != "v21") == []


def rewrite_episode(root: Path, episode: int, edit) -> None:
    path = root / f"data/chunk-000/episode_{episode:06d}.parquet"
    pq.write_table(edit(pq.read_table(path)), path)


BAD_DATA = {
    "too few frames": (
        lambda t: t.slice(0, 3),
        r"episode_000005.parquet holds 3 frames but meta/episodes.jsonl says episode 5 has",
    ),
    "wrong episode": (
        lambda t: t.set_column(
            t.column_names.index("episode_index"), "episode_index", [np.full(t.num_rows, 7)]
        ),
        r"episode_000005.parquet: its episode_index column is not 5 throughout",
    ),
    "other columns": (
        lambda t: t.drop(["observation.state"]),
        r"episode_000005.parquet lacks columns \['observation.state'\] that the first episode has; every episode",
    ),
    "a column more": (
        lambda t: t.append_column("reward", [np.zeros(t.num_rows)]),
        r"episode_000005.parquet has columns \['reward'\] that the first episode has not; every episode",
    ),
    "other type": (
        lambda t: t.set_column(
            t.column_names.index("observation.images.corner2"),
            "observation.images.corner2",
            [np.zeros(t.num_rows)],
        ),
        r"episode_000005.parquet: column 'observation.images.corner2' is double, not struct<.*> as in the first episode",
    ),
}


@pytest.mark.parametrize("damage", BAD_DATA, ids=list(BAD_DATA))
def test_an_episode_file_unlike_the_others_is_one_line_and_nothing_is_left_half_written(v21, damage):
    edit, message = BAD_DATA[damage]
    rewrite_episode(v21, 5, edit)  # found after five episodes were written
    with pytest.raises(UserError, match=message):
        convert(ConvertConfig(v21, out=v21.parent / "out"))
    assert sorted(p.name for p in v21.parent.iterdir()) == ["v21"]


def test_an_episode_with_its_columns_in_another_order_converts_as_the_others(v21, tmp_path):
    rewrite_episode(v21, 5, lambda t: t.select(t.column_names[::-1]))
    convert(ConvertConfig(v21, out=tmp_path / "out"))
    assert LeRobotDataset(tmp_path / "out").read_table().equals(LeRobotDataset(FIXTURE).read_table())


def test_an_unreadable_episode_file_is_one_line(v21):
    (v21 / "data/chunk-000/episode_000002.parquet").write_bytes(b"not parquet")
    with pytest.raises(UserError, match=r"cannot read .*episode_000002.parquet: ") as caught:
        convert(ConvertConfig(v21, out=v21.parent / "out"))
    assert "\n" not in str(caught.value)


def test_out_is_kept_unless_overwrite_and_never_the_source(v21, tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(UserError, match="out already exists; choose another --out or pass --overwrite"):
        convert(ConvertConfig(v21, out=tmp_path / "out"))
    convert(ConvertConfig(v21, out=tmp_path / "out", overwrite=True))
    assert LeRobotDataset(tmp_path / "out").num_episodes == 9
    for out in (v21, tmp_path):  # the dataset itself, or a directory holding it
        with pytest.raises(UserError) as refused:
            convert(ConvertConfig(v21, out=out, overwrite=True))
        assert str(refused.value) == (
            f"--out {out} holds the dataset being converted {v21}, which replacing it would delete; "
            "choose another --out"
        )
    assert LeRobotDataset(tmp_path / "out").num_episodes == 9 and (v21 / "meta/info.json").is_file()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("mine")
    with pytest.raises(
        UserError, match=r"holds files but not a LeRobotDataset \(no meta/info.json\), and --overwrite"
    ):
        convert(ConvertConfig(v21, out=tmp_path / "notes", overwrite=True))
    assert [p.name for p in (tmp_path / "notes").iterdir()] == ["mine.txt"]


def free_space(monkeypatch, free: int) -> None:
    """--out's filesystem has `free` bytes free, as `shutil.disk_usage` tells it."""
    usage = shutil.disk_usage("/")
    monkeypatch.setattr(convert_module.shutil, "disk_usage", lambda path: usage._replace(free=free))


def test_a_conversion_that_will_not_fit_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    source = video_dataset(tmp_path)
    data = sum(p.stat().st_size for p in (source / "data").rglob("*.parquet"))
    videos = sum(p.stat().st_size for p in (source / "videos").rglob("*.mp4"))
    free_space(monkeypatch, data + videos - 1)  # a byte short of the data and a copy of the videos
    with pytest.raises(
        UserError, match=r"GB free; free some space or choose another --out, or pass --videos link"
    ) as caught:
        convert(ConvertConfig(source, out=tmp_path / "out"))
    assert "\n" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v21", "v30"]  # nothing, not even a temporary
    convert(ConvertConfig(source, out=tmp_path / "out", videos="link"))  # the data files fit
    assert LeRobotDataset(tmp_path / "out").num_episodes == 4
    free_space(monkeypatch, data + videos)
    convert(ConvertConfig(source, out=tmp_path / "joined"))
    free_space(monkeypatch, data - 1)
    with pytest.raises(UserError, match=r"GB free; free some space or choose another --out$"):
        convert(ConvertConfig(source, out=tmp_path / "linked", videos="link"))


def test_a_dataset_without_cameras_that_will_not_fit_is_not_sent_to_link_videos(v21, monkeypatch):
    free_space(monkeypatch, 0)
    with pytest.raises(
        UserError,
        match=r"writes about 0\.\d\d GB but .* has 0\.00 GB free; free some space or choose another --out$",
    ):
        convert(ConvertConfig(v21, out=v21.parent / "out"))


def test_stats_frames_refuses_episodes_of_no_frames_before_writing_and_kept_converts_them(tmp_path):
    source = to_v21(without_frames(synthetic_dataset(tmp_path / "v3"), [2]), tmp_path / "v21")
    with pytest.raises(
        UserError, match="episode 2 has no frames .*; convert with --stats kept, or remove it"
    ):
        convert(ConvertConfig(source, out=tmp_path / "out", stats="frames"))
    assert not (tmp_path / "out").exists()
    convert(ConvertConfig(source, out=tmp_path / "out"))  # --stats kept: v2.1's, nothing to compute
    assert LeRobotDataset(tmp_path / "out").episode_column("length") == [6, 4, 0, 5]
