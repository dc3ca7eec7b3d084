"""(observation at t, action chunk t..t+H-1, padding mask), task-balanced sampling, subsets."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from leanvla.data.episode_selection import read_episode_selection
from leanvla.data.reader import LeRobotDataset
from leanvla.data.samples import ChunkDataset
from leanvla.errors import UserError
from tests.data.helpers import dataset_with, edit_frames, synthetic_dataset, without_frames


@pytest.fixture
def ds(data):
    return LeRobotDataset(data)


def reference_chunk(actions_by_episode, episode, frame, horizon):
    """Slow reference: walk the episode, repeating its last action past the end."""
    acts = actions_by_episode[episode]
    chunk, mask = [], []
    for k in range(horizon):
        chunk.append(acts[min(frame + k, len(acts) - 1)])
        mask.append(1.0 if frame + k < len(acts) else 0.0)
    return np.stack(chunk), np.array(mask)


def test_chunks_match_reference_with_padding_mask(ds):
    data = ChunkDataset(ds, ["observation.images.cam"], chunk_size=5)
    actions = ds.read_array("action")
    episode = ds.read_array("episode_index")
    by_ep = {e: actions[episode == e] for e in np.unique(episode)}
    rows = torch.arange(len(data))
    batch = data.batch(rows)
    frame_index = ds.read_array("frame_index")
    for r in range(len(data)):
        chunk, mask = reference_chunk(by_ep, int(episode[r]), int(frame_index[r]), 5)
        assert np.array_equal(batch.actions[r].numpy(), chunk)
        assert np.array_equal(batch.action_mask[r].numpy(), mask)
    assert batch.images.shape == (len(data), 1, 3, 16, 16) and batch.images.dtype == torch.uint8
    # the observation is frame t itself
    assert np.array_equal(batch.state.numpy(), ds.read_array("observation.state"))


def test_task_balanced_sampling(ds):
    data = ChunkDataset(ds, ["observation.images.cam"], chunk_size=3)
    g = torch.Generator().manual_seed(0)
    rows = data.sample_indices(30000, g)
    counts = torch.bincount(data.task_index[rows], minlength=3).float() / 30000
    # tasks have 15, 4 and 5 frames, yet each is drawn a third of the time
    assert torch.allclose(counts, torch.full((3,), 1 / 3), atol=0.015)
    frames = torch.bincount(rows, minlength=len(data))
    task_b = (data.task_index == 1).nonzero().flatten()
    assert frames[task_b].min() > 0.8 * frames[task_b].max()  # uniform within a task


def test_episode_subset(ds, tmp_path):
    sel = tmp_path / "sel.json"
    sel.write_text(json.dumps({"episodes": [2, 0]}))
    episodes = read_episode_selection(sel, ds.num_episodes)
    data = ChunkDataset(ds, ["observation.images.cam"], chunk_size=4, episodes=episodes)
    assert data.episodes == [0, 2]
    assert len(data) == 6 + 9
    assert set(data.actions[:, 0].tolist()) == {0.0, 2.0}
    # chunks of episode 0 stop at its end, not in episode 2
    last_of_ep0 = data.batch(torch.tensor([5]))
    assert last_of_ep0.action_mask[0].tolist() == [1, 0, 0, 0]
    assert last_of_ep0.actions[0, :, 0].tolist() == [0, 0, 0, 0]


def test_stats_are_those_of_the_selected_frames(ds):
    data = ChunkDataset(ds, ["observation.images.cam"], chunk_size=2, episodes=[1, 3])
    stats = data.stats()
    assert np.allclose(stats["action"]["mean"], data.actions.numpy().mean(0))
    assert stats["observation.images.cam"]["mean"].shape == (3, 1, 1)


def test_image_stats_taken_a_few_frames_at_a_time_are_those_of_every_selected_frame(tmp_path):
    from leanvla.data.stats import image_stats

    dataset = LeRobotDataset(synthetic_dataset(tmp_path / "ds", lengths=(50, 40, 30), tasks=("a", "b", "a")))
    data = ChunkDataset(dataset, ["observation.images.cam"], chunk_size=2, episodes=[0, 2])
    images = dataset.read_images("observation.images.cam")[np.r_[0:50, 90:120]]  # more than one batch
    expected, stats = image_stats(images), data.stats()["observation.images.cam"]
    for name, value in expected.items():
        np.testing.assert_allclose(stats[name], value, rtol=0, atol=1e-12, err_msg=name)


def test_missing_camera_is_a_user_error(ds):
    with pytest.raises(UserError, match="feature 'observation.images.nope' is missing"):
        ChunkDataset(ds, ["observation.images.nope"], chunk_size=2)


def test_cameras_of_two_shapes_need_a_size_to_fit_them_to(tmp_path):
    dataset = LeRobotDataset(dataset_with(tmp_path / "ds", {"top": (16, 16), "wrist": (8, 8)}))
    cameras = ["observation.images.top", "observation.images.wrist"]
    with pytest.raises(UserError, match=r"cameras .* hold images of 2 shapes; give the size to fit them to"):
        ChunkDataset(dataset, cameras, 4)
    assert ChunkDataset(dataset, cameras, 4, image_size=8).image_size == (8, 8)


def test_a_policy_reads_its_cameras_fitted_as_trained_and_a_validation_set_reads_them_so_too(tmp_path):
    from leanvla.data.resize import fit_square

    dataset = LeRobotDataset(dataset_with(tmp_path / "ds", {"top": (12, 20)}))
    model = dict(cameras=["observation.images.top"], chunk_size=3, image_size=8, image_fit="crop")
    data = ChunkDataset.for_policy(dataset, model, episodes=[0])
    cropped = torch.from_numpy(fit_square(dataset.read_images("observation.images.top"), 8, "crop"))
    rows = data.episode_index.numel()
    assert (data.cameras, data.chunk_size, data.image_fit) == (model["cameras"], 3, "crop")
    assert torch.equal(data.images(range(rows))[:, 0], cropped[:rows].permute(0, 3, 1, 2))

    held_out = data.like(dataset, episodes=[1])
    assert (held_out.cameras, held_out.chunk_size, held_out.image_fit) == (model["cameras"], 3, "crop")
    assert held_out.episodes == [1]
    assert torch.equal(held_out.images(range(len(held_out)))[:, 0], cropped[rows:].permute(0, 3, 1, 2))


def recorded_with(root, glitches: dict[tuple[str, int, int, int], float]):
    """Four episodes of 5 frames; glitches: (feature, episode, frame, dimension) -> value, put into
    the data file after writing (LeRobotWriter refuses them; a recording written by other tools,
    LeRobot's among them, may hold them)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from leanvla.data.format import image_feature
    from leanvla.data.writer import LeRobotWriter

    vector = {"dtype": "float32", "shape": [3], "names": None}
    features = {"observation.images.cam": image_feature(8, 8), "observation.state": vector, "action": vector}
    writer = LeRobotWriter(root, fps=10, features=features)
    for _ in range(4):
        frames = {key: np.zeros((5, 3), np.float32) for key in ("observation.state", "action")}
        writer.add_episode("task a", {**frames, "observation.images.cam": np.zeros((5, 8, 8, 3), np.uint8)})
    writer.finalize()
    (path,) = (root / "data").rglob("*.parquet")
    table = pq.read_table(path)
    for key in {key for key, *_ in glitches}:
        values = np.stack(table.column(key).to_pylist()).astype(np.float32)
        for (glitched, episode, frame, dim), value in glitches.items():
            if glitched == key:
                values[episode * 5 + frame, dim] = value
        column = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), 3)
        table = table.set_column(table.column_names.index(key), table.schema.field(key), column)
    pq.write_table(table, path)
    return LeRobotDataset(root)


