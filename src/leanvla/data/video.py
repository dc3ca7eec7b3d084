"""Decode `dtype: video` features (mp4 files shared by many episodes) with PyAV, loaded lazily.

In LeRobot v3 an episode's frames live in `videos/<key>/chunk-XXX/file-YYY.mp4` between the
episode's `from_timestamp` and `to_timestamp` (columns of the episodes metadata); frame f of the
episode is the one shown at `from_timestamp + f / fps`.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from leanvla.cores import decoder_threads
from leanvla.data import format as fmt
from leanvla.errors import UserError, require
from leanvla.machine_errors import refusal_to_open
from leanvla.optional import require_module

if TYPE_CHECKING:
    from leanvla.data.reader import LeRobotDataset


RAW_BATCH_BYTES = 64 << 20  # full-size frames held at most while a batch waits to be fitted
WIDENED = 0.75  # frames: how far an episode's window in a file reaches past its first and last


def _batches(
    path,
    size: int | None = None,
    fit: str = "pad",
    bar=None,
    pixels: bool = True,
    windows: list[tuple[float, float]] | None = None,
) -> Iterator[tuple[np.ndarray | None, np.ndarray]]:
    """An mp4's frames as they decode, a batch at a time: (uint8 n x H x W x 3, or n x size x size
    x 3 fitted as `fit` says: leanvla.data.resize; their presentation times in seconds). A batch is
    BATCH frames, or fewer where they would pass RAW_BATCH_BYTES (a 1080p camera's 256 frames are
    1.6 GB). Its array may be reused for the next batch: copy what must outlive it. Without
    `pixels`, only the times (frames None: no conversion to RGB, no fitting). With `windows`
    (increasing, apart: (first, last) seconds), only the frames shown within them, each window's
    first frame found by seeking to the keyframe at or before it and decoding from there. `bar`
    (tqdm) counts the frames."""
    from leanvla.data.resize import BATCH, fit_square

    av = require_module("av")
    batch, times, filled = None, [], 0  # decoded frames waiting to be fitted, written in place

    def ready() -> tuple[np.ndarray | None, np.ndarray]:
        nonlocal filled, times
        frames = None if batch is None else batch[:filled]
        if frames is not None and size is not None:
            frames = fit_square(frames, size, fit)
        if bar is not None:
            bar.update(len(times))
        done, times, filled = np.asarray(times), [], 0
        return frames, done

    try:
        with av.open(str(path)) as container:
            require(container.streams.video, f"video file {path} has no video stream; re-encode it")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # FFmpeg's frame and slice threads: the same pixels, sooner
            if (threads := decoder_threads()) is not None:  # a quota or torchrun's processes: fewer
                stream.codec_context.thread_count = threads
            ticks_per = stream.time_base.numerator, stream.time_base.denominator
            keyframes, shown_at = _packet_times(container, stream) if windows else (None, None)
            decoded, waiting, position = None, None, -math.inf  # the decoder, where it stands
            for first, last in windows or [(-math.inf, math.inf)]:
                # Decoding starts at the keyframe at or before the window's first frame: in a file
                # of joined episodes, each episode's first frame is one.
                start = _first_at_or_after(shown_at, first) if windows else first
                if start == math.inf:  # no frame from here on
                    break
                # Seek where that skips frames; where that keyframe is behind the decoder (a short
                # gap, or keyframes far apart), decoding on costs less.
                if decoded is None or _last_at_or_before(keyframes, start) > position:
                    decoded, waiting = _decoded_from(container, stream, start), None
                frames = decoded if waiting is None else itertools.chain([waiting], decoded)
                waiting = None
                for frame in frames:
                    shown = position = _seconds(frame.pts, ticks_per)
                    if shown < first:  # decoded on the way from the keyframe: not wanted
                        continue
                    if shown > last:  # perhaps the next window's
                        waiting = frame
                        break
                    if pixels:
                        image = frame.to_ndarray(format="rgb24")
                        if batch is None:
                            frames_per_batch = max(1, min(BATCH, RAW_BATCH_BYTES // image.nbytes))
                            batch = np.empty((frames_per_batch, *image.shape), np.uint8)
                        batch[filled] = image
                        filled += 1
                    times.append(shown)
                    if len(times) == (len(batch) if pixels else BATCH):
                        yield ready()
    except av.error.FFmpegError as exc:
        refused = refusal_to_open(path)  # not damaged: the filesystem's refusal, as Python says it
        if refused is not None:
            raise refused from exc
        raise UserError(f"video file {path} cannot be decoded ({exc}); is it truncated or damaged?") from exc
    if times:
        yield ready()


def _decoded_from(container, stream, first: float) -> Iterator:
    """The stream's frames in presentation order from the keyframe at or before `first` seconds
    (from the start when it is -inf)."""
    if first > -math.inf:  # PyAV flushes the decoder as it seeks
        # In the stream's ticks; a frame's own time, back from seconds, may come out a hair under
        # its tick, which would seek to the keyframe before it.
        ticks = math.floor(first / stream.time_base + 1e-6)
        container.seek(max(0, ticks), stream=stream, backward=True)
    return iter(container.decode(stream))


def _packet_times(container, stream) -> tuple[np.ndarray, np.ndarray]:
    """When the stream's keyframes are shown, and when every frame is, in seconds, increasing: read
    from its packets, which costs a pass over the file but no decoding. A stream whose packets
    carry no times has neither."""
    keyframes, frames = [], []
    ticks_per = stream.time_base.numerator, stream.time_base.denominator
    for packet in container.demux(stream):
        if packet.pts is not None:
            shown = _seconds(packet.pts, ticks_per)
            frames.append(shown)
            if packet.is_keyframe:
                keyframes.append(shown)
    return np.sort(np.asarray(keyframes, dtype=np.float64)), np.sort(np.asarray(frames, dtype=np.float64))


def _seconds(ticks: int, ticks_per: tuple[int, int]) -> float:
    """A time in a stream's ticks, in seconds: `float(ticks * time_base)` exactly (integers'
    division rounds correctly, as a Fraction's conversion does), without making a Fraction per
    packet and frame: a third of a pass over a file's packets, profiled."""
    numerator, denominator = ticks_per
    return ticks * numerator / denominator


