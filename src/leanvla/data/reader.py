"""Read a LeRobotDataset v3.0 directory with pyarrow alone (no lerobot import).

`LeRobotDataset(root)` validates the layout up front, so a broken dataset fails with one line
naming the file and the problem instead of a traceback deep in training.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property, partial
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from leanvla.cores import cores_per_process
from leanvla.data import format as fmt
from leanvla.data.data_files import data_file_batches, data_file_rows, read_parquet
from leanvla.data.episode_selection import written_out
from leanvla.data.episodes_table import read_episodes_table
from leanvla.data.info import V3_TEMPLATES, check_info, read_info, version_remedy
from leanvla.data.lerobot_home import where_looked
from leanvla.errors import UserError, require
from leanvla.nearby import nearby


def decode_png(data: bytes) -> np.ndarray:
    """PNG (or any PIL-readable) bytes -> uint8 array H x W x C (RGB)."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def no_frames_phrase(episodes: list[int], lengths: list[int]) -> str:
    """'episode 5 has no frames' (or 'episodes 1, 5 have ...') for those of `episodes` whose length
    is 0, '' when none is. LeRobot records no such episode; an edited or converted dataset may hold
    one, and each command says what it does about it."""
    empty = [int(episode) for episode, length in zip(episodes, lengths) if length == 0]
    if not empty:
        return ""
    many = len(empty) > 1
    listed = ", ".join(map(str, empty[:10])) + (", ..." if len(empty) > 10 else "")
    return f"episode{'s' if many else ''} {listed} {'have' if many else 'has'} no frames (length 0 in the metadata)"


