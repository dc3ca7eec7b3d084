"""Training samples: (observation at t, action chunk t..t+H-1, padding mask), task-balanced.

All frames of the selected episodes are decoded once (uint8 images, float32 vectors), so a training
step costs an index gather, not a decode per sample. Images the frame cache keeps are read from its
memory-mapped entries (leanvla.data.frame_cache), others are held in memory. Chunks that run past the
end of their episode repeat the last action and are masked out of the loss.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch

from leanvla.data.frame_labels import frame_episodes, frame_tasks
from leanvla.data.reader import LeRobotDataset, no_frames_phrase
from leanvla.data.resize import FITTED
from leanvla.data.stats import image_histogram, stats_from_histogram, vector_stats
from leanvla.errors import UserError, require


@dataclass
class Batch:
    images: torch.Tensor  # B x N_cam x 3 x H x W, uint8
    state: torch.Tensor  # B x S
    actions: torch.Tensor  # B x H x A
    action_mask: torch.Tensor  # B x H, 1.0 where the action is real (not past the episode end)
    task_index: torch.Tensor  # B
    frame: torch.Tensor  # B, row in the ChunkDataset (for bookkeeping)

    def slice(self, start: int, stop: int) -> Batch:
        return Batch(
            *(
                getattr(self, f)[start:stop]
                for f in ("images", "state", "actions", "action_mask", "task_index", "frame")
            )
        )


def check_finite(values: np.ndarray, key: str, episode_index: np.ndarray, root) -> None:
    """Refuse a NaN or an infinity in a numeric feature (frames x dim): it would make every loss NaN
    and the policy useless, without an error."""
    flat = values.reshape(len(values), -1)
    bad = ~np.isfinite(flat)
    if not bad.any():
        return
    row, dim = (int(i) for i in np.argwhere(bad)[0])
    episode = int(episode_index[row])
    frame = row - int(np.flatnonzero(episode_index == episode)[0])
    episodes = sorted({int(e) for e in episode_index[bad.any(axis=1)]})
    count = int(bad.sum())
    where = ", ".join(map(str, episodes[:10])) + (", ..." if len(episodes) > 10 else "")
    raise UserError(
        f"{root}: '{key}' is {flat[row, dim]} in episode {episode}, frame {frame}, dimension {dim} "
        f"({count} such value{'s' if count > 1 else ''}, in episode{'s' if len(episodes) > 1 else ''} {where}): "
        f"leave {'them' if len(episodes) > 1 else 'it'} out with --episodes (a JSON list of the others), "
        "or repair the recording"
    )


class ChunkDataset:
    """The frames of (a subset of) a LeRobotDataset, ready to be sampled as action-chunk samples."""

    def __init__(
        self,
        dataset: LeRobotDataset,
        cameras: list[str],
        chunk_size: int,
        episodes: list[int] | None = None,
        state_key: str = "observation.state",
        action_key: str = "action",
        progress: bool = False,
        env_state_key: str | None = None,
        image_size: int | None = None,
        image_fit: str = "pad",
    ):
        """`image_size`: the side of the square images a policy takes; cameras of another shape are
        fitted to it as `image_fit` says (leanvla.data.resize). None: images as stored, one shape
        for all."""
        for key in [*cameras, state_key, action_key, *([env_state_key] if env_state_key else [])]:
            require(
                key in dataset.features,
                f"{dataset.root}: feature '{key}' is missing (it has {sorted(dataset.features)})",
            )
        shapes = {k: dataset.image_shape(k) for k in cameras}
        require(
            image_size is not None or len(set(shapes.values())) <= 1,
            f"{dataset.root}: cameras {cameras} hold images of {len(set(shapes.values()))} shapes; give "
            "the size to fit them to (train --model.image-size)",
        )
        for key, (height, width) in shapes.items():
            if progress and image_size is not None and (height, width) != (image_size, image_size):
                print(
                    f"{key}: {height}x{width} images {FITTED[image_fit]} to {image_size}x{image_size}",
                    file=sys.stderr,
                )
        self.dataset = dataset
        self.cameras = cameras
        self.chunk_size = chunk_size
        self.image_fit = image_fit
        self.state_key, self.action_key = state_key, action_key
        self.instructions = dataset.tasks
        episode_index = frame_episodes(dataset)
        keep = (
            np.ones(len(episode_index), dtype=bool) if episodes is None else np.isin(episode_index, episodes)
        )
        if not keep.any():  # else the checks below fail on empty arrays, in tracebacks
            chosen = list(range(dataset.num_episodes)) if episodes is None else episodes
            lengths = dataset.episode_column("length")
            raise UserError(
                f"{dataset.root}: {no_frames_phrase(chosen, [lengths[e] for e in chosen])}: nothing to read"
                + ("" if episodes is None else "; select episodes that have frames")
            )
        self.episodes = sorted(set(episode_index[keep].tolist()))
        self.episode_index = torch.from_numpy(episode_index[keep])
        self.task_index = torch.from_numpy(frame_tasks(dataset)[keep])
        self.state = torch.from_numpy(dataset.read_array(state_key).astype(np.float32)[keep])
        self.actions = torch.from_numpy(dataset.read_array(action_key).astype(np.float32)[keep])
        self.env_state = (  # an auxiliary target only (--aux.env-state); never a policy input
            torch.from_numpy(dataset.read_array(env_state_key).astype(np.float32)[keep])
            if env_state_key
            else None
        )
        for key, values in [
            (state_key, self.state),
            (action_key, self.actions),
            (env_state_key, self.env_state),
        ]:
            if values is not None:  # before the images decode
                check_finite(values.numpy(), key, episode_index[keep], dataset.root)
        # Per camera (frames, index): row r's image is frames[index[r]]. Frames the cache keeps stay
        # memory-mapped on disk, so they need not fit in memory; a step reads only its batch's.
        self._camera_frames = []
        for key in cameras:
            frames, index = dataset.camera_frames(key, progress, keep, image_size, image_fit)
            self._camera_frames.append((frames, np.arange(len(frames)) if index is None else index))
        # Exclusive end row of each frame's episode; the dataset stores episodes contiguously.
        ep = self.episode_index.numpy()
        starts = np.flatnonzero(np.r_[True, ep[1:] != ep[:-1]])
        ends = np.r_[starts[1:], len(ep)]
        self.episode_end = torch.from_numpy(np.repeat(ends, ends - starts))
        # Task-balanced sampling: frames grouped by task.
        self.tasks_present = sorted(set(self.task_index.tolist()))
        order = torch.argsort(self.task_index, stable=True)
        counts = torch.bincount(self.task_index, minlength=len(self.instructions))[self.tasks_present]
        self._by_task = order
        self._task_start = torch.cumsum(counts, 0) - counts
        self._task_count = counts

    @classmethod
    def for_policy(
        cls,
        dataset: LeRobotDataset,
        model: dict,
        episodes: list[int] | None = None,
        state_key: str = "observation.state",
        action_key: str = "action",
        progress: bool = False,
    ) -> ChunkDataset:
        """The frames a trained policy reads (`model`: its checkpoint's meta['model']): its cameras
        and chunk, every image fitted to its square as it was trained to."""
        return cls(
            dataset,
            model["cameras"],
            model["chunk_size"],
            episodes,
            state_key,
            action_key,
            progress,
            image_size=model["image_size"],
            image_fit=model["image_fit"],
        )

    def like(
        self, dataset: LeRobotDataset, episodes: list[int] | None = None, progress: bool = False
    ) -> ChunkDataset:
        """Other episodes, or another dataset, read as these were: the same cameras, chunk, keys and
        image size and fit (a validation set beside its training set)."""
        return ChunkDataset(
            dataset,
            self.cameras,
            self.chunk_size,
            episodes,
            self.state_key,
            self.action_key,
            progress,
            image_size=self.image_size[0],
            image_fit=self.image_fit,
        )

    def __len__(self) -> int:
        return len(self.state)

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self._camera_frames[0][0].shape[1:3])

    def images(self, rows: torch.Tensor | np.ndarray) -> torch.Tensor:
        """The images of frame `rows`: uint8 B x N_cam x 3 x H x W (read from disk where mapped)."""
        rows = np.asarray(rows, dtype=np.int64)
        per_camera = [frames[index[rows]] for frames, index in self._camera_frames]
        return torch.from_numpy(np.stack(per_camera, axis=1)).permute(0, 1, 4, 2, 3).contiguous()

    @property
    def mapped(self) -> bool:
        """Whether the images are read from memory-mapped cache entries, not held in memory."""
        return any(isinstance(frames, np.memmap) for frames, _ in self._camera_frames)

    def sample_indices(
        self, batch_size: int, generator: torch.Generator, balanced: bool = True
    ) -> torch.Tensor:
        """Frame rows for one batch: a uniformly drawn task, then a uniform frame of that task."""
        if not balanced:
            return torch.randint(len(self), (batch_size,), generator=generator)
        task = torch.randint(len(self.tasks_present), (batch_size,), generator=generator)
        within = (torch.rand(batch_size, generator=generator) * self._task_count[task]).long()
        return self._by_task[self._task_start[task] + within]

    def batch(self, rows: torch.Tensor) -> Batch:
        steps = rows[:, None] + torch.arange(self.chunk_size)  # B x H
        end = self.episode_end[rows][:, None]
        mask = steps < end
        steps = torch.minimum(steps, end - 1)  # past the end: repeat the last action, masked
        return Batch(
            self.images(rows),
            self.state[rows],
            self.actions[steps],
            mask.float(),
            self.task_index[rows],
            rows,
        )

    def stats(self) -> dict[str, dict[str, np.ndarray]]:
        """Statistics of exactly the frames used for training, in LeRobot's stats.json layout."""
        out = {
            self.state_key: vector_stats(self.state.numpy()),
            self.action_key: vector_stats(self.actions.numpy()),
        }
        sample = np.arange(0, len(self), max(1, len(self) // 2000))  # per-channel stats need few frames
        for key, (frames, index) in zip(self.cameras, self._camera_frames):
            histogram = sum(  # a few frames at a time: a float copy of 2000 frames is gigabytes
                image_histogram(frames[index[sample[start : start + 64]]])
                for start in range(0, len(sample), 64)
            )
            out[key] = stats_from_histogram(histogram, len(sample))
        return out
