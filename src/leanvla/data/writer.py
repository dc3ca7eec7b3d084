"""Write a LeRobotDataset v3.0 directory that LeRobot itself can load, with pyarrow alone.

Episodes are appended one at a time (each one a row group of the current data file, as LeRobot
does); `finalize()` writes the metadata. Write into a temporary directory (`atomic_dir`) so a
crash leaves nothing half-written.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from leanvla.atomic import write_json_atomic
from leanvla.data import format as fmt
from leanvla.data.stats import (
    aggregate_features,
    image_histogram,
    stats_from_histogram,
    stats_to_json,
    vector_stats,
)
from leanvla.json_values import is_number


def encode_png(image: np.ndarray) -> bytes:
    """uint8 H x W x C -> PNG bytes (lossless, so a round trip is pixel-identical)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


@dataclass(frozen=True)
class EncodedImages:
    """A camera's frames of an episode as PNG bytes, with each frame's pixel-value counts
    (`image_histogram`) taken from the pixels that were encoded: its statistics then need no second
    decode (the recorder's workers encode; the process writing would otherwise decode every frame
    again, on one core)."""

    pngs: list[bytes]
    counts: np.ndarray  # frames x channels x 256
    shape: tuple[int, int, int]  # every frame's height, width, channels

    @classmethod
    def of(cls, images: np.ndarray, pngs: list[bytes] | None = None) -> EncodedImages:
        """uint8 frames x H x W x C, encoded here unless their `pngs` are given."""
        return cls(
            [encode_png(image) for image in images] if pngs is None else pngs,
            np.stack([image_histogram(image[None]) for image in images]),
            images.shape[1:],
        )

    def __len__(self) -> int:
        return len(self.pngs)

    def __getitem__(self, frames: slice) -> EncodedImages:
        return EncodedImages(self.pngs[frames], self.counts[frames], self.shape)


def _refuse_non_finite(key: str, values: np.ndarray) -> None:
    """Refuse a NaN or an infinity in an episode's vector feature (frames x dim) before it is
    written: the reader refuses a dataset holding one (every loss would be NaN), so writing it would
    only move the error to the first command that reads the dataset."""
    if not np.issubdtype(values.dtype, np.floating):
        return
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        frame, dim = (int(i) for i in bad[0])
        raise ValueError(
            f"feature '{key}' is {values[frame, dim]} at frame {frame}, dimension {dim} of this episode "
            f"({len(bad)} such value{'s' if len(bad) > 1 else ''}): a dataset holding it cannot be trained on; "
            "repair or leave out the episode"
        )


def stats_columns(stats: dict[str, dict[str, np.ndarray]]) -> dict[str, list]:
    """An episode's statistics as the stats/<feature>/<stat> columns of its metadata row."""
    return {
        f"stats/{key}/{name}": np.asarray(value).tolist()
        for key, named in stats.items()
        for name, value in named.items()
    }


def write_meta_tables(root: Path, tasks: list[str], rows: list[dict], stats: dict) -> None:
    """meta/tasks.parquet, the episodes metadata (`rows`, one an episode, in one file) and
    meta/stats.json (`stats`, each feature's over the dataset), as LeRobot writes them."""
    (root / "meta").mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "task_index": pa.array(range(len(tasks)), pa.int64()),
            "__index_level_0__": pa.array(tasks, pa.large_string()),
        }
    ).replace_schema_metadata(fmt.tasks_schema_metadata())
    pq.write_table(table, root / fmt.TASKS_PATH)
    episodes_path = root / fmt.EPISODES_PATH.format(chunk_index=0, file_index=0)
    episodes_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), episodes_path)
    write_json_atomic(root / fmt.STATS_PATH, stats_to_json(stats))


# The episodes metadata's columns the writer fills itself (beside each feature's "stats/..."):
# an `extra` column of one of these names would overwrite them.
EPISODE_COLUMNS = (
    "episode_index",
    "tasks",
    "length",
    "data/chunk_index",
    "data/file_index",
    "dataset_from_index",
    "dataset_to_index",
    "meta/episodes/chunk_index",
    "meta/episodes/file_index",
)


def _check_feature(key: str, feature: dict) -> None:
    """A feature the writer can write: a dtype it writes and a shape of whole numbers (a KeyError or
    a TypeError mid-write before), and not one of the columns it fills itself."""
    if key in fmt.DEFAULT_FEATURES:
        raise ValueError(
            f"feature '{key}' is one the writer fills itself ({', '.join(fmt.DEFAULT_FEATURES)}); leave it out"
        )
    dtype = feature.get("dtype") if isinstance(feature, dict) else None
    if dtype == "video":
        raise ValueError(
            f"feature '{key}': leanvla writes images into parquet (dtype 'image'); video writing is not supported"
        )
    if dtype not in fmt.WRITTEN_DTYPES:
        raise ValueError(
            f"feature '{key}' has dtype {dtype!r}; the writer writes {', '.join(fmt.WRITTEN_DTYPES)}"
        )
    shape = feature.get("shape")
    if not (isinstance(shape, list | tuple) and shape and all(_positive_int(n) for n in shape)):
        raise ValueError(f"feature '{key}' must have a shape of whole numbers >= 1, got {shape!r}")


