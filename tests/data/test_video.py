"""Datasets whose cameras are stored as mp4 (LeRobot's default) read frame-accurately."""

from __future__ import annotations

import errno
import json
import os
import tracemalloc

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leanvla.data import video
from leanvla.data.reader import LeRobotDataset
from leanvla.data.video import nearest_frames, read_video_frames
from leanvla.errors import UserError
from tests.data.helpers import (
    dataset_with,
    decoded_frame_count,
    encode_mp4,
    synthetic_dataset,
    to_video_dataset,
)
from tests.helpers import refused_by_the_filesystem

av = pytest.importorskip("av", reason="PyAV is in the dev extra; `make test` installs it")


def decode_whole(path, size=None) -> tuple[np.ndarray, np.ndarray]:
    """Every frame of an mp4 and its time, joined (the batches' array is reused: copied)."""
    batches = [(frames.copy(), times) for frames, times in video._batches(path, size)]
    return np.concatenate([f for f, _ in batches]), np.concatenate([t for _, t in batches])


@pytest.mark.parametrize("episodes_per_file", [None, 2], ids=["one file", "two files"])
def test_video_frames_match_the_encoded_images(tmp_path, episodes_per_file):
    root = synthetic_dataset(tmp_path / "ds", image_size=32)
    original = to_video_dataset(root, episodes_per_file=episodes_per_file)
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


def test_episode_frames_of_a_video_are_each_episodes_decoded_from_its_own_start(tmp_path, monkeypatch):
    root = synthetic_dataset(tmp_path / "ds", image_size=16)
    to_video_dataset(root, episodes_per_file=1)  # each from a keyframe, as LeRobot encodes them
    dataset = LeRobotDataset(root)
    every = dataset.read_images("observation.images.cam")
    count = decoded_frame_count(monkeypatch)
    yielded = list(dataset.episode_frames("observation.images.cam"))
    assert [episode for episode, _ in yielded] == [0, 1, 2, 3]
    assert [len(frames) for _, frames in yielded] == [6, 4, 9, 5]
    assert np.array_equal(np.concatenate([frames for _, frames in yielded]), every)
    assert count[0] <= len(every) + len(yielded)  # each from its own start: every frame about once


def packet_passes(monkeypatch) -> list[int]:
    """Count the passes over a file's packets from here on: [count]."""
    passes, real = [0], video._packet_times

    def counted(*args):
        passes[0] += 1
        return real(*args)

    monkeypatch.setattr(video, "_packet_times", counted)
    return passes


@pytest.mark.parametrize("episodes_per_file", [None, 2], ids=["one file", "two files"])
def test_episode_frames_decode_each_file_once_however_many_episodes_it_holds(
    tmp_path, monkeypatch, episodes_per_file
):
    root = synthetic_dataset(tmp_path / "ds", image_size=16)  # episodes of 6, 4, 9 and 5 frames
    to_video_dataset(root, episodes_per_file=episodes_per_file)  # one keyframe a file: libx264's every 250
    dataset = LeRobotDataset(root)
    every = dataset.read_images("observation.images.cam")
    count, passes = decoded_frame_count(monkeypatch), packet_passes(monkeypatch)
    monkeypatch.setattr("leanvla.data.resize.BATCH", 4)  # episodes given between batches
    yielded, decoded_by_then = [], []
    for episode, frames in dataset.episode_frames("observation.images.cam"):
        yielded.append((episode, frames))
        decoded_by_then.append(count[0])
    assert [episode for episode, _ in yielded] == [0, 1, 2, 3]
    assert np.array_equal(np.concatenate([frames for _, frames in yielded]), every)
    assert decoded_by_then[0] <= 8  # episode 0 given at the batch that completes it, not at the end
    # An episode at a time, each from the file's one keyframe: 6 + 10 + 19 + 24 frames, 4 passes.
    assert count[0] == len(every) and passes[0] == (2 if episodes_per_file else 1)


