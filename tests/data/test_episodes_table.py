"""meta/episodes/ is read in episode order and checked on opening: each column the readers take is
there and holds a whole number an episode, the episodes are numbered 0..N-1, each length is the
span of its frame indices and each episode's tasks are meta/tasks.parquet's. Anything else is one
line naming the column or the episode."""

from __future__ import annotations

import re
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leanvla.data.episodes_table import NUMBERED, read_episodes_table
from leanvla.data.reader import LeRobotDataset
from leanvla.errors import UserError

FILE = "meta/episodes/chunk-000/file-000.parquet"


@pytest.fixture
def root(lerobot_fixture, tmp_path):
    """A copy of the dataset LeRobot 0.4.4 wrote: 9 episodes, in one metadata file."""
    shutil.copytree(lerobot_fixture, tmp_path / "ds")
    return tmp_path / "ds"


def _edit(root, edit) -> None:
    pq.write_table(edit(pq.read_table(root / FILE)), root / FILE)


def _set(name, values, type=None):
    def edit(table):
        return table.set_column(table.column_names.index(name), name, pa.array(values, type=type))

    return edit


def test_lerobots_own_episodes_are_read_in_order(root):
    tasks = LeRobotDataset(root).tasks
    original = pq.read_table(root / FILE)
    _edit(root, lambda table: table.take(list(reversed(range(table.num_rows)))))  # another file order
    table = read_episodes_table(root, 9, tasks)
    assert table.column("episode_index").to_pylist() == list(range(9))
    assert table.equals(original)


@pytest.mark.parametrize("name", NUMBERED)
def test_a_column_the_readers_take_must_be_there(root, name):
    _edit(root, lambda table: table.drop_columns([name]))
    with pytest.raises(
        UserError, match=rf"^.*meta/episodes has no column '{re.escape(name)}'; LeRobot's episodes"
    ):
        LeRobotDataset(root)


@pytest.mark.parametrize(
    "name, values, type, message",
    [
        (
            "length",
            [76.0] * 9,
            pa.float64(),
            "column 'length' must hold a whole number for each episode; it holds double$",
        ),
        (
            "dataset_from_index",
            [0, None, *range(2, 9)],
            pa.int64(),
            "column 'dataset_from_index' must hold a whole number for each episode; it holds int64 and 1 nulls$",
        ),
        (
            "episode_index",
            [0, 0, 2, 3, 4, 5, 6, 7, 8],
            pa.int64(),
            r"episode_index 0 stands where 1 should \(LeRobot numbers episodes 0..8\): one is lost or listed twice",
        ),
        ("episode_index", [*range(8), 9], pa.int64(), "episode_index 9 stands where 8 should"),
    ],
)
def test_a_column_of_the_wrong_kind_or_numbering_is_one_line(root, name, values, type, message):
    _edit(root, _set(name, values, type))
    with pytest.raises(UserError, match=message):
        LeRobotDataset(root)


@pytest.mark.parametrize("given", [["open the window"], [], [None]])
def test_an_episodes_tasks_must_be_the_datasets(root, given):
    tasks = pq.read_table(root / FILE).column("tasks").to_pylist()
    _edit(root, _set("tasks", [tasks[0], given, *tasks[2:]], pa.list_(pa.string())))
    with pytest.raises(
        UserError,
        match=rf"meta/episodes: episode 1's tasks {re.escape(repr(given))} are not among meta/tasks.parquet's \[",
    ):
        LeRobotDataset(root)


def test_episodes_without_a_tasks_column_are_read(root):
    """LeRobot 0.4.4 writes none when it makes a dataset's cameras videos (tests/data/test_lerobot_interop.py)."""
    _edit(root, lambda table: table.drop_columns(["tasks"]))
    dataset = LeRobotDataset(root)
    assert dataset.num_episodes == 9 and "episodes_by_task" not in dataset.summary()  # info reads no frame


def test_each_tasks_episodes_are_listed_as_episodes_are_selected(root):
    tasks = pq.read_table(root / FILE).column("tasks").to_pylist()
    tasks[4], tasks[7] = [*tasks[4], tasks[0][0]], tasks[0]  # 4 of two tasks, 7 of the first task's
    _edit(root, _set("tasks", tasks))
    assert LeRobotDataset(root).summary()["episodes_by_task"] == {
        "reach the goal position": "0:3,4,7",
        "close the drawer": "3:6",
        "press the button from the top": "6,8",
    }
    _edit(root, _set("tasks", [t[0] for t in tasks]))  # each episode's task a string, not a list
    assert LeRobotDataset(root).summary()["episodes_by_task"] == {
        "reach the goal position": "0:3,7",
        "close the drawer": "3:6",
        "press the button from the top": "6,8",
    }