class LeRobotDataset:
    """A LeRobotDataset v3.0 on disk: metadata in memory, frames read on demand."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        require(
            not self.root.is_file(),
            f"{self.root} is a file, not a dataset directory; pass the directory holding its meta/ and data/",
        )
        require(
            self.root.is_dir(),
            f"dataset directory {self.root} does not exist{where_looked(self.root)}; record one with "
            f"`leanvla data metaworld --out {self.root}` or pass the path of a LeRobotDataset",
        )
        info_path = self.root / fmt.INFO_PATH
        if not info_path.is_file():
            raise UserError(
                f"{info_path} is missing: {self.root} is not a LeRobotDataset v3 directory (expected "
                f"meta/info.json, meta/tasks.parquet, meta/episodes/, data/){nearby(self.root, fmt.INFO_PATH, 'dataset')}"
            )
        self.info: dict = read_info(info_path)
        version = str(self.info.get("codebase_version", "?"))
        require(
            version.startswith("v3"),
            f"{info_path} says codebase_version {version}; leanvla reads LeRobotDataset v3.x: "
            f"{version_remedy(version, self.root)}",
        )
        check_info(self.info, info_path, V3_TEMPLATES)
        self.features: dict[str, dict] = self.info["features"]
        self.fps: float = self.info["fps"]
        self.tasks: list[str] = self._read_tasks()
        self.episodes: pa.Table = read_episodes_table(self.root, self.info["total_episodes"], self.tasks)
        self._check_data_files()

    # ---- metadata -----------------------------------------------------------------------------
    def _read_tasks(self) -> list[str]:
        path = self.root / fmt.TASKS_PATH
        require(path.is_file(), f"{path} is missing; the dataset has no task table")
        table = read_parquet(path)
        names = table.column_names
        text_col = (
            "task" if "task" in names else next((n for n in names if n.startswith("__index_level_")), None)
        )
        require(
            text_col is not None and "task_index" in names,
            f"{path} has columns {names}; expected task_index and the task string (as the pandas index or a "
            "'task' column)",
        )
        order = np.argsort(table.column("task_index").to_numpy())
        tasks = [table.column(text_col)[int(i)].as_py() for i in order]
        indices = sorted(table.column("task_index").to_pylist())
        require(
            indices == list(range(len(tasks))),
            f"{path}: task_index values {indices} are not 0..{len(tasks) - 1}",
        )
        return tasks

    def _check_data_files(self) -> None:
        for path in self.data_files:
            require(
                path.is_file(),
                f"data file {path} is missing (meta/episodes references it); the dataset is incomplete: "
                "re-record or re-download it",
            )

    @cached_property
    def data_files(self) -> list[Path]:
        chunks = self.episodes.column("data/chunk_index").to_pylist()
        files = self.episodes.column("data/file_index").to_pylist()
        pairs = sorted(set(zip(chunks, files)))
        return [self.root / self.info["data_path"].format(chunk_index=c, file_index=f) for c, f in pairs]

    @property
    def num_episodes(self) -> int:
        return self.episodes.num_rows

    @property
    def num_frames(self) -> int:
        return int(self.info["total_frames"])

    @property
    def camera_keys(self) -> list[str]:
        return [k for k, f in self.features.items() if fmt.is_visual(f)]

    def image_shape(self, key: str) -> tuple[int, int]:
        """(height, width) of an image feature, as meta/info.json declares it."""
        return _hwc(self.features[key])[:2]

    def episode_column(self, name: str) -> list:
        """One column of the episodes metadata as a Python list (episode order)."""
        require(
            name in self.episodes.column_names, f"{self.root}: the episodes metadata has no column '{name}'"
        )
        return self.episodes.column(name).to_pylist()

    def episode_tasks(self) -> list[str]:
        """The (first) task string of each episode, one of `tasks`."""
        return [t[0] if isinstance(t, list) else t for t in self.episode_column("tasks")]

    def summary(self) -> dict:
        """What `leanvla info` prints."""
        return {
            "root": str(self.root),
            "codebase_version": self.info.get("codebase_version"),
            "robot_type": self.info.get("robot_type"),
            "episodes": self.num_episodes,
            "frames": self.num_frames,
            "fps": self.fps,
            "tasks": self.tasks,
            **self._episodes_by_task(),
            "features": {k: {"dtype": f["dtype"], "shape": f["shape"]} for k, f in self.features.items()},
        }

    def _episodes_by_task(self) -> dict:
        """{"episodes_by_task": {task: '0:50', ...}}, each as --episodes takes it; {} where the
        episodes metadata names no tasks (LeRobot drops them when it makes cameras videos): info
        reads no frame."""
        if "tasks" not in self.episodes.column_names:
            return {}
        by_task = {task: [] for task in self.tasks}
        for episode, tasks in enumerate(self.episode_column("tasks")):
            for task in [tasks] if isinstance(tasks, str) else tasks:
                by_task[task].append(episode)
        return {"episodes_by_task": {task: written_out(episodes) for task, episodes in by_task.items()}}

    # ---- frames -------------------------------------------------------------------------------
    def read_table(self, columns: list[str] | None = None) -> pa.Table:
        """All frames (in `index` order) of the given columns."""
        if columns is not None:
            for c in columns:
                require(
                    c in self.features,
                    f"{self.root}: feature '{c}' is not in meta/info.json (it has {sorted(self.features)})",
                )
        table = pa.concat_tables([read_parquet(path, columns) for path in self.data_files])
        self._require_total_frames(table.num_rows)
        return table

    def _require_total_frames(self, held: int) -> None:
        require(
            held == self.num_frames,
            f"{self.root}: data files hold {held} frames but meta/info.json says total_frames={self.num_frames}",
        )

    def read_array(self, key: str) -> np.ndarray:
        """A numeric feature as an array: frames x dim (vectors) or frames (scalars)."""
        feature = self.features.get(key)
        require(feature is not None, f"{self.root}: no feature '{key}' (it has {sorted(self.features)})")
        require(not fmt.is_visual(feature), f"'{key}' is an image feature; use read_images")
        column = self.read_table([key]).column(key).combine_chunks()
        self._refuse_nulls(key, column)
        shape = list(feature["shape"])
        if pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type):
            lengths = (
                set(column.value_lengths().to_pylist())
                if pa.types.is_list(column.type)
                else {column.type.list_size}
            )
            require(
                lengths == {shape[0]},
                f"feature '{key}' has length {sorted(lengths)} in {self.data_files[0]} but meta/info.json "
                f"declares shape {shape}; the dataset is inconsistent",
            )
            values = column.flatten().to_numpy(zero_copy_only=False)
            return values.reshape(len(column), shape[0])
        require(
            shape == [1],
            f"feature '{key}' is a scalar column in the data but meta/info.json declares shape {shape}",
        )
        return column.to_numpy(zero_copy_only=False)

    def _refuse_nulls(self, key: str, column: pa.Array) -> None:
        """A frame without a value (null) is refused, naming it: it became a shape error, or a
        NaN that was reported as one."""
        nested = pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type)
        if not (column.null_count or (nested and column.flatten().null_count)):
            return
        missing = column.is_null().to_numpy(zero_copy_only=False)
        if nested and not missing.any():  # a null inside a frame's vector: find its frame
            missing = np.asarray([None in row for row in column.to_pylist()])
        rows = np.flatnonzero(missing)
        episode, frame = self.episode_frame(int(rows[0]))
        raise UserError(
            f"{self.root}: '{key}' has no value (null) in episode {episode}, frame {frame} "
            f"({such_frames(rows.size)}): repair the recording, or leave the episode out with --episodes"
        )

    def episode_frame(self, row: int) -> tuple[int, int]:
        """(episode, frame within it) of the dataset's `row`-th frame."""
        starts = np.asarray(self.episode_column("dataset_from_index"), dtype=np.int64)
        episode = int(np.searchsorted(starts, row, side="right")) - 1
        return episode, row - int(starts[episode])

    def read_images(
        self,
        key: str,
        progress: bool = False,
        rows: np.ndarray | None = None,
        size: int | None = None,
        fit: str = "pad",
    ) -> np.ndarray:
        """An image feature decoded for every frame (or the frames where the bool mask `rows` is
        set): uint8 frames x H x W x C, or frames x size x size x C fitted as `fit` says
        (leanvla.data.resize; a few frames at a time, so the full-size images are never all held).
        Fitted frames that are costly to decode are kept for the next read (leanvla.data.frame_cache)."""
        frames, index = self.camera_frames(key, progress, rows, size, fit)
        return frames if index is None else frames[index]

    def camera_frames(
        self,
        key: str,
        progress: bool = False,
        rows: np.ndarray | None = None,
        size: int | None = None,
        fit: str = "pad",
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """`read_images` without holding frames in memory that the frame cache keeps on disk:
        (frames, index), the frames asked for being `frames[index]`. From the cache, `frames` is a
        read-only memory map of the camera's every frame (or of the episodes holding `rows`, where
        they are at most half of a video's frames: `_episodes_read`), so a dataset whose frames
        outgrow memory still trains, and processes reading one camera share its pages; otherwise
        `frames` are the decoded frames asked for, and `index` is None."""
        from leanvla.data import frame_cache

        feature = self.camera_feature(key)
        if rows is not None and np.asarray(rows, dtype=bool).all():
            rows = None  # every frame (training on every episode): read whole, kept, never copied
        episodes, within = self._episodes_read(key, rows)
        if not frame_cache.worth_caching(self, key, size):
            if episodes is None:
                return self._decode_images(key, progress, rows, size, fit), None
            return self._decode_images(key, progress, None, size, fit, episodes=episodes)[within], None
        if episodes is not None:  # the whole camera's entry serves, where naming it reads no file
            frames, _ = frame_cache.load_frames(self, key, size, fit, progress, if_digests_known=True)
            if frames is not None:
                return frames, np.flatnonzero(rows)
        frames, entry = frame_cache.load_frames(self, key, size, fit, progress, episodes)
        if frames is not None:
            if progress:
                print(f"{key}: {len(frames)} decoded frames read from the frame cache", file=sys.stderr)
        elif feature["dtype"] != "video" and rows is not None:
            # Images read in part decode only those rows, and are not kept (a video decodes whole).
            return self._decode_images(key, progress, rows, size, fit), None
        else:
            frames = frame_cache.decode_into_entry(
                self,
                key,
                size,
                fit,
                entry,
                lambda out: self._decode_images(key, progress, None, size, fit, out, episodes),
                progress,
                episodes,
            )
        if not isinstance(frames, np.memmap):  # the cache could not be written: decoded in memory
            return (frames, None) if within is None else (frames[within], None)
        return frames, np.arange(len(frames)) if within is None else within

    def camera_feature(self, key: str) -> dict:
        """Camera `key`'s feature, refused in one line where leanvla cannot read it: frames decode as
        RGB (a PNG converted, an mp4 as rgb24) and policies see 3 channels, so a depth or grayscale
        camera would fail later, on a shape no one declared."""
        feature = self.features.get(key)
        require(
            feature is not None and fmt.is_visual(feature),
            f"{self.root}: '{key}' is not an image or video feature (cameras: {self.camera_keys})",
        )
        shape = list(feature["shape"])
        require(
            len(shape) == 3 and _hwc(feature)[2] == 3,
            f"{self.root}: camera '{key}' has shape {shape} in meta/info.json; leanvla reads RGB cameras "
            "(height x width x 3) only (`train --cameras` can leave it out)",
        )
        return feature

    def _episodes_read(
        self, key: str, rows: np.ndarray | None
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(The episodes a read of `rows` decodes, when it decodes only some: None for all; where the
        rows asked for are in what it decodes, or None for all of it). A video decodes whole, since
        every later read can use what it keeps, unless the episodes holding the rows are at most
        half its frames: then only they decode (a few episodes of a large dataset, found by
        seeking), and are kept apart."""
        if rows is None:
            return None, None
        rows = np.asarray(rows, dtype=bool)
        if self.features[key]["dtype"] != "video":
            return None, np.flatnonzero(rows)
        lengths = np.asarray(self.episode_column("length"), dtype=np.int64)
        require(
            int(lengths.sum()) == len(rows) == self.num_frames,
            f"{self.root}: meta/episodes' lengths add up to {int(lengths.sum())} frames but "
            f"meta/info.json says total_frames={self.num_frames}; the dataset is inconsistent",
        )
        episode_of_row = np.repeat(np.arange(len(lengths)), lengths)
        episodes = np.unique(episode_of_row[rows])
        decoded = np.isin(episode_of_row, episodes)
        if 2 * int(decoded.sum()) > len(rows):
            return None, np.flatnonzero(rows)
        return episodes, (np.cumsum(decoded) - 1)[rows]

    def _decode_images(
        self,
        key: str,
        progress: bool,
        rows: np.ndarray | None,
        size: int | None,
        fit: str,
        out: np.ndarray | None = None,
        episodes: np.ndarray | None = None,
    ) -> np.ndarray:
        """`read_images` from the files themselves: every frame decoded (of a video, every frame of
        its files, or of `episodes` alone, then the rows kept); into `out` when given (every frame
        decoded, none left out)."""
        from leanvla.data.resize import fit_square

        feature = self.features[key]
        if feature["dtype"] == "video":
            from leanvla.data.video import read_video_frames

            frames = read_video_frames(self, key, size, fit, progress, out, episodes)
            return frames if rows is None else frames[rows]
        height, width, channels = _hwc(feature)
        mask = None if rows is None else np.asarray(rows, dtype=bool)
        count = self.num_frames if mask is None else int(mask.sum())
        target = (height, width) if size is None else (size, size)
        resized = target != (height, width)
        if out is None:
            out = np.empty((count, *target, channels), dtype=np.uint8)
        for start, decoded in self._png_decoded(key, mask, count, progress, into=None if resized else out):
            if resized:  # else decoded into `out` itself
                out[start : start + len(decoded)] = fit_square(decoded, size, fit)
        return out

    def _png_decoded(
        self, key: str, mask: np.ndarray | None, count: int, progress: bool, into: np.ndarray | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Camera `key`'s PNG frames (those `mask` keeps, `count` of them) decoded a batch at a time
        on every core, in order: (the first frame's place among them, the batch's frames), decoded
        into those rows of `into` where it is given, so that nothing is copied."""
        height, width, channels = _hwc(self.features[key])
        start, threads = 0, cores_per_process()  # PIL lets go of the GIL while it inflates a PNG
        with decoding_bar(key, count, "img", progress) as bar, ThreadPoolExecutor(threads) as pool:
            for blobs, paths in self._png_batches(key, mask):
                stop = start + len(blobs)
                if into is None:
                    decoded = np.empty((len(blobs), height, width, channels), np.uint8)
                else:
                    decoded = into[start:stop]
                fill = partial(self._png_frames_into, key, decoded, start, blobs, paths)
                batch, step = range(len(blobs)), -(-len(blobs) // threads)  # a slice a thread: few hand-overs
                for _ in pool.map(fill, [batch[i : i + step] for i in batch[::step]]):
                    pass  # in order: a damaged dataset's first bad image is the one named
                yield start, decoded
                start = stop
                bar.update(len(blobs))

    def episode_frames(self, key: str) -> Iterator[tuple[int, np.ndarray]]:
        """Each episode's frames of camera `key` as stored (uint8 length x H x W x C), as (episode,
        frames): one episode held at a time, and none kept in the frame cache (full-size frames of
        every episode would fill it). PNGs in episode order, in one pass over the data files; a
        video's a file at a time, each file decoded once (`video_episode_frames`)."""
        lengths = np.asarray(self.episode_column("length"), dtype=np.int64)
        if self.camera_feature(key)["dtype"] == "video":
            from leanvla.data.video import video_episode_frames

            yield from video_episode_frames(self, key)
            return
        episode, held, pieces = 0, 0, []
        for _, decoded in self._png_decoded(key, None, self.num_frames, progress=False):
            while len(decoded):
                take = int(lengths[episode]) - held
                pieces.append(decoded[:take])
                decoded, held = decoded[take:], held + len(pieces[-1])
                if held == lengths[episode]:
                    yield episode, np.concatenate(pieces)
                    episode, held, pieces = episode + 1, 0, []

    def _png_frames_into(
        self, key: str, decoded: np.ndarray, first: int, blobs: list, paths: list, part: range
    ) -> None:
        """The `part` of a batch of camera `key`'s PNGs (bytes, or else file paths) decoded into those
        rows of `decoded`, each checked to have the shape meta/info.json declares; the batch's first
        image is the camera's image `first`."""
        for i in part:
            try:
                data = blobs[i] if blobs[i] is not None else (self.root / paths[i]).read_bytes()
                image = decode_png(data)
            except (OSError, ValueError, SyntaxError) as exc:  # PIL's word for a damaged image
                raise UserError(
                    f"{self.root}: image {first + i} of '{key}' cannot be decoded ({exc}); the dataset is "
                    "damaged: re-record or re-download it"
                ) from None
            if image.shape != decoded.shape[1:]:
                raise UserError(
                    f"image {first + i} of '{key}' has shape {list(image.shape)} but meta/info.json declares "
                    f"{list(decoded.shape[1:])}"
                )
            decoded[i] = image

    def _png_batches(self, key: str, mask: np.ndarray | None) -> Iterator[tuple[list, list]]:
        """A camera's PNG frames (those `mask` keeps, when given) as (bytes, paths) lists of 1 to
        BATCH, read from the data files a batch at a time: a camera's every PNG, and Python's copy
        of each, are never held at once (for a camera of large frames, gigabytes)."""
        from leanvla.data.resize import BATCH

        self._require_total_frames(sum(map(data_file_rows, self.data_files)))
        offset = 0
        for path in self.data_files:
            for batch in data_file_batches(path, key, BATCH):
                column = batch.column(0)
                if mask is not None:
                    column = column.filter(pa.array(mask[offset : offset + len(column)]))
                offset += len(batch)
                if len(column):  # episodes left out may fill whole batches
                    yield column.field("bytes").to_pylist(), column.field("path").to_pylist()


def decoding_bar(key: str, total: int, unit: str, progress: bool):
    """The progress bar over a camera's frames as they decode: cleared when done (or refused)."""
    from tqdm import tqdm

    return tqdm(
        total=total, desc=f"decode {key}", unit=unit, leave=False, mininterval=1.0, disable=not progress
    )


def _hwc(feature: dict) -> tuple[int, int, int]:
    shape = list(feature["shape"])
    names = feature.get("names") or ["height", "width", "channels"]
    if names and names[0] in ("channels", "channel", "c"):
        return shape[1], shape[2], shape[0]
    return shape[0], shape[1], shape[2]


def such_frames(count: int) -> str:
    return f"{count} such frame{'s' if count != 1 else ''}"
