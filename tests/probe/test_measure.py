"""Which frames a probe reads, their counterparts, and its chunk errors, against slow references."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from leanvla.data.reader import LeRobotDataset
from leanvla.data.samples import ChunkDataset
from leanvla.probe.measure import chunk_errors, counterpart_rows, probed_rows

CHUNK = 5


@pytest.fixture
def frames(data) -> ChunkDataset:
    """The synthetic dataset: episodes of 6, 4, 9 and 5 frames of tasks a, b, a, c; the action at
    frame f of episode e is (e, f, 0, 0)."""
    return ChunkDataset(LeRobotDataset(data), ["observation.images.cam"], CHUNK)


def episodes_of(episode_index: list[int]) -> list[list[int]]:
    """Each episode's rows, in row order (the slow way)."""
    out: dict[int, list[int]] = {}
    for row, episode in enumerate(episode_index):
        out.setdefault(episode, []).append(row)
    return list(out.values())


@pytest.mark.parametrize("every", [1, 2, 3, 10])
def test_every_nth_frame_of_each_episode_from_its_first(frames, every):
    expected = [row for rows in episodes_of(frames.episode_index.tolist()) for row in rows[::every]]
    assert probed_rows(frames, every).tolist() == expected


def slow_counterparts(episode_index: list[int], task_index: list[int], rows: list[int]) -> list[int]:
    episodes = episodes_of(episode_index)
    out = []
    for row in rows:
        mine = next(e for e in episodes if row in e)
        same_task = [e for e in episodes if task_index[e[0]] == task_index[row]]
        if len(same_task) == 1:
            out.append(-1)
            continue
        other = same_task[(same_task.index(mine) + 1) % len(same_task)]
        out.append(other[mine.index(row) * len(other) // len(mine)])
    return out


def test_a_counterpart_is_the_same_point_of_the_next_demonstration_of_the_task(frames):
    rows = probed_rows(frames, 1)
    expected = slow_counterparts(frames.episode_index.tolist(), frames.task_index.tolist(), rows.tolist())
    assert counterpart_rows(frames, rows).tolist() == expected
    # tasks a (episodes 0 and 2) pair up; b and c have one demonstration each
    assert expected[0] == 10 and expected[6] == -1 and expected[10] == 0 and expected[18] == 5


def test_counterparts_cycle_through_three_demonstrations_of_a_task():
    frames = SimpleNamespace(  # episodes of 2, 3 and 4 frames, all one task; another task between
        episode_index=torch.tensor([0, 0, 1, 1, 1, 5, 2, 2, 2, 2]),
        task_index=torch.tensor([0, 0, 0, 0, 0, 1, 0, 0, 0, 0]),
    )
    rows = torch.arange(10)
    found = counterpart_rows(frames, rows).tolist()
    assert found == slow_counterparts(
        frames.episode_index.tolist(), frames.task_index.tolist(), rows.tolist()
    )
    assert found == [2, 3, 6, 7, 8, -1, 0, 0, 1, 1]


class ZeroPolicy:
    """Predicts zeros, and keeps what it was given."""

    action_dim = 4

    def __init__(self):
        self.calls = []

    def act(self, images, state, task_index, noise):
        self.calls.append((images, state, task_index, noise))
        return torch.zeros(len(state), CHUNK, self.action_dim)


def test_errors_are_the_demonstrations_next_actions_up_to_the_episodes_end(frames):
    rows = probed_rows(frames, 2)
    noise = torch.randn(len(rows), CHUNK, 4)
    errors, compared = chunk_errors(ZeroPolicy(), frames, rows, noise, torch.arange(3), batch_size=3)
    lengths = {e: len(r) for e, r in enumerate(episodes_of(frames.episode_index.tolist()))}
    for i, row in enumerate(rows.tolist()):
        episode = int(frames.episode_index[row])
        frame = row - episodes_of(frames.episode_index.tolist())[episode][0]
        for step in range(CHUNK):
            on = frame + step < lengths[episode]
            assert bool(compared[i, step]) == on
            if on:  # a zero prediction misses the action (e, f, 0, 0) by exactly that
                assert errors[i, step].tolist() == [episode, frame + step, 0, 0]


def test_each_batch_gets_its_rows_own_noise_tasks_and_the_swapped_inputs(frames):
    rows = probed_rows(frames, 1)
    noise = torch.randn(len(rows), CHUNK, 4)
    tasks = torch.tensor([7, 8, 9])  # the dataset's task t is the policy's 7 + t
    swap = counterpart_rows(frames, rows)
    paired = swap >= 0
    policy = ZeroPolicy()
    chunk_errors(policy, frames, rows[paired], noise[paired], tasks, 4, images_from=swap[paired])
    images, state, task, given = (torch.cat(parts) for parts in zip(*policy.calls))
    assert torch.equal(images, frames.images(swap[paired]))  # the counterpart's images,
    assert torch.equal(state, frames.state[rows[paired]])  # the frame's own state
    assert torch.equal(task, 7 + frames.task_index[rows[paired]])
    assert torch.equal(given, noise[paired])
    assert [len(call[1]) for call in policy.calls] == [4, 4, 4, 3]  # task a: 6 + 9 rows with a counterpart
    policy = ZeroPolicy()
    chunk_errors(policy, frames, rows, noise, tasks, 64, state_from=swap.clamp(min=0))
    assert torch.equal(policy.calls[0][1], frames.state[swap.clamp(min=0)])
    assert torch.equal(policy.calls[0][0], frames.images(rows))


def test_a_real_policys_errors_do_not_depend_on_the_batch(tiny_run, tiny_dataset):
    from leanvla.models.checkpoint import load_policy

    policy = load_policy(tiny_run)
    data = ChunkDataset.for_policy(LeRobotDataset(tiny_dataset), policy.meta["model"])
    rows = probed_rows(data, 7)
    noise = torch.randn(len(rows), policy.chunk_size, policy.action_dim)
    tasks = torch.tensor([policy.task_id(t) for t in data.instructions])
    one, compared = chunk_errors(policy, data, rows, noise, tasks, batch_size=1)
    many, _ = chunk_errors(policy, data, rows, noise, tasks, batch_size=16)
    torch.testing.assert_close(many, one, rtol=0, atol=1e-5)
    # batch 1 is exactly Policy.act on that frame with its noise, against its next actions
    row = int(rows[3])
    batch = data.batch(torch.tensor([row]))
    chunk = policy.act(batch.images, batch.state, tasks[batch.task_index], noise=noise[3:4])
    assert torch.equal(one[3], (chunk - batch.actions)[0].abs())
    assert torch.equal(compared[3], batch.action_mask[0].bool())