def test_a_nan_or_infinity_in_the_state_or_actions_is_refused_where_it_is(tmp_path):
    ds = recorded_with(tmp_path / "one", {("action", 2, 3, 1): np.nan})
    message = (
        f"{ds.root}: 'action' is nan in episode 2, frame 3, dimension 1 (1 such value, in episode 2): "
        "leave it out with --episodes (a JSON list of the others), or repair the recording"
    )
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        ChunkDataset(ds, ["observation.images.cam"], chunk_size=4)
    assert len(ChunkDataset(ds, ["observation.images.cam"], chunk_size=4, episodes=[0, 1, 3])) == 15
    glitches = {("observation.state", 3, 4, 0): -np.inf, ("observation.state", 1, 0, 2): np.inf}
    glitches[("observation.state", 1, 2, 2)] = np.nan
    ds = recorded_with(tmp_path / "two", glitches)
    with pytest.raises(
        UserError,
        match=re.escape(
            "'observation.state' is inf in episode 1, frame 0, dimension 2 (3 such values, in episodes 1, 3): leave them out"
        ),
    ):
        ChunkDataset(ds, ["observation.images.cam"], chunk_size=4)


def test_episodes_of_no_frames_add_nothing_and_alone_are_refused_in_one_line(tmp_path):
    dataset = LeRobotDataset(without_frames(synthetic_dataset(tmp_path / "one"), [1]))
    assert ChunkDataset(dataset, ["observation.images.cam"], 4, episodes=[0, 1, 2]).episodes == [0, 2]
    with pytest.raises(UserError) as refused:
        ChunkDataset(dataset, ["observation.images.cam"], 4, episodes=[1])
    assert str(refused.value) == (
        f"{dataset.root}: episode 1 has no frames (length 0 in the metadata): nothing to read; "
        "select episodes that have frames"
    )
    empty = LeRobotDataset(without_frames(synthetic_dataset(tmp_path / "all"), [0, 1, 2, 3]))
    with pytest.raises(UserError) as refused:
        ChunkDataset(empty, ["observation.images.cam"], 4)
    assert str(refused.value) == (
        f"{empty.root}: episodes 0, 1, 2, 3 have no frames (length 0 in the metadata): nothing to read"
    )


@pytest.mark.parametrize(
    "column, message",
    [
        ("task_index", "frame 2 of episode 1 has task_index 3, but meta/tasks.parquet lists 3 tasks (0..2)"),
        ("episode_index", "frame 2 of episode 1 has episode_index 3 in its data file (1 such frame)"),
    ],
)
def test_frames_of_an_episode_or_task_the_metadata_does_not_know_are_refused(tmp_path, column, message):
    root = synthetic_dataset(tmp_path / "ds")  # episodes of 6, 4, 9 and 5 frames, of 3 tasks, in one file
    # episode 1's frame 2: a task, or an episode, out of place
    edit_frames(root, column, lambda values: [*values[: 6 + 2], 3, *values[6 + 3 :]])
    with pytest.raises(UserError, match=re.escape(message)):
        ChunkDataset(LeRobotDataset(root), ["observation.images.cam"], chunk_size=4)
