"""A demonstration's loss: one draw of noise per (seed, episode), evenly spaced frames, the same
gradient whatever the microbatch; collecting leaves the model's trainable flags as it found them."""

from __future__ import annotations

import pytest
import torch

from leanvla.curate.collect import DemoLoss, collect
from leanvla.curate.projection import KroneckerProjector, projected_linears
from leanvla.curate.store import GradientStore, Row
from leanvla.data.normalize import Normalizer
from leanvla.data.reader import LeRobotDataset
from leanvla.data.samples import ChunkDataset
from leanvla.models.checkpoint import load_model
from leanvla.models.layout import VLA_LAYOUT


@pytest.fixture(scope="module")
def parts(tiny_run, tiny_dataset):
    model, meta, stats, _ = load_model(tiny_run)
    cameras, chunk = meta["model"]["cameras"], meta["model"]["chunk_size"]
    dataset = LeRobotDataset(tiny_dataset)
    data = ChunkDataset(dataset, cameras, chunk, None, meta["state_key"], meta["action_key"])
    return model, data, Normalizer(stats, meta["state_key"], meta["action_key"], cameras)


def test_frames_are_spread_over_the_whole_episode(parts):
    model, data, normalizer = parts
    every = DemoLoss(model, data, normalizer, seed=0).rows(1)
    spaced = DemoLoss(model, data, normalizer, seed=0, frames=3).rows(1)
    assert len(every) > 6
    assert spaced[0] == every[0] and spaced[-1] == every[-1]
    assert len(every) // 3 <= spaced[1] - every[0] <= 2 * len(every) // 3


def test_the_loss_and_its_gradient_do_not_depend_on_the_microbatch(parts):
    model, data, normalizer = parts
    losses, grads = [], []
    for batch_size in (64, 3):  # 8 frames in one microbatch, or in three (3 + 3 + 2)
        model.zero_grad(set_to_none=True)
        losses.append(DemoLoss(model, data, normalizer, seed=0, frames=8, batch_size=batch_size).backward(0))
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    model.zero_grad(set_to_none=True)
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-4, atol=1e-7)


def test_each_demonstration_has_its_own_noise_and_the_same_one_every_time(parts, monkeypatch):
    model, data, normalizer = parts
    draws = []
    action_error = model.action_error

    def spy(obs, actions, noise, t):
        draws.append((noise.clone(), t.clone()))
        return action_error(obs, actions, noise, t)

    monkeypatch.setattr(model, "action_error", spy)
    for seed, episode in ((0, 0), (0, 1), (0, 0), (1, 0)):
        DemoLoss(model, data, normalizer, seed=seed, frames=4).backward(episode)
    model.zero_grad(set_to_none=True)
    first, other_episode, again, other_seed = draws
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    for other in (other_episode, other_seed):
        assert not torch.equal(first[0], other[0]) and not torch.equal(first[1], other[1])


def test_collect_leaves_the_trainable_flags_as_it_found_them(parts, tmp_path):
    model, data, normalizer = parts
    frozen = model.expert.action_out.weight
    frozen.requires_grad_(False)
    try:
        before = {n: p.requires_grad for n, p in model.named_parameters()}
        projector = KroneckerProjector(
            projected_linears(VLA_LAYOUT.linear_modules(model, ["backbone"])), k_in=2, k_out=2, seed=0
        )
        store = GradientStore(tmp_path / "gradients", [Row(0, 0, "train")], projector.dim, {})
        collect(store, [0], projector, DemoLoss(model, data, normalizer, seed=0, frames=2))
        assert {n: p.requires_grad for n, p in model.named_parameters()} == before
        assert store.complete and store.phi[0].any()
    finally:
        frozen.requires_grad_(True)