def _last_at_or_before(times: np.ndarray, moment: float) -> float:
    """The latest of the increasing `times` at or before `moment`; -inf when none is."""
    at = int(np.searchsorted(times, moment, side="right")) - 1
    return float(times[at]) if at >= 0 else -math.inf


def _first_at_or_after(times: np.ndarray, moment: float) -> float:
    """The earliest of the increasing `times` at or after `moment`; inf when none is, and `moment`
    itself when there are no times to go by."""
    if not len(times):
        return moment
    at = int(np.searchsorted(times, moment, side="left"))
    return float(times[at]) if at < len(times) else math.inf


class _OutOfOrder(Exception):
    """A file's frames came out of presentation order, so a frame already put may not be the
    nearest after all; `decoded` frames had come."""

    def __init__(self, decoded: int):
        super().__init__(decoded)
        self.decoded = decoded


def _placed_as_decoded(batches, wanted: np.ndarray, put: Callable, miss: Callable) -> Iterator[int]:
    """Put each wanted time's nearest frame, as `nearest_frames` chooses it, as the frames decode:
    `put(i, frames)` for the wanted indices i, `miss(shown, wanted[i], i)` checking how far from
    its time each chosen frame is shown. A time is settled once a frame shown at or after it has
    come, since later frames are no nearer; so a batch and one earlier frame are held at a time,
    never the file (LeRobot packs many episodes, gigabytes of frames, into one mp4). A run of
    consecutive frames of the batch (a time each, as a file read whole gives them) is put as a
    view of it, not a copy: `put` copies what it keeps, since the batch is written over. Raises
    _OutOfOrder where the times go back. Yields how many frames have come after each batch is
    placed, and once more at the end, when every time is: the total."""
    order = np.argsort(wanted, kind="stable")
    ordered = wanted[order]
    settled, count = 0, 0
    held = None  # (frame, time): the first frame shown at the latest time so far
    for frames, times in batches:
        count += len(times)
        before = 0 if held is None else 1  # the nearest frame may be the one shown before this batch
        if held is not None:
            times = np.concatenate([[held[1]], times])
        if np.any(times[1:] < times[:-1]):
            raise _OutOfOrder(count)
        upto = int(np.searchsorted(ordered, times[-1], side="right"))
        if upto > settled:
            chosen = order[settled:upto]
            nearest = nearest_frames(times, wanted[chosen])
            miss(times[nearest], wanted[chosen], chosen)
            put(chosen, _frames_at(nearest - before, frames, None if held is None else held[0]))
            settled = upto
        first_of_last = int(np.searchsorted(times, times[-1], side="left")) - before
        held = (held[0] if first_of_last < 0 else frames[first_of_last].copy()), times[first_of_last + before]
        yield count
    if count and settled < len(wanted):  # after the last frame: the last time's first frame
        chosen = order[settled:]
        miss(np.full(len(chosen), held[1]), wanted[chosen], chosen)
        put(chosen, held[0][None])
    yield count


