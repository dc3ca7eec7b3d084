"""Each frame's episode and task, as the data files label them, checked against the metadata
where frames are read for training: a frame labelled with another episode joined two episodes
silently, and a task index out of range was an IndexError."""

from __future__ import annotations

import numpy as np

from leanvla.data.reader import LeRobotDataset, such_frames
from leanvla.errors import UserError, require


def frame_episodes(dataset: LeRobotDataset) -> np.ndarray:
    """Each frame's episode_index, as the data files hold it, checked against meta/episodes:
    frames are cut into episodes by it, so a column that disagrees joined episodes silently."""
    held = dataset.read_array("episode_index").astype(np.int64)
    lengths = np.asarray(dataset.episode_column("length"), dtype=np.int64)
    require(
        int(lengths.sum()) == len(held),
        f"{dataset.root}: meta/episodes' lengths add up to {int(lengths.sum())} frames but the data files hold "
        f"{len(held)}; the dataset is inconsistent",
    )
    wrong = np.flatnonzero(held != np.repeat(np.arange(len(lengths)), lengths))
    if wrong.size:
        episode, frame = dataset.episode_frame(int(wrong[0]))
        raise UserError(
            f"{dataset.root}: frame {frame} of episode {episode} has episode_index {held[wrong[0]]} in its data "
            f"file ({such_frames(wrong.size)}); the data disagrees with meta/episodes (was it edited?)"
        )
    return held


def frame_tasks(dataset: LeRobotDataset) -> np.ndarray:
    """Each frame's task_index, checked to be one of meta/tasks.parquet's."""
    held = dataset.read_array("task_index").astype(np.int64)
    outside = np.flatnonzero((held < 0) | (held >= len(dataset.tasks)))
    if outside.size:
        episode, frame = dataset.episode_frame(int(outside[0]))
        raise UserError(
            f"{dataset.root}: frame {frame} of episode {episode} has task_index {held[outside[0]]}, but "
            f"meta/tasks.parquet lists {len(dataset.tasks)} tasks (0..{len(dataset.tasks) - 1}); the data "
            "disagrees with its metadata (was it edited?)"
        )
    return held
