"""Decode `dtype: video` features (mp4 files shared by many episodes) with PyAV, loaded lazily.

In LeRobot v3 an episode's frames live in `videos/<key>/chunk-XXX/file-YYY.mp4` between the
episode's `from_timestamp` and `to_timestamp` (columns of the episodes metadata); frame f of the
episode is the one shown at `from_timestamp + f / fps`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from leanvla.data import format as fmt
from leanvla.errors import UserError, require
from leanvla.optional import require_module

if TYPE_CHECKING:
    from leanvla.data.reader import LeRobotDataset


RAW_BATCH_BYTES = 64 << 20  # full-size frames held at most while a batch waits to be fitted


class _FileFrames:
    """A file's frames appended a batch at a time into one array, sized for the frame count the
    file declares (grown where that is wrong), so they are never held twice, as joining them would."""

    def __init__(self, declared: int):
        self.declared, self.array, self.count = declared, None, 0

    def append(self, frames: np.ndarray) -> None:
        end = self.count + len(frames)
        if self.array is None or end > len(self.array):
            grown = np.empty((max(end, self.declared, 2 * self.count), *frames.shape[1:]), np.uint8)
            if self.array is not None:
                grown[: self.count] = self.array[: self.count]
            self.array = grown
        self.array[self.count : end] = frames
        self.count = end

    def frames(self) -> np.ndarray:
        return self.array[: self.count]


def _decode_all(path, size: int | None = None, fit: str = "pad", bar=None) -> tuple[np.ndarray, np.ndarray]:
    """Every frame of an mp4 (uint8 N x H x W x 3, or N x size x size x 3 fitted a batch at a time
    as they decode: leanvla.data.resize) and its presentation time in seconds; `bar` (tqdm) counts
    the frames. A batch is BATCH frames, or fewer where they would pass RAW_BATCH_BYTES (a 1080p
    camera's 256 frames are 1.6 GB)."""
    from leanvla.data.resize import BATCH, fit_square

    av = require_module("av")
    kept, times = None, []
    batch, filled = None, 0  # decoded frames waiting to be fitted, written in place

    def flush() -> None:
        nonlocal filled
        if filled:
            frames = batch[:filled]
            kept.append(frames if size is None else fit_square(frames, size, fit))
            if bar is not None:
                bar.update(filled)
            filled = 0

    try:
        with av.open(str(path)) as container:
            require(container.streams.video, f"video file {path} has no video stream; re-encode it")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # FFmpeg's frame and slice threads: the same pixels, sooner
            kept = _FileFrames(stream.frames)  # 0 where the file does not say
            for frame in container.decode(stream):
                image = frame.to_ndarray(format="rgb24")
                if batch is None:
                    frames_per_batch = max(1, min(BATCH, RAW_BATCH_BYTES // image.nbytes))
                    batch = np.empty((frames_per_batch, *image.shape), np.uint8)
                batch[filled] = image
                filled += 1
                times.append(float(frame.pts * stream.time_base))
                if filled == len(batch):
                    flush()
    except av.error.FFmpegError as exc:
        raise UserError(f"video file {path} cannot be decoded ({exc}); is it truncated or damaged?") from exc
    flush()
    require(kept.count, f"video file {path} holds no frames; is it truncated or damaged?")
    return kept.frames(), np.asarray(times)


def read_video_frames(
    dataset: LeRobotDataset,
    key: str,
    size: int | None = None,
    fit: str = "pad",
    progress: bool = False,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """All frames of a video feature, in dataset order (uint8 frames x H x W x C, or fitted to
    size x size as `fit` says), with a progress bar over the frames decoded when `progress`; into
    `out` when given (a memory-mapped cache entry), so the decoded camera need not fit in memory."""
    from leanvla.data.reader import decoding_bar

    starts = dataset.episode_column(f"videos/{key}/from_timestamp")
    lengths = dataset.episode_column("length")
    paths = video_files(dataset, key)
    if out is not None:
        require(
            len(out) == sum(lengths),
            f"{dataset.root}: meta/episodes' lengths add up to {int(sum(lengths))} frames but "
            f"meta/info.json says total_frames={len(out)}; the dataset is inconsistent",
        )
    last_episode = {path: ep for ep, path in enumerate(paths)}
    decoded: dict[Path, tuple[np.ndarray, np.ndarray]] = {}
    taken, filled = [], 0
    # The files' frames: as many as the episodes' when the files hold nothing else.
    with decoding_bar(key, int(sum(lengths)), "frame", progress) as bar:
        for ep, (length, path) in enumerate(zip(lengths, paths)):
            if path not in decoded:
                decoded[path] = _decode_all(path, size, fit, bar)
            # A file's frames go after its last episode: where a file's episodes come together (as
            # LeRobot writes them), one file's frames are held at a time.
            frames, times = decoded[path] if last_episode[path] > ep else decoded.pop(path)
            wanted = starts[ep] + np.arange(length) / dataset.fps
            nearest = _frames_at(times, wanted, dataset.fps, f"episode {ep} of '{key}'", path)
            if out is None:
                taken.append(frames[nearest])
            else:  # in place as each episode comes
                np.take(frames, nearest, axis=0, out=out[filled : filled + length])
            del frames, times
            filled += length
    return np.concatenate(taken) if out is None else out


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


def _frames_at(times: np.ndarray, wanted: np.ndarray, fps: float, who: str, path) -> np.ndarray:
    """nearest_frames, refusing any more than half a frame from its wanted time: that is another
    frame (the file is shorter than its episodes, or their timestamps are wrong), and repeating the
    last frame would hide it."""
    nearest = nearest_frames(times, wanted)
    miss = np.abs(times[nearest] - wanted)
    if miss.size and miss.max() > 0.5 / fps:
        worst = int(miss.argmax())
        raise UserError(
            f"{who} needs a frame at {wanted[worst]:.3f} s of {path}, whose nearest frame is at "
            f"{times[nearest[worst]]:.3f} s: the video is shorter than its episodes, or meta/episodes' "
            "timestamps are wrong; is the file truncated?"
        )
    return nearest


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
