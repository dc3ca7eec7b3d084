"""`leanvla data stats`: a v3 dataset's statistics computed again from its frames, in place.

A dataset's statistics go stale or incomplete in ways that break LeRobot, not leanvla (which takes
the statistics it normalises with from the frames it trains on):
- a dataset converted from v2.1 keeps v2.1's statistics, which have no quantiles; once LeRobot 0.4.4
  adds episodes to it (`lerobot-record --resume`), their metadata file has quantile columns the
  earlier ones lack, and LeRobot can no longer load the dataset ("column names don't match");
- LeRobot's `lerobot-edit-dataset` deletes or merges episodes, renumbers them, and keeps the
  statistics of `episode_index`, `index` and `task_index` of the old numbers;
- LeRobot's policies normalising with quantiles need them in meta/stats.json (LeRobot's own script
  for that writes meta/stats.json alone, leaving the episodes' files as they were).
Every episode's statistics are computed from its frames (`episode_stats`, as leanvla's writer and
`leanvla data convert --stats frames` compute them) and replace the `stats/` columns of every file
of meta/episodes; meta/stats.json aggregates them. Every other column, row and file stays as it was;
frames and videos are read, never written. Each file is replaced whole (written beside it, then
renamed), meta/stats.json last: an interrupted run leaves every file readable, and running again
finishes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import tyro

from leanvla.atomic import atomic_path, write_json_atomic
from leanvla.data import format as fmt
from leanvla.data.data_files import read_parquet
from leanvla.data.lerobot_home import DatasetDir
from leanvla.data.reader import LeRobotDataset
from leanvla.data.stats import aggregate_features, stats_to_json
from leanvla.data.writer import stats_columns
from leanvla.errors import require

STATS_PREFIX = "stats/"
# Stored statistics that differ from the frames' by no more than float rounding are unchanged.
SAME_RTOL, SAME_ATOL = 1e-6, 1e-9


@dataclass
class StatsConfig:
    """Compute a LeRobotDataset v3's statistics again from its frames and write them in place:
    every episode's (quantiles included) in meta/episodes, and meta/stats.json. Decodes every frame:
    minutes for a large dataset."""

    root: tyro.conf.Positional[DatasetDir]
    """Dataset directory (LeRobotDataset v3), or the repo id of one in LeRobot's home."""
    check: bool = False
    """Write nothing: only report which statistics are missing or differ from the frames' (exit
    code 1 when any do, 0 when none)."""


def refresh_stats(cfg: StatsConfig) -> dict:
    """Rewrite the statistics of the dataset at cfg.root (unless cfg.check); returns what
    `leanvla data stats` prints."""
    from tqdm import tqdm

    from leanvla.data.episode_stats import episode_stats_from_frames, require_frames

    dataset = LeRobotDataset(cfg.root)
    require_frames(
        dataset.root,
        dataset.episode_column("episode_index"),
        dataset.episode_column("length"),
        "remove {them} (LeRobot: lerobot-edit-dataset --operation.type delete_episodes "
        "--operation.episode_indices '{episodes}') and run it again",
    )
    files = sorted((dataset.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    if not cfg.check:  # refused before minutes of decoding, not after
        for directory in sorted({dataset.root / "meta", *(path.parent for path in files)}):
            require(
                os.access(directory, os.W_OK),
                f"{directory} is not writable: statistics cannot be written there; "
                "copy the dataset somewhere writable, or pass --check to only report them",
            )
    total = dataset.num_episodes * len(dataset.camera_keys)  # an episode of a camera at a time
    with tqdm(total=total, desc="statistics", unit="episode", leave=False, disable=not total) as bar:
        per_episode = episode_stats_from_frames(dataset, bar)
    position = {episode: n for n, episode in enumerate(dataset.episode_column("episode_index"))}
    rows = [stats_columns(stats) for stats in per_episode]
    schema = pa.Table.from_pylist(rows).schema  # one type per column in every file, as LeRobot needs
    report = stale_statistics(dataset.episodes, rows)
    if not cfg.check:
        for path in files:
            table = read_parquet(path)
            ours = [rows[position[e]] for e in table.column("episode_index").to_pylist()]
            with atomic_path(path) as tmp:
                pq.write_table(with_statistics(table, pa.Table.from_pylist(ours, schema=schema)), tmp)
        write_json_atomic(dataset.root / fmt.STATS_PATH, stats_to_json(aggregate_features(per_episode)))
        LeRobotDataset(dataset.root)  # the reader's own checks of what was written
    return {
        "root": str(dataset.root),
        "episodes": dataset.num_episodes,
        "features": list(per_episode[0]) if per_episode else [],
        **report,
        "written": not cfg.check,
        "episode_files": 0 if cfg.check else len(files),
    }


def with_statistics(table: pa.Table, statistics: pa.Table) -> pa.Table:
    """An episodes-metadata `table` with its `stats/` columns replaced by `statistics`' (the same
    rows), placed where the old ones began (else before meta/episodes/*, else last)."""
    names = table.column_names
    kept = [name for name in names if not name.startswith(STATS_PREFIX)]
    first = next((n for n, name in enumerate(names) if name.startswith(STATS_PREFIX)), None)
    if first is not None:
        at = sum(1 for name in names[:first] if not name.startswith(STATS_PREFIX))
    else:
        at = next((n for n, name in enumerate(kept) if name.startswith("meta/episodes/")), len(kept))
    order = [*kept[:at], *statistics.column_names, *kept[at:]]
    columns = {name: table.column(name) for name in kept} | {
        name: statistics.column(name) for name in statistics.column_names
    }
    return pa.table({name: columns[name] for name in order})


def stale_statistics(episodes: pa.Table, rows: list[dict[str, list]]) -> dict:
    """How the stored statistics (`episodes`, the metadata in episode order) stand against the
    frames' (`rows`, stats/<feature>/<stat> columns an episode): per feature, the episodes missing
    some statistic, and those whose stored values differ beyond float rounding (with the largest
    difference); and the stored `stats/` columns of no feature counted."""
    stored = {name: episodes.column(name).to_pylist() for name in episodes.column_names}
    missing: dict[str, set[int]] = {}
    changed: dict[str, dict] = {}
    for episode, row in enumerate(rows):
        for name, value in row.items():
            feature = name[len(STATS_PREFIX) :].rsplit("/", 1)[0]
            column = stored.get(name)  # absent from every file: missing in every episode
            old = None if column is None else column[episode]
            if old is None:
                missing.setdefault(feature, set()).add(episode)
                continue
            old, new = np.asarray(old, dtype=np.float64), np.asarray(value, dtype=np.float64)
            same_shape = old.shape == new.shape
            if same_shape and np.allclose(old, new, rtol=SAME_RTOL, atol=SAME_ATOL):
                continue
            found = changed.setdefault(feature, {"episodes": set(), "largest_difference": 0.0})
            found["episodes"].add(episode)
            if same_shape:
                found["largest_difference"] = max(found["largest_difference"], float(np.abs(old - new).max()))
    counted = set(rows[0]) if rows else set()
    return {
        "missing": {feature: len(lacking) for feature, lacking in missing.items()},
        "changed": {
            feature: {"episodes": len(found["episodes"]), "largest_difference": found["largest_difference"]}
            for feature, found in changed.items()
        },
        "removed": sorted(n for n in stored if n.startswith(STATS_PREFIX) and n not in counted),
    }
