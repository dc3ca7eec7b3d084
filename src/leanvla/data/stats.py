"""Per-feature statistics in LeRobot's layout (min, max, mean, std, count, q01..q99).

LeRobot stores them per episode (columns `stats/<feature>/<stat>` of the episodes metadata) and
aggregated over the dataset (`meta/stats.json`); normalisation of states and actions reads them.
Image statistics are per channel, scaled to [0, 1], shaped (C, 1, 1) as LeRobot writes them.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from leanvla.cores import cores_per_process

QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
STAT_NAMES = ("min", "max", "mean", "std", "count", *QUANTILES)
# Pixel values counted two bytes at a time from this many bytes a batch on (a 224 x 224 RGB frame
# is 150 KB), and on every core from PARALLEL_BYTES on (five 480 x 640 frames): below, the joint
# counts' bins, and starting threads, cost about what they save (docs/results/pixel_counts.md).
PAIRED_BYTES = 1 << 17
PARALLEL_BYTES = 1 << 22
# Pixel words made 64-bit indices for np.bincount this many at a time, into one 2 MB array: made
# all at once, an episode's took memory the kernel zeroed afresh each time (221 MB for 60 frames
# of 480 x 640): 8% of `data stats`' time, profiled, and most of its page faults.
WORDS_AT_ONCE = 1 << 18


def vector_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics over the first axis of `values` (frames x dims, or frames for a scalar column)."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    stats = {
        "min": x.min(axis=0),
        "max": x.max(axis=0),
        "mean": x.mean(axis=0),
        "std": x.std(axis=0),
        "count": np.array([x.shape[0]], dtype=np.int64),
    }
    for name, q in QUANTILES.items():
        stats[name] = np.quantile(x, q, axis=0)
    if np.issubdtype(np.asarray(values).dtype, np.integer):
        stats["min"] = stats["min"].astype(np.int64)
        stats["max"] = stats["max"].astype(np.int64)
    return stats


def image_stats(images: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel statistics of uint8 images (frames x H x W x C), in [0, 1], shaped (C, 1, 1)."""
    return stats_from_histogram(image_histogram(images), len(images))


def image_histogram(images: np.ndarray) -> np.ndarray:
    """How many pixels take each uint8 value, per channel (C x 256), of frames x H x W x C images:
    what image statistics need, added up a few frames at a time. A batch of PARALLEL_BYTES or more
    is split by frames over this process's cores (numpy lets go of the GIL for much of the counting)."""
    if images.dtype != np.uint8:
        raise TypeError(f"image_histogram counts uint8 pixels, not {images.dtype}")
    threads = min(cores_per_process(), len(images)) if images.nbytes >= PARALLEL_BYTES else 1
    if threads <= 1:
        return pixel_value_counts(images)
    bounds = np.linspace(0, len(images), threads + 1).astype(int)
    parts = counting_threads(threads).map(
        lambda n: pixel_value_counts(images[bounds[n] : bounds[n + 1]]), range(threads)
    )
    return sum(parts)


_counting_threads: dict[tuple[int, int], ThreadPoolExecutor] = {}


def counting_threads(threads: int) -> ThreadPoolExecutor:
    """`threads` threads kept for counting in this process: threads started afresh for each batch
    took longer (1.4x for a training-statistics batch of 64 frames of 224 x 224, 1.1x for an episode
    of 50 of 480 x 640). Keyed by process too: a forked child inherits the pool, not its threads."""
    key = (os.getpid(), threads)
    if key not in _counting_threads:
        _counting_threads[key] = ThreadPoolExecutor(threads, thread_name_prefix="leanvla-pixel-counts")
    return _counting_threads[key]


def pixel_value_counts(images: np.ndarray) -> np.ndarray:
    """`image_histogram` on this thread, two bytes at a time: the pixels' bytes (channels
    interleaved) read as little-endian 16-bit words, each word's two bytes counted jointly (65536
    bins: channels c and c + 1 of a pixel, or the last of one pixel and the first of the next),
    then each byte's count taken out of the joint one. np.bincount converts every value it counts
    to a 64-bit index first: half as many values, half the time of counting each channel alone;
    here WORDS_AT_ONCE at a time, into one array kept for the call. Below PAIRED_BYTES each
    channel is counted alone (the joint counts' 65536 bins cost more)."""
    channels = images.shape[-1]
    data = np.ascontiguousarray(images).reshape(-1)
    paired = len(data) // (2 * channels) * (2 * channels) if len(data) >= PAIRED_BYTES else 0
    counts = np.zeros((channels, 256), dtype=np.int64)
    # Little-endian whatever the machine: low byte first. Column `phase` holds channels 2 phase
    # and 2 phase + 1 (mod C) of a pixel, or the last of one pixel and the first of the next.
    words = data[:paired].view("<u2").reshape(-1, channels)
    joints = np.zeros((channels if paired else 0, 65536), dtype=np.int64)  # [phase, high * 256 + low]
    indices = np.empty(min(WORDS_AT_ONCE, len(words)), dtype=np.intp)
    for start in range(0, len(words), WORDS_AT_ONCE):
        part = words[start : start + WORDS_AT_ONCE]
        for phase in range(channels):
            np.copyto(indices[: len(part)], part[:, phase], casting="unsafe")
            joints[phase] += np.bincount(indices[: len(part)], minlength=65536)
    for phase, joint in enumerate(joints.reshape(-1, 256, 256)):  # [high, low]
        counts[2 * phase % channels] += joint.sum(axis=0)
        counts[(2 * phase + 1) % channels] += joint.sum(axis=1)
    rest = data[paired:].reshape(-1, channels)
    for channel in range(channels):
        counts[channel] += np.bincount(rest[:, channel], minlength=256)
    return counts


