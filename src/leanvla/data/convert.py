"""`leanvla data convert`: a LeRobotDataset v2.1 (or v2.0) rewritten as v3.0, with pyarrow alone.

Many datasets on the Hub are still v2.1, and LeRobot's own converter needs a LeRobot that does not
install beside leanvla. v2.x keeps an episode a file:
    meta/info.json                                          codebase_version "v2.1", path templates
    meta/episodes.jsonl, meta/episodes_stats.jsonl          one line per episode
    meta/tasks.jsonl                                        one line per task
    data/chunk-CCC/episode_EEEEEE.parquet                   one episode's frames
    videos/chunk-CCC/<key>/episode_EEEEEE.mp4               one episode's frames of a camera
The frames' columns are the same in both versions, so the data files are joined into v3's files
(of at most data_files_size_in_mb) unchanged. The mp4s of a camera are joined as LeRobot lays v3
out, into files of about video_files_size_in_mb, their packets copied (`video_join`: nothing is
re-encoded, every pixel stays as it was); or, with `--videos link`, each stays a v3 video file
holding one episode (from_timestamp 0), hard-linked, not copied, where both directories are on one
filesystem: no second copy on disk, but a file an episode. The per-episode statistics move into
meta/episodes, and meta/stats.json aggregates them. v2.0 had no per-episode statistics, only
meta/stats.json over the dataset: that is kept, and the episodes go without (leanvla takes
statistics from the frames it trains on; LeRobot reads meta/stats.json). With `--stats frames`,
every episode's are computed from its frames instead, quantiles included, which v2.x never kept
and LeRobot needs to add episodes to the dataset (`episode_stats`); every frame is decoded.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import tyro

from leanvla.atomic import (
    atomic_dir,
    nearest_existing,
    require_output,
    write_json_atomic,
)
from leanvla.data import format as fmt
from leanvla.data.data_files import read_parquet
from leanvla.data.info import V2_TEMPLATES, check_info, read_info, version_remedy
from leanvla.data.lerobot_home import DatasetDir
from leanvla.data.stats import aggregate_features, stats_from_json
from leanvla.data.writer import stats_columns, write_meta_tables
from leanvla.errors import UserError, require
from leanvla.json_values import is_whole

V21_EPISODES = "meta/episodes.jsonl"
V21_EPISODES_STATS = "meta/episodes_stats.jsonl"
V21_TASKS = "meta/tasks.jsonl"
VERSIONS = ("v2.0", "v2.1")


@dataclass
class ConvertConfig:
    """Convert a LeRobotDataset v2.1 or v2.0 (an episode a file) into v3.0, which leanvla and LeRobot
    >= 0.4 read; the old directory is left as it was."""

    source: tyro.conf.Positional[DatasetDir]
    """The v2.1 or v2.0 dataset directory, or the repo id of one in LeRobot's home."""
    out: Path
    """Directory of the v3.0 dataset (must not exist unless --overwrite)."""
    overwrite: bool = False
    """Replace --out if it exists."""
    videos: Literal["join", "link"] = "join"
    """join: each camera's mp4s joined into files of about video_files_size_in_mb, as LeRobot lays
    v3 out (packets copied, nothing re-encoded); link: each mp4 kept as a file of its own,
    hard-linked where it can be (no second copy on disk, a file an episode)."""
    stats: Literal["kept", "frames"] = "kept"
    """kept: the statistics v2.1 kept of each episode (as LeRobot's own converter does; v2.0
    kept none an episode); frames: each episode's computed from its frames, with the quantiles
    v2.x never kept, which LeRobot 0.4.4 needs to load the dataset once it has added episodes to it
    (lerobot-record --resume). Decodes every frame: minutes for a large dataset."""


