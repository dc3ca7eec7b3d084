"""Decode `dtype: video` features (mp4 files shared by many episodes) with PyAV, loaded lazily.

In LeRobot v3 an episode's frames live in `videos/<key>/chunk-XXX/file-YYY.mp4` between the
episode's `from_timestamp` and `to_timestamp` (columns of the episodes metadata); frame f of the
episode is the one shown at `from_timestamp + f / fps`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from leanvla.data import format as fmt
from leanvla.errors import require
from leanvla.optional import require_module

if TYPE_CHECKING:
    from leanvla.data.reader import LeRobotDataset


def _decode_all(path, size: int | None = None, fit: str = "pad") -> tuple[np.ndarray, np.ndarray]:
    """Every frame of an mp4 (uint8 N x H x W x 3, or N x size x size x 3 fitted a few frames at a
    time as they decode: leanvla.data.resize) and its presentation time in seconds."""
    from leanvla.data.resize import BATCH, fit_square

    av = require_module("av")
    kept, pending, times = [], [], []

    def flush() -> None:
        if pending:
            frames = np.stack(pending)
            kept.append(frames if size is None else fit_square(frames, size, fit))
            pending.clear()

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            pending.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.pts * stream.time_base))
            if len(pending) == BATCH:
                flush()
    flush()
    return np.concatenate(kept), np.asarray(times)


def read_video_frames(
    dataset: LeRobotDataset, key: str, size: int | None = None, fit: str = "pad"
) -> np.ndarray:
    """All frames of a video feature, in dataset order (uint8 frames x H x W x C, or fitted to
    size x size as `fit` says)."""
    cols = {
        name: dataset.episode_column(f"videos/{key}/{name}")
        for name in ("chunk_index", "file_index", "from_timestamp")
    }
    lengths = dataset.episode_column("length")
    template = dataset.info.get("video_path") or fmt.VIDEO_PATH
    decoded: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    out = []
    for ep, length in enumerate(lengths):
        file_key = (cols["chunk_index"][ep], cols["file_index"][ep])
        if file_key not in decoded:
            path = dataset.root / template.format(
                video_key=key, chunk_index=file_key[0], file_index=file_key[1]
            )
            require(path.is_file(), f"video file {path} is missing (episode {ep} of '{key}' points to it)")
            decoded[file_key] = _decode_all(path, size, fit)
        frames, times = decoded[file_key]
        wanted = cols["from_timestamp"][ep] + np.arange(length) / dataset.fps
        nearest = np.abs(times[None, :] - wanted[:, None]).argmin(axis=1)
        out.append(frames[nearest])
    return np.concatenate(out)