def test_episode_frames_given_as_their_file_shows_them(tmp_path, monkeypatch):
    root = synthetic_dataset(tmp_path / "ds", image_size=16)
    to_video_dataset(root)
    dataset = LeRobotDataset(root)
    every = dataset.read_images("observation.images.cam")
    (path,) = (root / "meta/episodes").rglob("*.parquet")
    table = pq.read_table(path)  # episodes 1 and 2 swapped in the file: 2 shown before 1
    column = "videos/observation.images.cam/from_timestamp"
    starts = table.column(column).to_pylist()
    starts[1], starts[2] = starts[1] + 9 / dataset.fps, starts[1]
    table = table.set_column(table.schema.get_field_index(column), column, pa.array(starts))
    pq.write_table(table, path)
    monkeypatch.setattr("leanvla.data.resize.BATCH", 4)  # episode 2 complete a batch before 1
    yielded = dict(LeRobotDataset(root).episode_frames("observation.images.cam"))
    assert list(yielded) == [0, 2, 1, 3]
    assert np.array_equal(yielded[2], every[6:15]) and np.array_equal(yielded[1], every[15:19])


def test_episode_frames_placed_out_of_order_are_read_an_episode_at_a_time(tmp_path, monkeypatch):
    root = synthetic_dataset(tmp_path / "ds", image_size=16)
    to_video_dataset(root)
    dataset = LeRobotDataset(root)
    every = dataset.read_images("observation.images.cam")
    real = video._placed_as_decoded

    def back_after_one_batch(*args):  # as a file whose times go back in its second batch
        placing = real(*args)
        yield next(placing)
        raise video._OutOfOrder(8)

    monkeypatch.setattr(video, "_placed_as_decoded", back_after_one_batch)
    monkeypatch.setattr("leanvla.data.resize.BATCH", 8)  # episode 0's 6 frames placed in the first
    read_alone, real_read = [], video.read_video_frames

    def read_video_frames_noted(*args, episodes, **kwargs):
        read_alone.append(episodes.tolist())
        return real_read(*args, episodes=episodes, **kwargs)

    monkeypatch.setattr(video, "read_video_frames", read_video_frames_noted)
    yielded = list(dataset.episode_frames("observation.images.cam"))
    assert [episode for episode, _ in yielded] == [0, 1, 2, 3]
    assert read_alone == [[1], [2], [3]]
    assert np.array_equal(np.concatenate([frames for _, frames in yielded]), every)


def test_lerobots_default_codec_av1_decodes_frame_accurately(tmp_path):
    if "libsvtav1" not in av.codecs_available:  # PyPI's PyAV wheels have it; a system build may not
        pytest.skip("this PyAV has no AV1 encoder (libsvtav1)")
    # A brightness ramp, one level per frame: lossy AV1 keeps each frame nearest its own level.
    levels = np.linspace(0, 255, 60).round().astype(np.uint8)
    frames = np.broadcast_to(levels[:, None, None, None], (60, 32, 32, 3)).copy()
    scheduling = (os.sched_getscheduler(0), os.sched_getparam(0)) if hasattr(os, "sched_getparam") else None
    encode_mp4(tmp_path / "av1.mp4", frames, 30, codec="libsvtav1")
    # SVT-AV1 as root leaves its thread real-time (SCHED_FIFO 99): the rest of the suite, and every
    # command started from it, would run so
    assert scheduling is None or (os.sched_getscheduler(0), os.sched_getparam(0)) == scheduling
    decoded, times = decode_whole(tmp_path / "av1.mp4")
    shown = decoded[nearest_frames(times, np.arange(60) / 30)].reshape(60, -1).mean(1)
    assert np.abs(shown[:, None] - levels[None].astype(float)).argmin(1).tolist() == list(range(60))
    with av.open(str(tmp_path / "av1.mp4")) as container:  # decoded on one thread: the same pixels
        one_thread = [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]
    assert np.array_equal(decoded, np.stack(one_thread))