def _positive_int(n) -> bool:
    """A whole number >= 1, of Python's or numpy's (an image's .shape gives either), not a bool."""
    return isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 1


class LeRobotWriter:
    """Append episodes to a new LeRobotDataset v3.0 at `root` (which must be empty or absent)."""

    def __init__(
        self,
        root: str | Path,
        fps: int,
        features: dict[str, dict],
        robot_type: str | None = None,
        chunks_size: int = fmt.DEFAULT_CHUNKS_SIZE,
        data_files_size_in_mb: float = fmt.DEFAULT_DATA_FILE_SIZE_MB,
    ):
        self.root = Path(root)
        if self.root.exists() and any(self.root.iterdir()):  # its files would mix with ours
            raise ValueError(
                f"{self.root} is not empty; LeRobotWriter writes a new dataset: give it a new directory"
            )
        if not (is_number(fps) and fps > 0 and math.isfinite(fps)):  # else a dataset no reader opens
            raise ValueError(f"fps must be a positive number of frames per second, got {fps!r}")
        if robot_type is not None and not isinstance(robot_type, str):
            raise ValueError(f"robot_type must be a string or None, got {robot_type!r}")
        self.fps = fps
        self.robot_type = robot_type
        self.chunks_size = chunks_size
        self.data_files_size_in_mb = data_files_size_in_mb
        for key, feature in features.items():
            _check_feature(key, feature)
        # as lists of Python ints: a tuple of numpy's (an image's .shape) is not JSON info.json can hold
        features = {key: {**f, "shape": [int(n) for n in f["shape"]]} for key, f in features.items()}
        self.features = {**features, **fmt.DEFAULT_FEATURES}
        self.schema = pa.schema(
            [(k, fmt.arrow_type(f)) for k, f in self.features.items()],
            metadata=fmt.hf_schema_metadata(self.features),
        )
        self.tasks: list[str] = []
        self.episode_rows: list[dict[str, Any]] = []
        self.episode_stats: list[dict[str, dict[str, np.ndarray]]] = []
        self.total_frames = 0
        self._file = (0, 0)
        self._writer: pq.ParquetWriter | None = None

    # ---- episodes -----------------------------------------------------------------------------
    def task_index(self, task: str) -> int:
        if task not in self.tasks:
            self.tasks.append(task)
        return self.tasks.index(task)

    def add_episode(self, task: str, frames: dict[str, Any], extra: dict[str, Any] | None = None) -> int:
        """Append one episode; returns its episode_index.

        `frames` maps each user feature to its per-frame values: an array (frames x dim) for vectors;
        for images uint8 frames x H x W x C, `EncodedImages`, or a list of already-encoded PNG bytes
        (decoded again for their statistics).
        `extra` adds per-episode columns to the episodes metadata (e.g. the sampled positions).
        """
        if not isinstance(task, str):  # the episode's instruction, as meta/tasks.parquet lists it
            raise ValueError(f"task must be a string, the episode's instruction; got {task!r}")
        missing = [k for k in self.features if k not in frames and k not in fmt.DEFAULT_FEATURES]
        if missing:
            raise ValueError(f"episode is missing features {missing}")
        taken = sorted(k for k in extra or {} if k in EPISODE_COLUMNS or k.startswith("stats/"))
        if taken:  # else they overwrote what the writer records, and the metadata lied about the data
            raise ValueError(
                f"extra columns {taken} are the writer's own (the episode's length, tasks, place or "
                "statistics); give them other names"
            )
        undeclared = sorted(set(frames) - set(self.features))
        if undeclared:  # else dropped without a word
            raise ValueError(
                f"episode has features {undeclared} that the dataset does not declare; add them to "
                "LeRobotWriter's features, or leave them out"
            )
        computed = sorted(set(frames) & set(fmt.DEFAULT_FEATURES))
        if computed:  # else replaced without a word: a recording's own timestamps would be lost
            raise ValueError(
                f"episode gives {computed}, which the writer fills itself (timestamp = frame_index / fps, "
                "the indices in order); leave them out"
            )
        length = len(next(iter(frames.values())))
        if length == 0:  # nothing to take its statistics from; LeRobot records none such either
            raise ValueError("episode has no frames; give it at least one")
        episode_index = len(self.episode_rows)
        columns: dict[str, pa.Array] = {}
        stats: dict[str, dict[str, np.ndarray]] = {}
        for key, feature in self.features.items():
            if key in fmt.DEFAULT_FEATURES:
                continue
            values = frames[key]
            if len(values) != length:
                raise ValueError(f"feature '{key}' has {len(values)} frames, expected {length}")
            if feature["dtype"] == "image":
                columns[key], stats[key] = self._image_column(key, feature, values)
            else:
                array = np.asarray(values, dtype=np.dtype(feature["dtype"])).reshape(length, -1)
                if list(feature["shape"]) != [array.shape[1]]:
                    raise ValueError(
                        f"feature '{key}' has dim {array.shape[1]}, info declares {feature['shape']}"
                    )
                _refuse_non_finite(key, array)
                columns[key] = pa.FixedSizeListArray.from_arrays(pa.array(array.reshape(-1)), array.shape[1])
                stats[key] = vector_stats(array)
        task_index = self.task_index(task)  # only once the episode is accepted: a refused one lists none
        frame_index = np.arange(length, dtype=np.int64)
        defaults = {
            "timestamp": (frame_index / self.fps).astype(np.float32),
            "frame_index": frame_index,
            "episode_index": np.full(length, episode_index, dtype=np.int64),
            "index": self.total_frames + frame_index,
            "task_index": np.full(length, task_index, dtype=np.int64),
        }
        for key, values in defaults.items():
            columns[key] = pa.array(values)
            stats[key] = vector_stats(values)
        table = pa.Table.from_arrays([columns[k] for k in self.features], schema=self.schema)
        self._write_rows(table)

        row: dict[str, Any] = {
            "episode_index": episode_index,
            "tasks": [task],
            "length": length,
            "data/chunk_index": self._file[0],
            "data/file_index": self._file[1],
            "dataset_from_index": self.total_frames,
            "dataset_to_index": self.total_frames + length,
        }
        row |= stats_columns(stats)
        row.update(extra or {})
        row["meta/episodes/chunk_index"] = 0
        row["meta/episodes/file_index"] = 0
        self.episode_rows.append(row)
        self.episode_stats.append(stats)
        self.total_frames += length
        return episode_index

    def _image_column(self, key: str, feature: dict, values: Any) -> tuple[pa.Array, dict[str, np.ndarray]]:
        if isinstance(values, np.ndarray):
            if values.dtype != np.uint8 or list(values.shape[1:]) != list(feature["shape"]):
                raise ValueError(  # before PIL fails on them, in its own words
                    f"image feature '{key}' has {values.dtype} frames of shape {list(values.shape[1:])}; info "
                    f"declares uint8 frames of {feature['shape']} (height, width, channels; 0-255)"
                )
            values = EncodedImages.of(values)
        elif not isinstance(values, EncodedImages):
            from leanvla.data.reader import decode_png

            values = EncodedImages.of(np.stack([decode_png(b) for b in values]), list(values))
        if list(values.shape) != list(feature["shape"]):
            raise ValueError(
                f"image feature '{key}' has shape {list(values.shape)}, info declares {feature['shape']}"
            )
        array = pa.StructArray.from_arrays(
            [pa.array(values.pngs, pa.binary()), pa.array([None] * len(values), pa.string())],
            fields=list(fmt.IMAGE_STRUCT),
        )
        return array, stats_from_histogram(values.counts.sum(axis=0), len(values))

    def _write_rows(self, table: pa.Table) -> None:
        if (
            self._writer is not None
            and self._current_path().stat().st_size > self.data_files_size_in_mb * 1e6
        ):
            self._writer.close()
            self._writer = None
            chunk, file = self._file
            file += 1
            if file >= self.chunks_size:
                chunk, file = chunk + 1, 0
            self._file = (chunk, file)
        if self._writer is None:
            path = self._current_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(path, self.schema)
        self._writer.write_table(table)

    def _current_path(self) -> Path:
        return self.root / fmt.DATA_PATH.format(chunk_index=self._file[0], file_index=self._file[1])

    # ---- metadata -----------------------------------------------------------------------------
    def finalize(self) -> None:
        """Close the data file and write meta/: info.json, tasks, episodes, stats."""
        if not self.episode_rows:
            raise ValueError("no episodes were added")
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        write_meta_tables(self.root, self.tasks, self.episode_rows, aggregate_features(self.episode_stats))
        info = {
            "codebase_version": fmt.CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": len(self.episode_rows),
            "total_frames": self.total_frames,
            "total_tasks": len(self.tasks),
            "chunks_size": self.chunks_size,
            "data_files_size_in_mb": self.data_files_size_in_mb,
            "video_files_size_in_mb": fmt.DEFAULT_VIDEO_FILE_SIZE_MB,
            "fps": self.fps,
            "splits": {"train": f"0:{len(self.episode_rows)}"},
            "data_path": fmt.DATA_PATH,
            "video_path": None,
            "features": self.features,
        }
        write_json_atomic(self.root / fmt.INFO_PATH, info)