@dataclass
class V2Dataset:
    """A v2.1 or v2.0 dataset's metadata, checked: every episode's files exist and the counts agree."""

    root: Path
    info: dict
    tasks: list[str]
    episodes: list[dict]  # episodes.jsonl's lines, in episode order
    episode_stats: list[dict[str, dict[str, np.ndarray]]] | None  # episodes_stats.jsonl's (v2.1)
    stats: dict[str, dict[str, np.ndarray]]  # each feature's over the dataset

    @property
    def chunks_size(self) -> int:
        return self.info.get("chunks_size", fmt.DEFAULT_CHUNKS_SIZE)  # checked by read_v2

    @property
    def cameras(self) -> list[str]:
        """The features stored as mp4 files."""
        return [k for k, f in self.info["features"].items() if f["dtype"] == "video"]

    def data_file(self, episode: int) -> Path:
        return self._filled("data_path", episode_chunk=episode // self.chunks_size, episode_index=episode)

    def video_file(self, key: str, episode: int) -> Path:
        chunk = episode // self.chunks_size
        return self._filled("video_path", episode_chunk=chunk, video_key=key, episode_index=episode)

    def _filled(self, template: str, **names) -> Path:
        """info.json's path `template` (checked on reading: info.check_info) filled in with `names`."""
        return self.root / self.info[template].format(**names)


def convert(cfg: ConvertConfig) -> dict:
    """Write the v3.0 dataset at cfg.out (whole, or not at all); returns what `leanvla data convert`
    prints."""
    from tqdm import tqdm

    from leanvla.data.episode_stats import episode_stats_from_frames, require_frames
    from leanvla.data.reader import LeRobotDataset

    source, out = Path(cfg.source), Path(cfg.out)
    dataset = read_v2(source)
    if cfg.stats == "frames":
        require_frames(
            source,
            [int(e["episode_index"]) for e in dataset.episodes],
            [int(e["length"]) for e in dataset.episodes],
            "convert with --stats kept, or remove {them} from the dataset first",
        )
    inputs = [("the dataset being converted", source)]
    require_output(out, "--out", cfg.overwrite, "a LeRobotDataset", fmt.INFO_PATH, inputs)
    _require_space(dataset, out, cfg.videos)
    episodes = len(dataset.episodes)
    with atomic_dir(out, replace=cfg.overwrite) as tmp:
        with tqdm(total=episodes, desc="data", unit="episode", leave=False, mininterval=1.0) as bar:
            rows, data_files = write_data(dataset, tmp, bar)
        placed = {"joined": 0, "linked": 0, "copied": 0}
        video_files = 0
        videos = episodes * len(dataset.cameras)
        with tqdm(total=videos, desc="videos", unit="episode", leave=False, disable=not videos) as bar:
            for key in dataset.cameras:
                if cfg.videos == "join":
                    video_files += join_videos(dataset, key, rows, tmp, bar)
                    placed["joined"] += episodes
                else:
                    for episode, row in enumerate(rows):
                        columns, how = place_video(dataset, key, episode, tmp)
                        row |= columns
                        placed[how] += 1
                        bar.update()
                    video_files += episodes
        write_meta(dataset, tmp, rows)
        if cfg.stats == "frames":  # from the frames as written: a video's as it decodes
            written = LeRobotDataset(tmp)
            total = episodes * len(written.camera_keys)  # an episode of a camera at a time
            with tqdm(total=total, desc="statistics", unit="episode", leave=False, disable=not total) as bar:
                per_episode = episode_stats_from_frames(written, bar)
            dataset = replace(dataset, episode_stats=per_episode, stats=aggregate_features(per_episode))
            write_meta(dataset, tmp, rows)
        LeRobotDataset(tmp)  # the reader's own checks, before the result takes --out's name
    return {
        "out": str(out),
        "episodes": episodes,
        "frames": dataset.info["total_frames"],
        "tasks": len(dataset.tasks),
        "data_files": data_files,
        "video_files": video_files,
        "episode_videos": placed,
        "stats": cfg.stats,
    }


def _require_space(dataset: V2Dataset, out: Path, videos: str) -> None:
    """Refuse, before anything is written, a conversion that --out's filesystem has no room for
    (found full after copying gigabytes, it would have been undone): the data files are rewritten,
    about their size; the videos copied where they are joined, or linked across filesystems."""
    home = nearest_existing(out)
    one_filesystem = home.stat().st_dev == dataset.root.stat().st_dev
    files = [dataset.data_file(e) for e in range(len(dataset.episodes))]
    if not (videos == "link" and one_filesystem):
        files += [dataset.video_file(k, e) for k in dataset.cameras for e in range(len(dataset.episodes))]
    need, free = sum(path.stat().st_size for path in files), shutil.disk_usage(home).free
    linking_helps = videos == "join" and one_filesystem and dataset.cameras
    instead = ", or pass --videos link (the mp4s hard-linked, not copied)" if linking_helps else ""
    require(
        need <= free,
        f"converting {dataset.root} writes about {need / 1e9:.2f} GB but {home} has {free / 1e9:.2f} GB "
        f"free; free some space or choose another --out{instead}",
    )


def read_v2(root: Path) -> V2Dataset:
    """The v2.1 or v2.0 dataset at `root`, or one line saying why it cannot be converted."""
    require(root.is_dir(), f"dataset directory {root} does not exist")
    info_path = root / fmt.INFO_PATH
    require(info_path.is_file(), f"{info_path} is missing: {root} is not a LeRobotDataset directory")
    info = read_info(info_path)
    version = str(info.get("codebase_version", "?"))
    require(
        not version.startswith("v3"),
        f"{root} is already LeRobotDataset {version}: leanvla reads it as it is, with no conversion",
    )
    require(
        version in VERSIONS,
        f"{info_path} says codebase_version {version}; `leanvla data convert` converts v2.0 and v2.1: "
        f"{version_remedy(version, root)}",
    )
    check_info(info, info_path, V2_TEMPLATES)
    chunks_size = info.get("chunks_size", fmt.DEFAULT_CHUNKS_SIZE)
    require(
        is_whole(chunks_size, 1),
        f"{info_path}: chunks_size must be a whole number >= 1 (episodes a chunk directory), got "
        f"{json.dumps(chunks_size)}",
    )
    tasks = _jsonl(root / V21_TASKS, "task_index", "task")
    require(
        [t["task_index"] for t in tasks] == list(range(len(tasks))),
        f"{root / V21_TASKS}: task_index values are not 0..{len(tasks) - 1}",
    )
    episodes = _jsonl(root / V21_EPISODES, "episode_index", "length")
    for line in episodes:
        require(
            is_whole(line["length"], 0),
            f"{root / V21_EPISODES}: episode {line['episode_index']}'s length must be a whole number of "
            f"frames, got {json.dumps(line['length'])}; the dataset is corrupt",
        )
    per_episode = {V21_EPISODES: episodes}
    if version == "v2.1":
        per_episode[V21_EPISODES_STATS] = _jsonl(root / V21_EPISODES_STATS, "episode_index", "stats")
    for name, lines in per_episode.items():
        path = root / name
        numbers = {line["episode_index"] for line in lines}
        missing = next((e for e in range(len(lines)) if e not in numbers), None)
        require(
            missing is None,
            f"{path} lists {len(lines)} episodes but not episode {missing}: LeRobot numbers them "
            "0..N-1, so one is lost or the file was edited; the dataset is incomplete",
        )
        require(
            len(lines) == info["total_episodes"],
            f"{path} lists {len(lines)} episodes but {info_path} says total_episodes={info['total_episodes']}",
        )
    total = sum(e["length"] for e in episodes)
    require(
        total == info["total_frames"],
        f"{root / V21_EPISODES}: the episodes' lengths add up to {total} frames but {info_path} says "
        f"total_frames={info['total_frames']}",
    )
    if version == "v2.1":
        episode_stats = [
            {key: _arrays(s) for key, s in line["stats"].items()} for line in per_episode[V21_EPISODES_STATS]
        ]
        stats = aggregate_features(episode_stats)
    else:
        episode_stats, stats = None, _dataset_stats(root / fmt.STATS_PATH)
    dataset = V2Dataset(root, info, [t["task"] for t in tasks], episodes, episode_stats, stats)
    if dataset.cameras:
        require(info.get("video_path"), f"{info_path} has video features but no 'video_path'")
    for episode in range(len(episodes)):
        paths = [dataset.data_file(episode), *(dataset.video_file(k, episode) for k in dataset.cameras)]
        for path in paths:
            require(path.is_file(), f"{path} is missing (episode {episode}); the dataset is incomplete")
    return dataset


def _jsonl(path: Path, index: str, *needed: str) -> list[dict]:
    """A JSON-lines file's objects (blank lines skipped), each with an integer `index` and the
    `needed` entries, sorted by `index`."""
    require(
        path.is_file(),
        f"{path} is missing; a v2.1 dataset has meta/episodes.jsonl, episodes_stats.jsonl and tasks.jsonl",
    )
    lines = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(
                f"{path}, line {number}, is not valid JSON ({exc}); the dataset is corrupt"
            ) from exc
        require(
            isinstance(line, dict) and isinstance(line.get(index), int),
            f"{path}, line {number}, has no integer '{index}'; the dataset is corrupt",
        )
        absent = [name for name in needed if name not in line]
        require(
            not absent,
            f"{path}, line {number}, has no '{absent[0] if absent else ''}'; the dataset is corrupt",
        )
        lines.append(line)
    return sorted(lines, key=lambda line: line[index])


def _arrays(stats: dict) -> dict[str, np.ndarray]:
    return {name: np.asarray(value) for name, value in stats.items()}


def _dataset_stats(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """v2.0's meta/stats.json: each feature's statistics over the dataset."""
    require(path.is_file(), f"{path} is missing; a v2.0 dataset keeps its statistics there")
    try:
        return stats_from_json(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, AttributeError) as exc:
        raise UserError(f"{path} is not a JSON object of statistics ({exc}); the dataset is corrupt") from exc


def write_data(dataset: V2Dataset, root: Path, bar) -> tuple[list[dict], int]:
    """The episodes' data files joined into v3 files of at most data_files_size_in_mb, in episode
    order, an episode a row group (as LeRobot writes them); returns each episode's metadata row so
    far and the number of files written."""
    limit_mb = dataset.info.get("data_files_size_in_mb", fmt.DEFAULT_DATA_FILE_SIZE_MB)
    schema, writer = None, None
    chunk, file, held_mb, first_frame = 0, -1, 0.0, 0
    rows = []
    try:
        for episode, line in enumerate(dataset.episodes):
            source = dataset.data_file(episode)
            table = _episode_table(source, episode, int(line["length"]), schema)
            schema = schema or table.schema
            size_mb = source.stat().st_size / 1e6
            if writer is None or held_mb + size_mb > limit_mb:
                if writer is not None:
                    writer.close()
                chunk, file = _next_file(chunk, file, dataset.chunks_size)
                path = root / fmt.DATA_PATH.format(chunk_index=chunk, file_index=file)
                path.parent.mkdir(parents=True, exist_ok=True)
                writer, held_mb = pq.ParquetWriter(path, schema), 0.0
            writer.write_table(table)
            held_mb += size_mb
            rows.append(
                {
                    **line,
                    "data/chunk_index": chunk,
                    "data/file_index": file,
                    "dataset_from_index": first_frame,
                    "dataset_to_index": first_frame + table.num_rows,
                }
            )
            first_frame += table.num_rows
            bar.update()
    finally:
        if writer is not None:
            writer.close()
    return rows, chunk * dataset.chunks_size + file + 1


def _episode_table(path: Path, episode: int, length: int, schema: pa.Schema | None) -> pa.Table:
    """One v2.1 data file, checked: `length` frames of `episode`, the columns of the first one."""
    table = read_parquet(path)
    require(
        table.num_rows == length,
        f"{path} holds {table.num_rows} frames but meta/episodes.jsonl says episode {episode} has {length}",
    )
    require(
        "episode_index" in table.column_names and np.all(table.column("episode_index").to_numpy() == episode),
        f"{path}: its episode_index column is not {episode} throughout; the dataset is corrupt",
    )
    if schema is None or table.schema.equals(schema, check_metadata=False):
        return table
    extra = sorted(set(table.column_names) - set(schema.names))
    lacking = sorted(set(schema.names) - set(table.column_names))
    same = "every episode must have the same columns"
    require(not extra, f"{path} has columns {extra} that the first episode has not; {same}")
    require(not lacking, f"{path} lacks columns {lacking} that the first episode has; {same}")
    try:  # the same columns in another order, or of types that convert without loss
        return table.select(schema.names).cast(schema)
    except pa.ArrowException as exc:
        first = next(f.name for f in schema if table.schema.field(f.name).type != f.type)
        raise UserError(
            f"{path}: column '{first}' is {table.schema.field(first).type}, not {schema.field(first).type} "
            f"as in the first episode ({' '.join(str(exc).split())})"
        ) from exc


def _next_file(chunk: int, file: int, chunks_size: int) -> tuple[int, int]:
    """The (chunk, file) indices after these: `chunks_size` files a chunk, as LeRobot numbers them."""
    return (chunk + 1, 0) if file + 1 == chunks_size else (chunk, file + 1)


def join_videos(dataset: V2Dataset, key: str, rows: list[dict], root: Path, bar) -> int:
    """Camera `key`'s mp4s joined in episode order into v3 video files of about
    video_files_size_in_mb (a file takes episodes until the next would pass that, or its stream
    differs); adds each episode's video columns to its row of `rows`; returns the files written."""
    from leanvla.data.video_join import SourceVideo, VideoJoin

    limit = dataset.info.get("video_files_size_in_mb", fmt.DEFAULT_VIDEO_FILE_SIZE_MB) * 1e6
    chunk, file, joined = 0, -1, None
    try:
        for episode, row in enumerate(rows):
            path = dataset.video_file(key, episode)
            with SourceVideo(path, episode) as source:
                full = joined is not None and joined.bytes + path.stat().st_size > limit
                if joined is None or full or not joined.takes(source):
                    if joined is not None:
                        joined.close()
                    chunk, file = _next_file(chunk, file, dataset.chunks_size)
                    target = root / fmt.VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)
                    joined = VideoJoin(target)
                frames, fps = int(dataset.episodes[episode]["length"]), dataset.info["fps"]
                start = joined.append(source, frames, fps)
            row |= _video_columns(key, chunk, file, start, start + frames / fps)
            bar.update()
    finally:
        if joined is not None:
            joined.close()
    return chunk * dataset.chunks_size + file + 1


def _video_columns(key: str, chunk: int, file: int, start: float, end: float) -> dict:
    """An episode's columns of its metadata row that say where its frames of camera `key` are."""
    return {
        f"videos/{key}/chunk_index": chunk,
        f"videos/{key}/file_index": file,
        f"videos/{key}/from_timestamp": start,
        f"videos/{key}/to_timestamp": end,
    }


def place_video(dataset: V2Dataset, key: str, episode: int, root: Path) -> tuple[dict, str]:
    """An episode's mp4 of camera `key` as a v3 video file of its own, hard-linked where it can be,
    else copied; returns its columns of the episode's metadata row, and "linked" or "copied"."""
    chunk, file = divmod(episode, dataset.chunks_size)
    target = root / fmt.VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)
    target.parent.mkdir(parents=True, exist_ok=True)
    source = dataset.video_file(key, episode)
    try:
        os.link(source, target)  # another filesystem, or one without hard links: copied instead
        how = "linked"
    except OSError:
        shutil.copyfile(source, target)
        how = "copied"
    seconds = int(dataset.episodes[episode]["length"]) / dataset.info["fps"]
    return _video_columns(key, chunk, file, 0.0, seconds), how


def write_meta(dataset: V2Dataset, root: Path, rows: list[dict]) -> None:
    """meta/: the tasks table, the episodes (`rows`, with their statistics), stats.json and info.json."""
    episode_stats = dataset.episode_stats or [{} for _ in rows]
    rows = [
        row | stats_columns(stats) | {"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
        for row, stats in zip(rows, episode_stats)
    ]
    write_meta_tables(root, dataset.tasks, rows, dataset.stats)
    info = dict(dataset.info)
    for gone in ("total_chunks", "total_videos"):
        info.pop(gone, None)
    info |= {
        "codebase_version": fmt.CODEBASE_VERSION,
        "data_files_size_in_mb": info.get("data_files_size_in_mb", fmt.DEFAULT_DATA_FILE_SIZE_MB),
        "video_files_size_in_mb": info.get("video_files_size_in_mb", fmt.DEFAULT_VIDEO_FILE_SIZE_MB),
        "data_path": fmt.DATA_PATH,
        "video_path": fmt.VIDEO_PATH if dataset.cameras else None,
    }
    write_json_atomic(root / fmt.INFO_PATH, info)
