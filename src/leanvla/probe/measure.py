"""Which frames a probe reads, their counterparts in other demonstrations, and the chunk errors.

A probed frame's observation goes to `Policy.act` as it would in closed loop, and the chunk that
comes back is compared step by step with the actions its demonstration took next; steps past the
episode's end are not compared. A counterpart is the frame at the same point of progress in the
next demonstration of the same task: handing the policy the counterpart's images (or state) in
place of the frame's own asks whether it reads from them where things are.
"""

from __future__ import annotations

import numpy as np
import torch

from leanvla.data.samples import ChunkDataset

SWAPS = ("images", "state")  # the inputs a probe hands over from the counterpart frame
Errors = tuple[torch.Tensor, torch.Tensor]  # N x H x A |predicted - demonstrated|, N x H compared


def episode_bounds(data: ChunkDataset) -> tuple[np.ndarray, np.ndarray]:
    """(first row, number of frames) of each episode in `data`, in row order."""
    episode = data.episode_index.numpy()
    starts = np.flatnonzero(np.r_[True, episode[1:] != episode[:-1]])
    return starts, np.diff(np.r_[starts, len(episode)])


def probed_rows(data: ChunkDataset, every: int) -> torch.Tensor:
    """Every `every`-th frame of each episode, from its first."""
    starts, lengths = episode_bounds(data)
    offsets = np.arange(len(data)) - np.repeat(starts, lengths)
    return torch.from_numpy(np.flatnonzero(offsets % every == 0))


def counterpart_rows(data: ChunkDataset, rows: torch.Tensor) -> torch.Tensor:
    """For each row, the frame at the same point of progress (offset x length' // length) in the next
    demonstration of its task (the task's episodes in row order, the last followed by the first);
    -1 where the task has one demonstration only."""
    starts, lengths = episode_bounds(data)
    task_of_episode = data.task_index.numpy()[starts]
    following = np.full(len(starts), -1)
    for task in np.unique(task_of_episode):
        members = np.flatnonzero(task_of_episode == task)
        if len(members) > 1:
            following[members] = np.roll(members, -1)
    rows = rows.numpy()
    episode = np.repeat(np.arange(len(starts)), lengths)[rows]
    other = following[episode]
    offset = rows - starts[episode]
    at = starts[other] + offset * lengths[other] // lengths[episode]
    return torch.from_numpy(np.where(other < 0, -1, at))


@torch.no_grad()
def chunk_errors(
    policy,
    data: ChunkDataset,
    rows: torch.Tensor,
    noise: torch.Tensor,
    tasks: torch.Tensor,
    batch_size: int,
    images_from: torch.Tensor | None = None,
    state_from: torch.Tensor | None = None,
    on_batch=None,
) -> Errors:
    """(|predicted - demonstrated| for each probed row, chunk step and action dimension, N x H x A in
    the dataset's action units; where the demonstration goes on, N x H bool).

    `noise` holds each row's flow noise (N x H x A), so a row's chunk does not depend on its batch;
    `tasks` maps the dataset's task indices to the policy's instructions; `images_from` and
    `state_from` are rows whose images / state the policy sees in place of each row's own.
    `on_batch(n)` is called after each batch of n rows (a progress bar).
    """
    errors = torch.empty(len(rows), data.chunk_size, policy.action_dim)
    compared = torch.empty(len(rows), data.chunk_size, dtype=torch.bool)
    for start in range(0, len(rows), batch_size):
        part = slice(start, start + batch_size)
        batch = data.batch(rows[part])
        images = batch.images if images_from is None else data.images(images_from[part])
        state = batch.state if state_from is None else data.state[state_from[part]]
        chunk = policy.act(images, state, tasks[batch.task_index], noise=noise[part]).cpu()
        errors[part] = (chunk - batch.actions).abs()
        compared[part] = batch.action_mask.bool()
        if on_batch is not None:
            on_batch(len(batch.state))
    return errors, compared


def probe_errors(
    policy,
    data: ChunkDataset,
    rows: torch.Tensor,
    counterparts: torch.Tensor,
    noise: torch.Tensor,
    tasks: torch.Tensor,
    batch_size: int,
    progress: bool = False,
) -> tuple[Errors, dict[str, Errors], list[int]]:
    """The errors of every probed row as recorded, and of the rows with a counterpart (>= 0) with
    each input of SWAPS taken from it instead, under one progress bar; and the discrete head's
    forward passes for each batch of the rows as recorded (empty for other heads)."""
    from tqdm import tqdm

    passes = []

    def count_passes(n: int) -> None:
        bar.update(n)
        decoded = getattr(policy.model, "last_decode", None)
        if decoded is not None:
            passes.append(decoded.forward_passes)

    paired = counterparts >= 0
    total = len(rows) + len(SWAPS) * int(paired.sum())
    with tqdm(total=total, desc="probe", unit="frame", disable=not progress) as bar:
        measured = chunk_errors(policy, data, rows, noise, tasks, batch_size, on_batch=count_passes)
        swapped = {
            name: chunk_errors(
                policy,
                data,
                rows[paired],
                noise[paired],
                tasks,
                batch_size,
                **{f"{name}_from": counterparts[paired]},
                on_batch=bar.update,
            )
            for name in SWAPS
        }
    return measured, swapped, passes