def random_times(rng, on_grid: int, anywhere: int) -> tuple[np.ndarray, np.ndarray]:
    """(1 to 59 frames' times, wanted times): on a 1/30 s grid, so wanted times land on frames and
    exactly halfway between them, with repeated times and gaps, as a variable-rate or damaged
    stream gives; `on_grid` wanted times on the grid's half steps and `anywhere` anywhere, before,
    between and after the frames."""
    n = int(rng.integers(1, 60))
    times = np.sort(rng.integers(0, 80, n)) / 30
    return times, np.concatenate([rng.integers(-10, 180, on_grid) / 60, rng.uniform(-1, 4, anywhere)])


@pytest.mark.parametrize("seed", range(20))
def test_nearest_frames_is_the_argmin_over_every_frame(seed):
    times, wanted = random_times(np.random.default_rng(seed), 200, 50)
    slow = np.abs(times[None, :] - wanted[:, None]).argmin(axis=1)
    assert np.array_equal(nearest_frames(times, wanted), slow)


def test_nearest_frames_in_frames_out_of_order():
    times = np.array([0.2, 0.0, 0.1, 0.1])
    assert nearest_frames(times, np.array([-1.0, 0.04, 0.11, 0.14, 0.5])).tolist() == [1, 1, 2, 2, 0]


def test_a_missing_video_file_is_one_clear_error(tmp_path):
    from leanvla.errors import UserError

    root = synthetic_dataset(tmp_path / "ds", image_size=16)
    to_video_dataset(root)
    video = root / "videos/observation.images.cam/chunk-000/file-000.mp4"
    video.unlink()
    with pytest.raises(
        UserError, match=f"video file {video} is missing \\(episode 0 of 'observation.images.cam'"
    ):
        LeRobotDataset(root).read_images("observation.images.cam")


def test_a_video_shorter_than_its_episodes_is_one_clear_error(tmp_path):
    from leanvla.errors import UserError

    root = synthetic_dataset(tmp_path / "ds", image_size=16)
    frames = to_video_dataset(root)
    dataset = LeRobotDataset(root)
    video = root / "videos/observation.images.cam/chunk-000/file-000.mp4"
    video.unlink()
    encode_mp4(video, frames[:-3], dataset.fps)  # the last episode's last 3 frames lost
    last, end = dataset.num_episodes - 1, (len(frames) - 1) / dataset.fps
    with pytest.raises(
        UserError,
        match=f"episode {last} of 'observation.images.cam' needs a frame at {end:.3f} s of {video}, "
        f"whose nearest frame is at {end - 3 / dataset.fps:.3f} s: the video is shorter than its episodes",
    ):
        LeRobotDataset(root).read_images("observation.images.cam")


@pytest.mark.parametrize("damage", ["cut in half", "no frames written"])
def test_a_damaged_video_file_is_one_clear_error(tmp_path, damage):
    from leanvla.errors import UserError

    root = synthetic_dataset(tmp_path / "ds", image_size=16)
    frames = to_video_dataset(root)
    video = root / "videos/observation.images.cam/chunk-000/file-000.mp4"
    if damage == "cut in half":
        video.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
        message = "cannot be decoded"
    else:  # an mp4 written without frames has no video stream at all
        video.unlink()
        encode_mp4(video, frames[:0], LeRobotDataset(root).fps)
        message = "has no video stream"
    with pytest.raises(UserError, match=f"video file {video} {message}"):
        LeRobotDataset(root).read_images("observation.images.cam")


def test_a_video_file_the_filesystem_refuses_is_not_said_to_be_damaged(tmp_path, monkeypatch):
    """PyAV's PermissionError is an FFmpegError: it was "cannot be decoded (...); is it truncated or
    damaged?" of a colleague's 0600 mp4, with the frame cache off (with it on, hashing opened it)."""
    root = synthetic_dataset(tmp_path / "ds", image_size=16)
    to_video_dataset(root)
    video = root / "videos/observation.images.cam/chunk-000/file-000.mp4"
    refused_by_the_filesystem(monkeypatch, video)

    def as_pyav_refuses(path, *args, **kwargs):
        raise av.error.PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(av, "open", as_pyav_refuses)
    monkeypatch.setenv("LEANVLA_CACHE", "off")
    with pytest.raises(PermissionError) as refused:
        LeRobotDataset(root).read_images("observation.images.cam")
    assert refused.value.filename == str(video) and not isinstance(refused.value, av.error.FFmpegError)


