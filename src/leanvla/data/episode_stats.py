"""Every episode's statistics computed from its frames, as leanvla's writer computes them.

`leanvla data convert --stats frames` writes these in place of the statistics a v2.1 dataset kept
(or, from v2.0, which kept none an episode): min, max, mean, std and count of each feature, and the
quantiles q01..q99 that v2.x never kept. LeRobot 0.4.4 writes quantiles for every episode it adds
to a dataset, and cannot load a dataset whose earlier episodes have none; its policies normalise
with them where asked to. A camera's are over every pixel of every frame (per channel, in [0, 1]),
a video's as it decodes.
"""

from __future__ import annotations

import numpy as np

from leanvla.data.reader import LeRobotDataset
from leanvla.data.stats import image_stats, vector_stats

UNCOUNTED = ("string",)  # features with no statistics, as LeRobot leaves them


def episode_stats_from_frames(dataset: LeRobotDataset, bar=None) -> list[dict[str, dict[str, np.ndarray]]]:
    """Each episode's statistics of each feature, in info.json's order of the features; `bar` (a
    tqdm) advances an episode of a camera at a time (the other features take a moment)."""
    lengths = np.asarray(dataset.episode_column("length"), dtype=np.int64)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    per_episode: list[dict[str, dict[str, np.ndarray]]] = [{} for _ in lengths]
    for key, feature in dataset.features.items():
        if feature["dtype"] in UNCOUNTED:
            continue
        if key in dataset.camera_keys:
            for episode, frames in dataset.episode_frames(key):
                per_episode[episode][key] = image_stats(frames)
                if bar is not None:
                    bar.update()
            continue
        values = dataset.read_array(key)
        for episode, stats in enumerate(per_episode):
            stats[key] = vector_stats(values[bounds[episode] : bounds[episode + 1]])
    return per_episode
