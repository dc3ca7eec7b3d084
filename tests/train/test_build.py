"""What a run records of its data: the trained episodes, their positions and their tasks only
(evaluation holds those positions out)."""

from __future__ import annotations

from leanvla.data.reader import LeRobotDataset
from leanvla.train.build import provenance


def test_provenance_names_the_trained_episodes_positions_and_tasks_only(tiny_dataset):
    dataset = LeRobotDataset(tiny_dataset)
    positions, tasks = dataset.episode_column("metaworld/positions"), dataset.episode_tasks()
    assert tasks[0] == tasks[2] != tasks[4]  # episodes 0-2 are one task, 3-5 the other

    one_task = provenance(dataset, [0, 2])
    assert one_task["episodes"] == [0, 2] and one_task["positions"] == [positions[0], positions[2]]
    assert one_task["instructions"] == [tasks[0]]
    assert one_task["dataset"] == str(tiny_dataset.resolve())

    both = provenance(dataset, [4, 0])
    assert both["positions"] == [positions[4], positions[0]]
    assert both["instructions"] == dataset.tasks  # in the dataset's task order