def test_a_video_stream_that_decodes_no_frames_is_one_clear_error(tmp_path, monkeypatch):
    from leanvla.errors import UserError

    root = synthetic_dataset(tmp_path / "ds", image_size=16)
    to_video_dataset(root)
    real_open = av.open

    class Silent:  # the real container, but its packets decode to nothing (damaged frames)
        def __init__(self, path):
            self.container = real_open(path)

        def __getattr__(self, name):  # streams, demux, seek
            return getattr(self.container, name)

        def decode(self, stream):
            return iter(())

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.container.close()

    monkeypatch.setattr(av, "open", Silent)
    with pytest.raises(UserError, match="file-000.mp4 holds no frames; is it truncated or damaged"):
        LeRobotDataset(root).read_images("observation.images.cam")
    with pytest.raises(UserError, match="file-000.mp4 holds no frames; is it truncated or damaged"):
        list(LeRobotDataset(root).episode_frames("observation.images.cam"))


def test_decoding_a_video_shows_its_progress_in_frames(tmp_path, capsys, monkeypatch):
    import leanvla.data.resize

    root = synthetic_dataset(tmp_path / "ds", image_size=16)
    n = len(to_video_dataset(root))
    LeRobotDataset(root).read_images("observation.images.cam", progress=True)
    assert f"decode observation.images.cam:   0%|          | 0/{n}" in capsys.readouterr().err

    class Counter:
        frames = 0

        def update(self, k):
            self.frames += k

    monkeypatch.setattr(leanvla.data.resize, "BATCH", 5)  # several batches, the last one short (24 frames)
    counter = Counter()
    for _ in video._batches(root / "videos/observation.images.cam/chunk-000/file-000.mp4", 8, bar=counter):
        pass
    assert counter.frames == n


def test_video_frames_are_fitted_a_few_at_a_time_as_one_call_fits_them_all(tmp_path, monkeypatch):
    import leanvla.data.resize
    from leanvla.data.resize import fit_square

    root = synthetic_dataset(tmp_path / "ds", image_size=16)
    to_video_dataset(root)
    full = LeRobotDataset(root).read_images("observation.images.cam")
    monkeypatch.setattr(leanvla.data.resize, "BATCH", 3)  # several batches, the last one short
    rows = np.arange(len(full)) % 3 != 1
    fitted = LeRobotDataset(root).read_images("observation.images.cam", rows=rows, size=8)
    assert np.array_equal(fitted, fit_square(full, 8)[rows])


def test_a_batch_of_full_size_frames_holds_no_more_than_its_byte_bound(tmp_path, monkeypatch):
    from leanvla.data.resize import fit_square

    root = synthetic_dataset(tmp_path / "ds", image_size=16)
    to_video_dataset(root)
    full = LeRobotDataset(root).read_images("observation.images.cam")
    batches = []

    def recorded(frames, size, fit="pad"):
        batches.append(len(frames))
        return fit_square(frames, size, fit)

    monkeypatch.setenv("LEANVLA_CACHE", "off")  # decoded here, not read from an earlier test's entry
    monkeypatch.setattr(video, "RAW_BATCH_BYTES", 5 * 16 * 16 * 3 + 1)  # five 16 x 16 frames
    monkeypatch.setattr("leanvla.data.resize.fit_square", recorded)
    fitted = LeRobotDataset(root).read_images("observation.images.cam", size=8, fit="crop")
    assert np.array_equal(fitted, fit_square(full, 8, "crop"))
    assert max(batches) == 5 and sum(batches) == len(full)


