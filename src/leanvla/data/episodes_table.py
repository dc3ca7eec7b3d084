"""meta/episodes/: the episodes metadata of a v3 dataset, read and checked on opening. Frames are
found by its columns (which data file, which rows), so an edited or damaged one is refused in one
line naming the column and the episode, where it was a traceback or, for a renumbered episode,
passed unremarked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from leanvla.data.data_files import read_parquet
from leanvla.errors import UserError, require

# The columns the readers take, each a whole number an episode, as LeRobot writes them. (Its
# `tasks` is read where there is one: LeRobot 0.4.4 drops it when it makes cameras videos.)
NUMBERED = (
    "episode_index",
    "length",
    "data/chunk_index",
    "data/file_index",
    "dataset_from_index",
    "dataset_to_index",
)


def read_episodes_table(root: Path, total_episodes: int, tasks: list[str]) -> pa.Table:
    """Every file of meta/episodes/, in episode order: numbered 0..N-1, N = info.json's
    total_episodes, each episode's length the span of its frame indices, its tasks among `tasks`
    (meta/tasks.parquet's)."""
    where = root / "meta" / "episodes"
    files = sorted(where.glob("chunk-*/file-*.parquet"))
    require(files, f"{where} holds no chunk-*/file-*.parquet; the dataset has no episode metadata")
    table = pa.concat_tables([read_parquet(f) for f in files], promote_options="permissive")
    absent = [c for c in NUMBERED if c not in table.column_names]
    require(
        not absent,
        f"{where} has no column '{absent[0] if absent else ''}'; LeRobot's episodes metadata holds "
        f"{', '.join(NUMBERED)} (was it edited?)",
    )
    for name in NUMBERED:
        column = table.column(name)
        require(
            pa.types.is_integer(column.type) and column.null_count == 0,
            f"{where}: column '{name}' must hold a whole number for each episode; it holds {column.type}"
            f"{f' and {column.null_count} nulls' if column.null_count else ''}",
        )
    table = table.sort_by("episode_index")
    n = table.num_rows
    require(
        n == total_episodes,
        f"{where} lists {n} episodes but meta/info.json says total_episodes={total_episodes}",
    )
    numbers = table.column("episode_index").to_numpy()
    misplaced = np.flatnonzero(numbers != np.arange(n))
    if misplaced.size:  # leanvla numbers episodes by position, LeRobot by this column: they must agree
        i = int(misplaced[0])
        raise UserError(
            f"{where}: episode_index {numbers[i]} stands where {i} should (LeRobot numbers episodes "
            f"0..{n - 1}): one is lost or listed twice, or the metadata was edited"
        )
    _check_lengths(table, where)
    if "tasks" in table.column_names:
        _check_tasks(table.column("tasks").to_pylist(), tasks, where)
    return table


def _check_tasks(listed: list, tasks: list[str], where: Path) -> None:
    """Each episode's tasks, a non-empty list of meta/tasks.parquet's (or one of them, as a string)."""
    known = set(tasks)
    for episode, given in enumerate(listed):
        named = given if isinstance(given, list) else [given]
        if not (named and all(isinstance(task, str) and task in known for task in named)):
            raise UserError(
                f"{where}: episode {episode}'s tasks {given!r} are not among meta/tasks.parquet's {tasks}; "
                "the metadata disagrees with itself (was it edited?)"
            )


def _check_lengths(table: pa.Table, where: Path) -> None:
    """Each episode's length is the span of its frame indices: frames are found by the lengths
    (an edited metadata file may disagree). Their sum is checked against total_frames where
    frames are read."""
    lengths = table.column("length").to_numpy()
    start, end = (table.column(c).to_numpy() for c in ("dataset_from_index", "dataset_to_index"))
    bad = np.flatnonzero(end - start != lengths)
    if bad.size:
        i = int(bad[0])
        raise UserError(
            f"{where}: episode {i} has length {lengths[i]} but its dataset_from_index and dataset_to_index "
            f"({start[i]}, {end[i]}) span {end[i] - start[i]} frames; the episodes metadata disagrees with "
            "itself (was it edited?)"
        )