def stats_from_histogram(histogram: np.ndarray, frames: int) -> dict[str, np.ndarray]:
    """`image_stats` from per-channel value counts (C x 256), in [0, 1], shaped (C, 1, 1): what
    `vector_stats` gives over every pixel (to float64 rounding), without a float copy of them."""
    values = np.arange(256, dtype=np.float64) / 255.0
    pixels = histogram.sum(axis=1)
    mean = histogram @ values / pixels
    std = np.sqrt((histogram * (values[None] - mean[:, None]) ** 2).sum(axis=1) / pixels)
    cumulative = np.cumsum(histogram, axis=1)

    def sorted_value(channel: int, rank: float) -> float:  # the value of the rank-th smallest pixel
        return values[np.searchsorted(cumulative[channel], rank, side="right")]

    out = {"min": [], "max": [], "mean": mean, "std": std, **{name: [] for name in QUANTILES}}
    for c in range(len(histogram)):
        out["min"].append(sorted_value(c, 0))
        out["max"].append(sorted_value(c, pixels[c] - 1))
        for name, q in QUANTILES.items():  # numpy's default: linear between the two nearest ranks
            position = q * (pixels[c] - 1)
            below = np.floor(position)
            low, high = sorted_value(c, below), sorted_value(c, min(below + 1, pixels[c] - 1))
            out[name].append(low + (high - low) * (position - below))
    out = {k: np.asarray(v, dtype=np.float64).reshape(-1, 1, 1) for k, v in out.items()}
    out["count"] = np.array([frames], dtype=np.int64)
    return out


def aggregate_stats(per_episode: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Combine per-episode statistics into dataset statistics, weighting by frame count.

    Mean and std are exact (pooled variance); quantiles are count-weighted averages of the
    per-episode quantiles, which is what LeRobot does too (those every episode has: LeRobot v2.1
    kept none).
    """
    counts = np.array([float(s["count"][0]) for s in per_episode])
    w = counts / counts.sum()

    def wsum(name: str) -> np.ndarray:
        return sum(wi * np.asarray(s[name], dtype=np.float64) for wi, s in zip(w, per_episode))

    mean = wsum("mean")
    second_moment = sum(
        wi * (np.asarray(s["std"], dtype=np.float64) ** 2 + np.asarray(s["mean"], dtype=np.float64) ** 2)
        for wi, s in zip(w, per_episode)
    )
    out = {
        "min": np.min(np.stack([np.asarray(s["min"]) for s in per_episode]), axis=0),
        "max": np.max(np.stack([np.asarray(s["max"]) for s in per_episode]), axis=0),
        "mean": mean,
        "std": np.sqrt(np.maximum(second_moment - mean**2, 0.0)),
        "count": np.array([int(counts.sum())], dtype=np.int64),
    }
    for name in QUANTILES:
        if all(name in s for s in per_episode):
            out[name] = wsum(name)
    return out


def aggregate_features(
    per_episode: list[dict[str, dict[str, np.ndarray]]],
) -> dict[str, dict[str, np.ndarray]]:
    """Each feature's statistics (`meta/stats.json`) aggregated over the episodes that have them."""
    features = dict.fromkeys(key for stats in per_episode for key in stats)
    return {key: aggregate_stats([s[key] for s in per_episode if key in s]) for key in features}


def stats_to_json(stats: dict[str, dict[str, np.ndarray]]) -> dict:
    """Nested numpy statistics -> plain lists, as in `meta/stats.json`."""
    return {key: {name: np.asarray(v).tolist() for name, v in s.items()} for key, s in stats.items()}


def stats_from_json(obj: dict) -> dict[str, dict[str, np.ndarray]]:
    """Inverse of `stats_to_json`."""
    return {key: {name: np.asarray(v) for name, v in s.items()} for key, s in obj.items()}