def _frames_at(indices: np.ndarray, frames: np.ndarray, before: np.ndarray | None) -> np.ndarray:
    """frames[indices] for non-decreasing `indices`, -1 naming the frame `before` the batch: a
    view of `frames` where they are consecutive, else a copy. The batch was copied twice more
    (joined to the frame before it, then picked out), into fresh memory each time: 64 MB of
    full-size frames a batch. Without them `data stats` on one mp4 of many episodes peaks 127 MB
    lower; its time, 0.77-1.06x what it took in two runs, is not settled here (docs/RESULTS.md)."""
    if indices[0] >= 0 and bool(np.all(np.diff(indices) == 1)):
        return frames[indices[0] : indices[-1] + 1]
    if indices[0] >= 0:
        return frames[indices]
    return np.concatenate([before[None], frames])[indices + 1]


def read_video_frames(
    dataset: LeRobotDataset,
    key: str,
    size: int | None = None,
    fit: str = "pad",
    progress: bool = False,
    out: np.ndarray | None = None,
    episodes: np.ndarray | None = None,
) -> np.ndarray:
    """All frames of a video feature, in dataset order (uint8 frames x H x W x C, or fitted to
    size x size as `fit` says), with a progress bar over the frames decoded when `progress`; into
    `out` when given (a memory-mapped cache entry), so the decoded camera need not fit in memory:
    each frame goes into place as it decodes (`_placed_as_decoded`). With `episodes` (increasing
    indices), only their frames, in order: only the files holding them decode, and of those only
    the stretches around the episodes, each reached by seeking (LeRobot packs hundreds of episodes
    into a file)."""
    from leanvla.data.reader import decoding_bar

    starts = np.asarray(dataset.episode_column(f"videos/{key}/from_timestamp"), dtype=np.float64)
    lengths = np.asarray(dataset.episode_column("length"), dtype=np.int64)
    paths = video_files(dataset, key)
    read = np.arange(len(lengths)) if episodes is None else np.asarray(episodes, dtype=np.int64)
    total = int(lengths[read].sum())
    if out is not None:
        require(
            len(out) == total,
            f"{dataset.root}: meta/episodes' lengths add up to {total} frames but "
            f"meta/info.json says total_frames={len(out)}; the dataset is inconsistent",
        )
    first_row = np.cumsum(lengths[read]) - lengths[read]  # of each episode read, in what is returned
    camera = _Camera(out, total, key)
    # The files' frames: as many as the episodes' when the files hold nothing else.
    with decoding_bar(key, total, "frame", progress) as bar:
        for path, places in _places_by_file(paths, read).items():
            place = np.repeat(places, lengths[read[places]])
            episode, frame, wanted = _frames_wanted(read[places], starts, lengths, dataset.fps)
            rows = first_row[place] + frame
            windows = (
                None
                if episodes is None
                else _windows(starts[read[places]], lengths[read[places]], dataset.fps)
            )

            def put(chosen: np.ndarray, frames: np.ndarray, rows=rows, path=path) -> None:
                camera.put(rows[chosen], frames, path)

            def miss(shown: np.ndarray, at: np.ndarray, chosen: np.ndarray, episode=episode, path=path):
                _refuse_far_frames(shown, at, episode[chosen], dataset.fps, key, path)

            try:
                with contextlib.closing(_batches(path, size, fit, bar, windows=windows)) as batches:
                    *_, count = _placed_as_decoded(batches, wanted, put, miss)  # the last: the total
            except _OutOfOrder as back:
                if bar is not None:  # this file's frames count again as they decode again
                    bar.update(-back.decoded)
                count = _place_by_times(path, size, fit, bar, wanted, put, miss)
            require(count, f"video file {path} holds no frames; is it truncated or damaged?")
    return camera.frames


