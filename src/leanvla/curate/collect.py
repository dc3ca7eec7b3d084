"""Collecting one projected gradient per demonstration into the gradient store.

A demonstration's loss is the training loss averaged over its frames (every frame, or an evenly
spaced subset), with noise and flow times drawn from a generator seeded by (seed, episode): the
same demonstration always gives the same phi, whichever process or run computes it. One backward
per demonstration (split into microbatches that accumulate) gives its gradient through the hooks.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from leanvla.curate.projection import KroneckerProjector
from leanvla.curate.store import GradientStore
from leanvla.data.normalize import Normalizer
from leanvla.data.samples import ChunkDataset
from leanvla.models.policy import Observation


class DemoLoss:
    """The deterministic per-demonstration training loss of a model on a ChunkDataset."""

    def __init__(
        self,
        model: nn.Module,
        data: ChunkDataset,
        normalizer: Normalizer,
        seed: int,
        frames: int = 0,
        batch_size: int = 64,
    ):
        self.model, self.data, self.normalizer = model, data, normalizer
        self.seed, self.frames, self.batch_size = seed, frames, batch_size
        self.tokens, self.token_mask = model.tokenizer.batch(data.instructions)
        episode = data.episode_index
        self._rows = {int(e): torch.nonzero(episode == e).flatten() for e in data.episodes}

    def rows(self, episode: int) -> torch.Tensor:
        """The episode's frame rows: all of them, or `frames` evenly spaced ones."""
        rows = self._rows[episode]
        if 0 < self.frames < len(rows):
            rows = rows[torch.linspace(0, len(rows) - 1, self.frames).round().long()]
        return rows

    def backward(self, episode: int) -> float:
        """Backpropagate the episode's mean loss (microbatched); returns the loss."""
        from leanvla.train.loop import flow_time

        rows = self.rows(episode)
        batch = self.data.batch(rows)
        device = next(self.model.parameters()).device
        draw = torch.Generator().manual_seed(self.seed * 1_000_003 + episode)
        noise = torch.randn(batch.actions.shape, generator=draw)
        t = flow_time(torch.rand(len(rows), generator=draw))
        count = batch.action_mask.sum().clamp(min=1)
        total = 0.0
        for lo in range(0, len(rows), self.batch_size):
            s = slice(lo, lo + self.batch_size)
            task = batch.task_index[s]
            obs = Observation(
                self.normalizer.images(batch.images[s]),
                self.normalizer.state(batch.state[s]),
                self.tokens[task],
                self.token_mask[task],
                task,
            )
            obs = obs.map(lambda x: x.to(device))
            actions = self.normalizer.action(batch.actions[s]).to(device)
            err = self.model.action_error(obs, actions, noise[s].to(device), t[s].to(device))
            loss = (err * batch.action_mask[s].to(device)).sum() / count.to(device)
            loss.backward()
            total += float(loss.detach())
        return total


def collect(
    store: GradientStore,
    positions: list[int],
    projector: KroneckerProjector,
    demo_loss: DemoLoss,
    progress: bool = False,
) -> dict[str, float]:
    """Compute and write the store's rows at `positions` (demos of `demo_loss`'s dataset);
    returns timings in seconds: the whole collection and the projection's share of it."""
    from tqdm import tqdm

    model = demo_loss.model
    model.eval()  # no dropout: phi must not depend on a random draw
    projector.projection_s = 0.0
    # Only what phi needs gets a gradient: the projected weights (the hooks switch them on) and the
    # densely projected parameters; the rest of the backward pass is skipped.
    trainable = {p: p.requires_grad for p in model.parameters()}
    dense = {id(p) for p in projector.dense.values()}
    for p in model.parameters():
        p.requires_grad_(id(p) in dense)
    start = time.perf_counter()
    try:
        with projector.hooks(), tqdm(positions, desc="gradients", unit="demo", disable=not progress) as bar:
            for position in bar:
                model.zero_grad(set_to_none=True)
                demo_loss.backward(store.rows[position].episode)
                store.write(position, projector.take())
    finally:
        for p, flag in trainable.items():
            p.requires_grad_(flag)
        model.zero_grad(set_to_none=True)
    return {"collect_s": time.perf_counter() - start, "projection_s": projector.projection_s}