def test_video_frames_are_cropped_when_asked(tmp_path):
    from leanvla.data.resize import fit_square

    root = dataset_with(tmp_path / "ds", {"cam": (12, 20)})
    to_video_dataset(root)
    full = LeRobotDataset(root).read_images("observation.images.cam")
    cropped = LeRobotDataset(root).read_images("observation.images.cam", size=8, fit="crop")
    assert np.array_equal(cropped, fit_square(full, 8, "crop"))
    assert not np.array_equal(cropped, fit_square(full, 8))


@pytest.mark.parametrize("threads", [None, 1, 3])
def test_the_decoder_runs_the_threads_the_usable_cores_allow_and_gives_the_same_frames(
    tmp_path, monkeypatch, threads
):
    root = synthetic_dataset(tmp_path / "ds", image_size=16)
    to_video_dataset(root)
    (path,) = (root / "videos").rglob("*.mp4")
    everything, _ = decode_whole(path)
    with av.open(str(path)) as container:  # FFmpeg's own choice, which it makes as it starts decoding
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        next(container.decode(stream))
        ffmpegs_own = stream.codec_context.thread_count
    opened, av_open = [], av.open
    monkeypatch.setattr(av, "open", lambda *args: opened.append(av_open(*args)) or opened[-1])
    monkeypatch.setattr(video, "decoder_threads", lambda: threads)
    monkeypatch.setattr("leanvla.data.resize.BATCH", 4)  # the file still open after the first batch
    batches = video._batches(path)
    frames, _ = next(batches)
    assert opened[0].streams.video[0].codec_context.thread_count == (threads or ffmpegs_own)
    assert np.array_equal(np.concatenate([frames.copy(), *(f.copy() for f, _ in batches)]), everything)


def test_frames_decoded_into_a_given_array_are_those_returned(tmp_path):
    root = synthetic_dataset(tmp_path / "ds", image_size=16)
    to_video_dataset(root, episodes_per_file=1)
    dataset = LeRobotDataset(root)
    returned = read_video_frames(dataset, "observation.images.cam", 8, "crop")
    out = np.zeros((dataset.num_frames, 8, 8, 3), np.uint8)
    assert read_video_frames(dataset, "observation.images.cam", 8, "crop", out=out) is out
    assert np.array_equal(out, returned)


