"""Every episode's statistics computed from its frames, as leanvla's writer computes them.

`leanvla data convert --stats frames` writes these in place of the statistics a v2.1 dataset kept
(or, from v2.0, which kept none an episode): min, max, mean, std and count of each feature, and the
quantiles q01..q99 that v2.x never kept. LeRobot 0.4.4 writes quantiles for every episode it adds
to a dataset, and cannot load a dataset whose earlier episodes have none; its policies normalise
with them where asked to. A camera's are over every pixel of every frame (per channel, in [0, 1]),
a video's as it decodes.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from leanvla.data.reader import LeRobotDataset, no_frames_phrase
from leanvla.data.stats import image_stats, vector_stats
from leanvla.errors import UserError

UNCOUNTED = ("string",)  # features with no statistics, as LeRobot leaves them
# An episode's frames counted while the next episode decodes up to this size (a 1080p camera's
# 170 frames): beyond, two such held at once would be more memory than the overlap is worth.
OVERLAPPED_BYTES = 1 << 30


def require_frames(where, episodes: list[int], lengths: list[int], remedy: str) -> None:
    """Refuse, before anything decodes, episodes of no frames (length 0): nothing to take their
    statistics from (a minimum or a quantile of nothing). LeRobot records none such; an edited or
    converted dataset may hold one. `remedy` says what the caller can do instead: "{them}" in it
    becomes "it" or "them", "{episodes}" the episodes' list."""
    empty = [int(episode) for episode, length in zip(episodes, lengths) if length == 0]
    if not empty:
        return
    raise UserError(
        f"{where}: {no_frames_phrase(episodes, lengths)}, so no statistics from frames; "
        + remedy.format(them="them" if len(empty) > 1 else "it", episodes=json.dumps(empty))
    )


def episode_stats_from_frames(dataset: LeRobotDataset, bar=None) -> list[dict[str, dict[str, np.ndarray]]]:
    """Each episode's statistics of each feature, in info.json's order of the features; `bar` (a
    tqdm) advances an episode of a camera at a time (the other features take a moment). Every
    episode must have frames: callers refuse those of none first (`require_frames`)."""
    for key in dataset.camera_keys:  # one it cannot read refused before any decodes
        dataset.camera_feature(key)
    lengths = np.asarray(dataset.episode_column("length"), dtype=np.int64)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    per_episode: list[dict[str, dict[str, np.ndarray]]] = [{} for _ in lengths]
    for key, feature in dataset.features.items():
        if feature["dtype"] in UNCOUNTED:
            continue
        if key in dataset.camera_keys:
            for episode, stats in camera_episode_stats(dataset, key):
                per_episode[episode][key] = stats
                if bar is not None:
                    bar.update()
            continue
        values = dataset.read_array(key)
        for episode, stats in enumerate(per_episode):
            stats[key] = vector_stats(values[bounds[episode] : bounds[episode + 1]])
    return per_episode


def camera_episode_stats(dataset: LeRobotDataset, key: str) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """(episode, its statistics of camera `key`) for every episode, in the order `episode_frames`
    gives them: an episode's pixels counted on a thread of their own while the next episode
    decodes, where they are OVERLAPPED_BYTES or fewer (two episodes' frames held at once); a
    larger episode is counted before the next decodes. On mp4 files of an episode each, `data
    stats` took about 0.85x the time it did counting between decodes; on one file of many, about
    the same (docs/RESULTS.md)."""
    with ThreadPoolExecutor(1, thread_name_prefix="leanvla-episode-stats") as counter:
        counting: deque = deque()  # (episode, its statistics to come), in the order given
        for episode, frames in dataset.episode_frames(key):
            counting.append((episode, counter.submit(image_stats, frames)))
            left_counting = 1 if frames.nbytes <= OVERLAPPED_BYTES else 0  # while the next decodes
            del frames  # held by the counting thread until it is counted
            while len(counting) > left_counting:
                counted, stats = counting.popleft()
                yield counted, stats.result()
        for counted, stats in counting:
            yield counted, stats.result()
