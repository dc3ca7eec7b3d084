"""Each frame's episode and task labels are checked against the metadata where frames are read for
training: a frame of another episode, a task out of range, or lengths that miss frames are one line."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leanvla.data.frame_labels import frame_episodes, frame_tasks
from leanvla.data.reader import LeRobotDataset
from leanvla.errors import UserError
from tests.data.helpers import edit_frames


def test_frames_whose_episode_or_task_disagrees_with_the_metadata_are_one_line(lerobot_fixture, tmp_path):
    ds = shutil.copytree(lerobot_fixture, tmp_path / "ds")
    dataset = LeRobotDataset(ds)
    lengths = dataset.episode_column("length")
    assert np.array_equal(frame_episodes(dataset), np.repeat(np.arange(9), lengths))
    assert np.array_equal(frame_tasks(dataset), dataset.read_array("task_index"))
    edit_frames(ds, "episode_index", lambda rows: [0] * (lengths[0] + 2) + rows[lengths[0] + 2 :])  # joined
    with pytest.raises(
        UserError,
        match=r"frame 0 of episode 1 has episode_index 0 in its data file \(2 such frames\); the data disagrees with "
        r"meta/episodes",
    ):
        frame_episodes(LeRobotDataset(ds))
    edit_frames(ds, "task_index", lambda rows: [*rows[:5], len(dataset.tasks), *rows[6:]])
    with pytest.raises(
        UserError,
        match=rf"frame 5 of episode 0 has task_index {len(dataset.tasks)}, but meta/tasks.parquet lists "
        rf"{len(dataset.tasks)} tasks \(0..{len(dataset.tasks) - 1}\)",
    ):
        frame_tasks(LeRobotDataset(ds))


def test_episode_lengths_that_do_not_add_up_to_the_frames_are_one_line(lerobot_fixture, tmp_path):
    ds = shutil.copytree(lerobot_fixture, tmp_path / "ds")
    path = ds / "meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    for name in ("length", "dataset_to_index"):  # the last episode one frame shorter, consistently
        values = table.column(name).to_pylist()
        table = table.set_column(
            table.column_names.index(name), name, pa.array([*values[:-1], values[-1] - 1], pa.int64())
        )
    pq.write_table(table, path)
    with pytest.raises(
        UserError,
        match=r"meta/episodes' lengths add up to 678 frames but the data files hold 679; the dataset is inconsistent",
    ):
        frame_episodes(LeRobotDataset(ds))