def video_episode_frames(dataset: LeRobotDataset, key: str) -> Iterator[tuple[int, np.ndarray]]:
    """Each episode's frames of a video feature as stored (uint8 length x H x W x C), as
    (episode, frames), one episode held at a time: each file decoded in one pass over its
    episodes' stretches, an episode given as soon as its last frame is placed (so in the order its
    file shows them; those completed by one batch in episode order). Read an episode at a time
    instead, a file of many episodes would be passed over (its packets' times) once per episode,
    and, where its keyframes are far apart, decoded from the keyframe before each episode: 3x the
    time for 300 episodes of one H.264 file (docs/RESULTS.md). The frames are those
    `read_video_frames` gives."""
    starts = np.asarray(dataset.episode_column(f"videos/{key}/from_timestamp"), dtype=np.float64)
    lengths = np.asarray(dataset.episode_column("length"), dtype=np.int64)
    paths = video_files(dataset, key)
    for path, episodes in _places_by_file(paths, np.arange(len(lengths))).items():
        yield from _file_episode_frames(dataset, key, path, np.asarray(episodes), starts, lengths)


def _file_episode_frames(
    dataset: LeRobotDataset,
    key: str,
    path: Path,
    episodes: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
) -> Iterator[tuple[int, np.ndarray]]:
    """`video_episode_frames` of one file, which holds `episodes`."""
    episode, frame, wanted = _frames_wanted(episodes, starts, lengths, dataset.fps)
    held: dict[int, np.ndarray] = {}  # episodes being placed
    left = dict(zip(episodes.tolist(), lengths[episodes].tolist()))  # their frames still to place
    complete: list[int] = []  # placed, not yet given

    def put(chosen: np.ndarray, frames: np.ndarray) -> None:
        # By runs of one episode (in time order, a file's episodes one after another): slices,
        # where picking each episode's frames out would copy a batch of full-size frames again.
        cuts = [0, *(np.flatnonzero(np.diff(episode[chosen])) + 1).tolist(), len(chosen)]
        for first, stop in itertools.pairwise(cuts):
            ep = int(episode[chosen[first]])
            if ep not in held:
                held[ep] = np.empty((lengths[ep], *frames.shape[1:]), np.uint8)
            held[ep][frame[chosen[first:stop]]] = frames[first:stop]
            left[ep] -= stop - first
            if not left[ep]:
                complete.append(ep)

    def miss(shown: np.ndarray, at: np.ndarray, chosen: np.ndarray) -> None:
        _refuse_far_frames(shown, at, episode[chosen], dataset.fps, key, path)

    given: list[int] = []
    windows = _windows(starts[episodes], lengths[episodes], dataset.fps)
    try:
        with contextlib.closing(_batches(path, windows=windows)) as batches:
            for _ in _placed_as_decoded(batches, wanted, put, miss):
                while complete:
                    given.append(complete.pop(0))
                    yield given[-1], held.pop(given[-1])
    except _OutOfOrder:  # where the nearest frame is unsure, the rest an episode at a time
        for ep in sorted(set(episodes.tolist()) - set(given)):
            yield ep, read_video_frames(dataset, key, episodes=np.array([ep]))
        return
    require(given, f"video file {path} holds no frames; is it truncated or damaged?")


def _places_by_file(paths: list[Path], read: np.ndarray) -> dict[Path, list[int]]:
    """Each file's episodes among those `read` (their places in it), in order."""
    files: dict[Path, list[int]] = {}
    for place, episode in enumerate(read):
        files.setdefault(paths[episode], []).append(place)
    return files