def test_frames_go_into_place_as_they_decode_holding_a_batch_not_the_file(tmp_path, monkeypatch):
    root = synthetic_dataset(tmp_path / "ds", lengths=(80, 60, 100), tasks=("a", "b", "a"), image_size=32)
    to_video_dataset(root)  # one file of 240 frames
    dataset = LeRobotDataset(root)
    whole = read_video_frames(dataset, "observation.images.cam", 24)
    out = np.zeros_like(whole)  # the cache entry's map: not the decoder's to count
    monkeypatch.setattr("leanvla.data.resize.BATCH", 8)
    tracemalloc.start()
    try:
        read_video_frames(dataset, "observation.images.cam", 24, out=out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.array_equal(out, whole)
    # A batch is 8 frames at 32 x 32 and 9 at 24 x 24 (40 KB; the peak was 81 KB with the decoder's
    # bookkeeping); the file's fitted frames are 415 KB, and the decoder that held them peaked at 598 KB.
    assert peak < whole.nbytes / 2, f"{peak / 1e3:.0f} KB held while decoding {whole.nbytes / 1e3:.0f} KB"


def reused_batches(frames: np.ndarray, times: np.ndarray, sizes: list[int]):
    """(frames, times) a batch at a time in one array written over for each, as a decoder gives them."""
    buffer = np.empty((max(sizes), *frames.shape[1:]), frames.dtype)
    start = 0
    for size in sizes:
        buffer[:size] = frames[start : start + size]
        yield buffer[:size], times[start : start + size]
        start += size


@pytest.mark.parametrize("seed", range(30))
def test_frames_placed_as_they_decode_are_the_ones_nearest_frames_chooses_from_the_whole_file(seed):
    rng = np.random.default_rng(seed)
    times, wanted = random_times(rng, 100, 30)  # repeated times, some across the batches' cuts
    n = len(times)
    frames = np.arange(n)[:, None] * np.ones(2, np.int64)  # each frame its own index
    cuts = np.sort(rng.choice(np.arange(1, n), size=min(n - 1, int(rng.integers(0, 8))), replace=False))
    sizes = np.diff(np.r_[0, cuts, n]).tolist()
    placed = np.full((len(wanted), 2), -1)
    shown_at = np.full(len(wanted), np.nan)

    def put(chosen, chosen_frames):
        placed[chosen] = chosen_frames

    def miss(shown, at, chosen):
        assert np.array_equal(at, wanted[chosen])
        shown_at[chosen] = shown

    *_, count = video._placed_as_decoded(reused_batches(frames, times, sizes), wanted, put, miss)
    nearest = nearest_frames(times, wanted)
    assert count == n and np.array_equal(placed, frames[nearest]) and np.array_equal(shown_at, times[nearest])


def test_frames_a_file_read_whole_gives_are_put_as_views_of_their_batch_not_copies():
    times = np.arange(20) / 10  # a time each: as a file read whole gives them
    frames = np.arange(20)[:, None] * np.ones(3, np.int64)
    placed, batches = np.full((20, 3), -1), []

    def decoded():
        for batch, batch_times in reused_batches(frames, times, [6, 6, 8]):
            batches.append(batch)
            yield batch, batch_times

    def put(chosen, chosen_frames):
        assert np.shares_memory(chosen_frames, batches[-1]), "copied"
        placed[chosen] = chosen_frames

    *_, count = video._placed_as_decoded(decoded(), times, put, lambda *a: None)
    assert count == 20 and np.array_equal(placed, frames)


@pytest.mark.parametrize("seed", range(24))
def test_frames_at_indices_are_the_batchs_with_the_frame_before_it_as_minus_one(seed):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (8, 2, 3), dtype=np.uint8)
    before = rng.integers(0, 256, (2, 3), dtype=np.uint8) if seed % 3 else None
    lowest = -1 if before is not None else 0
    if seed % 2:  # a run of consecutive frames
        start = int(rng.integers(lowest, 8))
        indices = np.arange(start, int(rng.integers(start + 1, 9)))
    else:  # repeats and gaps
        indices = np.sort(rng.integers(lowest, 8, int(rng.integers(1, 10))))
    whole = np.concatenate([np.zeros((1, 2, 3), np.uint8) if before is None else before[None], frames])
    assert np.array_equal(video._frames_at(indices, frames, before), whole[indices + 1])


def test_frames_that_come_out_of_presentation_order_stop_placing_as_they_decode():
    frames, times = np.arange(4)[:, None], np.array([0.0, 0.1, 0.3, 0.2])
    with pytest.raises(video._OutOfOrder) as back:
        list(
            video._placed_as_decoded(
                reused_batches(frames, times, [2, 2]), times, lambda *a: None, lambda *a: None
            )
        )
    assert back.value.decoded == 4


def test_a_file_whose_frames_come_out_of_order_is_read_by_its_times(tmp_path, monkeypatch):
    root = synthetic_dataset(tmp_path / "ds", image_size=16)
    to_video_dataset(root)
    path = root / "videos/observation.images.cam/chunk-000/file-000.mp4"
    frames, times = decode_whole(path, 8)
    shuffled = times.copy()
    shuffled[[3, 4, 11]] = times[[11, 3, 4]]  # as a damaged file's timestamps may come
    real = video._batches

    def out_of_order(*args, **kwargs):
        start = 0
        for batch, batch_times in real(*args, **kwargs):
            yield batch, shuffled[start : start + len(batch_times)]
            start += len(batch_times)

    class Bar:
        def __init__(self, *args, **kwargs):
            self.n = 0

        def update(self, k):
            self.n += k

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            assert exc[0] is not None or self.n == len(times)  # every frame counted once

    monkeypatch.setattr(video, "_batches", out_of_order)
    monkeypatch.setattr("leanvla.data.reader.decoding_bar", Bar)
    monkeypatch.setattr("leanvla.data.resize.BATCH", 5)  # out of order in the third batch
    read = read_video_frames(LeRobotDataset(root), "observation.images.cam", 8)
    assert np.array_equal(read, frames[nearest_frames(shuffled, np.arange(len(times)) / 10)])
    assert not np.array_equal(read, frames)