def _frames_wanted(
    episodes: np.ndarray, starts: np.ndarray, lengths: np.ndarray, fps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every frame of `episodes`, in order: its episode, its index there, and the time in its
    file at which it is shown."""
    episode = np.repeat(episodes, lengths[episodes])
    frame = np.concatenate([np.arange(lengths[e]) for e in episodes])
    return episode, frame, starts[episode] + frame / fps


def _windows(starts: np.ndarray, lengths: np.ndarray, fps: float) -> list[tuple[float, float]]:
    """The stretches of a file (seconds, increasing, apart) that hold the frames of episodes
    starting at `starts` with `lengths` frames: each episode's frame times widened by WIDENED
    frames either way (a frame chosen for them is shown within half of one; a quarter more spares
    the comparison rounding, and stops short of the frame before the episode, which in a file of
    joined episodes is decoded from the previous episode's keyframe); overlapping ones joined."""
    joined: list[list[float]] = []
    widened = WIDENED / fps
    for first, last in sorted(zip(starts - widened, starts + (lengths - 1) / fps + widened)):
        if joined and first <= joined[-1][1]:
            joined[-1][1] = max(joined[-1][1], last)
        else:
            joined.append([first, last])
    return [(first, last) for first, last in joined]


def _place_by_times(
    path, size: int | None, fit: str, bar, wanted: np.ndarray, put: Callable, miss: Callable
) -> int:
    """`_placed_as_decoded` for a file whose frames come out of presentation order: every time read
    first (a pass without pixels), each wanted frame found among them all, then the file decoded
    again, each frame put where it is wanted. Twice the decoding, no more memory."""
    with contextlib.closing(_batches(path, pixels=False)) as batches:
        every_time = [batch_times for _, batch_times in batches]
    if not every_time:
        return 0
    times = np.concatenate(every_time)
    nearest = nearest_frames(times, wanted)
    everything = np.arange(len(wanted))
    miss(times[nearest], wanted, everything)
    by_frame = np.argsort(nearest, kind="stable")
    first = 0
    with contextlib.closing(_batches(path, size, fit, bar)) as batches:
        for frames, batch_times in batches:
            lo, hi = np.searchsorted(nearest[by_frame], [first, first + len(batch_times)])
            chosen = by_frame[lo:hi]
            put(chosen, frames[nearest[chosen] - first])
            first += len(batch_times)
    return first


class _Camera:
    """A camera's frames in dataset order, filled a file's frames at a time: into a given array,
    or one made at the first frames, whose shape only the decoder knows when they are not fitted."""

    def __init__(self, out: np.ndarray | None, total: int, key: str):
        self.frames, self.total, self.key = out, total, key

    def put(self, rows: np.ndarray, frames: np.ndarray, path) -> None:
        if self.frames is None:
            self.frames = np.empty((self.total, *frames.shape[1:]), np.uint8)
        require(
            frames.shape[1:] == self.frames.shape[1:],
            f"video file {path} holds {' x '.join(map(str, frames.shape[1:]))} frames but the other files of "
            f"'{self.key}' hold {' x '.join(map(str, self.frames.shape[1:]))} ones; re-encode it at their size, "
            "or read the camera at a fitted size (--model.image-size)",
        )
        self.frames[rows] = frames


def video_files(dataset: LeRobotDataset, key: str) -> list[Path]:
    """The mp4 file holding each episode's frames of a video feature, in episode order (one file
    holds many episodes); a missing one is refused, naming the first episode that points to it."""
    chunks, files = (dataset.episode_column(f"videos/{key}/{name}") for name in ("chunk_index", "file_index"))
    template = dataset.info.get("video_path") or fmt.VIDEO_PATH
    paths = []
    for ep, (chunk, file) in enumerate(zip(chunks, files)):
        path = dataset.root / template.format(video_key=key, chunk_index=chunk, file_index=file)
        require(path.is_file(), f"video file {path} is missing (episode {ep} of '{key}' points to it)")
        paths.append(path)
    return paths


def _refuse_far_frames(
    shown: np.ndarray, wanted: np.ndarray, episodes: np.ndarray, fps: float, key: str, path
) -> None:
    """Refuse a chosen frame (shown at `shown`) more than half a frame from its wanted time: that
    is another frame (the file is shorter than its episodes, or their timestamps are wrong), and
    repeating the last frame would hide it."""
    miss = np.abs(shown - wanted)
    if miss.size and miss.max() > 0.5 / fps:
        worst = int(miss.argmax())
        raise UserError(
            f"episode {episodes[worst]} of '{key}' needs a frame at {wanted[worst]:.3f} s of {path}, whose "
            f"nearest frame is at {shown[worst]:.3f} s: the video is shorter than its episodes, or "
            "meta/episodes' timestamps are wrong; is the file truncated?"
        )


def nearest_frames(times: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """For each wanted time, the index of the frame shown nearest it; on a tie, the earlier time,
    and of frames sharing a time, the first. For non-decreasing `times` (a decoder gives frames in
    presentation order) that is `np.abs(times[None] - wanted[:, None]).argmin(1)`, found by
    bisection: that matrix, episode x file length, is 400 MB for 1000 frames in a 50000-frame
    mp4, and LeRobot packs many episodes into each file."""
    if len(times) == 1:
        return np.zeros(len(wanted), dtype=np.int64)
    # Sorted already, as decoders give them: checking costs a pass, sorting a file per episode more.
    order = None if bool(np.all(times[1:] >= times[:-1])) else np.argsort(times, kind="stable")
    ordered = times if order is None else times[order]
    after = np.searchsorted(ordered, wanted, side="left").clip(1, len(ordered) - 1)
    before = after - 1
    later = np.abs(ordered[after] - wanted) < np.abs(ordered[before] - wanted)
    nearest = np.where(later, after, before)
    first = np.searchsorted(ordered, ordered[nearest], side="left")  # of frames sharing a time
    return first if order is None else order[first]