def test_files_of_one_camera_at_different_sizes_are_one_clear_error(tmp_path):
    root = synthetic_dataset(tmp_path / "ds", image_size=16)
    frames = to_video_dataset(root, episodes_per_file=2)
    second = root / "videos/observation.images.cam/chunk-000/file-001.mp4"
    second.unlink()
    encode_mp4(second, np.zeros((14, 12, 16, 3), np.uint8), 10)
    assert len(frames) == 24
    with pytest.raises(
        UserError,
        match=f"video file {second} holds 12 x 16 x 3 frames but the other files of 'observation.images.cam' "
        "hold 16 x 16 x 3 ones; re-encode it at their size",
    ):
        LeRobotDataset(root).read_images("observation.images.cam")
    assert LeRobotDataset(root).read_images("observation.images.cam", size=8).shape == (24, 8, 8, 3)


@pytest.mark.parametrize("episodes", [None, [2]], ids=["every episode", "a few"])
def test_episode_lengths_that_disagree_with_the_frame_count_are_one_clear_error(tmp_path, episodes):
    root = synthetic_dataset(tmp_path / "ds", image_size=16)
    to_video_dataset(root)
    rows = None if episodes is None else np.isin(LeRobotDataset(root).read_array("episode_index"), episodes)
    info = json.loads((root / "meta/info.json").read_text())
    info["total_frames"] += 1
    (root / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(UserError, match=r"meta/episodes' lengths add up to 24 frames but .* total_frames=25"):
        LeRobotDataset(root).read_images("observation.images.cam", rows=rows, size=8)


@pytest.mark.parametrize(
    "gop, bframes",
    [(None, 0), (4, 0), (4, 2)],
    ids=["one keyframe", "a keyframe every 4 frames", "a keyframe every 4 frames, B-frames"],
)
@pytest.mark.parametrize("size", [None, 8], ids=["as stored", "fitted"])
def test_a_few_episodes_decode_alone_and_equal_those_rows_of_the_whole(
    tmp_path, monkeypatch, gop, bframes, size
):
    monkeypatch.setenv("LEANVLA_CACHE", "off")
    lengths = (30, 20, 40, 25, 35, 30)
    root = synthetic_dataset(tmp_path / "ds", lengths=lengths, tasks=("a",) * 6, image_size=16)
    to_video_dataset(root, episodes_per_file=3, gop=gop, bframes=bframes)
    whole = LeRobotDataset(root).read_images("observation.images.cam", size=size)
    episode = LeRobotDataset(root).read_array("episode_index")
    for chosen in ([0], [2], [3], [5], [1, 4], [0, 2]):  # first, middle and last of a file; across files
        rows = np.isin(episode, chosen)
        count = decoded_frame_count(monkeypatch)
        part = LeRobotDataset(root).read_images("observation.images.cam", rows=rows, size=size)
        assert np.array_equal(part, whole[rows]), chosen
        if gop == 4:  # from a keyframe before each episode to a frame past its end: 2 to 11 more here
            assert count[0] <= rows.sum() + len(chosen) * (gop + 3), (chosen, count[0])
        else:  # decoding on from one episode to the next, never seeking back to the one keyframe
            files = {ep // 3 for ep in chosen}
            assert count[0] <= sum(sum(lengths[3 * f : 3 * f + 3]) for f in files), (chosen, count[0])


def test_episodes_of_lerobots_default_av1_decode_alone_as_they_do_in_the_whole(tmp_path, monkeypatch):
    if "libsvtav1" not in av.codecs_available:
        pytest.skip("this PyAV has no AV1 encoder (libsvtav1)")
    monkeypatch.setenv("LEANVLA_CACHE", "off")
    root = synthetic_dataset(tmp_path / "ds", lengths=(30, 20, 40, 25), tasks=("a",) * 4, image_size=32)
    to_video_dataset(root, gop=2, codec="libsvtav1")  # as LeRobot encodes: lossy, a keyframe every 2
    whole = LeRobotDataset(root).read_images("observation.images.cam")
    episode = LeRobotDataset(root).read_array("episode_index")
    for chosen in ([1], [3], [0, 2]):
        rows = np.isin(episode, chosen)
        assert np.array_equal(
            LeRobotDataset(root).read_images("observation.images.cam", rows=rows), whole[rows]
        )


def test_a_read_of_over_half_the_frames_decodes_the_whole_camera(tmp_path, monkeypatch):
    monkeypatch.setenv("LEANVLA_CACHE", "off")
    root = synthetic_dataset(tmp_path / "ds", image_size=16)  # episodes of 6, 4, 9 and 5 frames
    to_video_dataset(root, episodes_per_file=2, gop=2)
    episode = LeRobotDataset(root).read_array("episode_index")
    for chosen, frames in [([2], 9), ([0, 3], 11), ([0, 2], 15), ([1, 2], 13)]:  # 11 of 24 is a part
        count = decoded_frame_count(monkeypatch)
        LeRobotDataset(root).read_images("observation.images.cam", rows=np.isin(episode, chosen), size=8)
        if frames <= 12:  # from the keyframe before each episode, to a frame past its end
            assert count[0] <= frames + 3 * len(chosen), (chosen, count[0])
        else:
            assert count[0] == 24, (chosen, count[0])


def test_keyframes_and_frames_are_found_from_the_packets_alone(tmp_path):
    encode_mp4(tmp_path / "gop.mp4", np.zeros((23, 16, 16, 3), np.uint8), 10, gop=4)
    with av.open(str(tmp_path / "gop.mp4")) as container:
        found, every = video._packet_times(container, container.streams.video[0])
    assert np.allclose(found, np.arange(0, 23, 4) / 10)
    assert np.allclose(every, np.arange(23) / 10)
    assert video._last_at_or_before(found, 0.45) == pytest.approx(0.4)
    assert video._last_at_or_before(found, 0.4) == pytest.approx(0.4)
    assert video._last_at_or_before(found, -0.1) == -np.inf
    assert video._first_at_or_after(every, 0.45) == pytest.approx(0.5)
    assert video._first_at_or_after(every, every[4]) == every[4]
    assert video._first_at_or_after(every, 2.25) == np.inf
    assert video._first_at_or_after(np.array([]), 0.45) == 0.45  # no times to go by


@pytest.mark.parametrize("gop", [None, 2], ids=["decoding on", "seeking"])
def test_frames_within_windows_come_once_each_in_order(tmp_path, gop):
    frames = np.arange(20, dtype=np.uint8)[:, None, None, None] * np.ones((1, 16, 16, 3), np.uint8) * 12
    encode_mp4(tmp_path / "w.mp4", frames, 10, gop=gop)
    # The frame at 0.3 s ends the first window and opens the second.
    windows = [(0.0, 0.25), (0.27, 0.6), (1.05, 1.3)]
    taken = [(f.copy(), t) for f, t in video._batches(tmp_path / "w.mp4", windows=windows)]
    times = np.concatenate([t for _, t in taken])
    assert np.allclose(times, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 1.1, 1.2, 1.3])
    shown = np.concatenate([f for f, _ in taken])[:, 0, 0, 0].astype(int)
    assert np.abs(shown - (np.round(times * 10) * 12)).max() <= 2  # each frame is its own picture


def test_the_stretches_around_episodes_join_where_they_overlap():
    starts, lengths = np.array([3.0, 0.0, 1.0, 10.0]), np.array([10, 10, 5, 10])  # at 10 fps
    # Each episode's frame times widened by three quarters of a frame: 0.0 to 0.9 s is -0.075 to 0.975 s.
    assert np.allclose(
        video._windows(starts, lengths, 10.0), [(-0.075, 1.475), (2.925, 3.975), (9.925, 10.975)]
    )
