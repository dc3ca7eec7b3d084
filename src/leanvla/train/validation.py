"""Validation loss on held-out episodes, logged during training as `val_loss`.

The frames, flow noise and flow times are drawn once from their own seeded generator, so every
evaluation measures the same quantity and the training run's random stream is untouched: a run
with validation trains exactly as one without.
"""

from __future__ import annotations

import torch
from torch import nn

from leanvla.data.normalize import Normalizer
from leanvla.data.samples import ChunkDataset
from leanvla.models.policy import Observation


class ValidationSet:
    """The held-out samples, as rows of `data` with their flow noise and times; each batch's
    frames are read and normalised as it is evaluated. Held whole, 1024 samples of one 224 px camera
    raised training's peak memory from 816 MB to 1892 MB (docs/results/validation_memory.md)."""

    def __init__(
        self,
        data: ChunkDataset,
        normalizer: Normalizer,
        tokens: torch.Tensor,
        token_mask: torch.Tensor,
        samples: int,
        seed: int,
        batch_size: int = 64,
    ):
        from leanvla.train.loop import flow_time

        generator = torch.Generator().manual_seed(seed + 7919)  # apart from the training stream
        self.data, self.normalizer, self.tokens, self.token_mask = data, normalizer, tokens, token_mask
        self.rows = data.sample_indices(samples, generator)
        shape = (samples, data.chunk_size, data.actions.shape[1])
        self.noise = torch.randn(shape, generator=generator)
        self.t = flow_time(torch.rand(samples, generator=generator))
        self.batch_size = batch_size

    def batch(self, s: slice) -> tuple[Observation, torch.Tensor, torch.Tensor]:
        """The observations, normalised actions and action mask of the samples `s`."""
        batch = self.data.batch(self.rows[s])
        obs = Observation(
            self.normalizer.images(batch.images),
            self.normalizer.state(batch.state),
            self.tokens[batch.task_index],
            self.token_mask[batch.task_index],
            batch.task_index,
        )
        return obs, self.normalizer.action(batch.actions), batch.action_mask

    @torch.no_grad()
    def loss(self, model: nn.Module) -> float:
        """Mean flow-matching error over the held-out samples (model left in the mode it was in)."""
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        total, count = 0.0, 0.0
        for lo in range(0, len(self.rows), self.batch_size):
            s = slice(lo, lo + self.batch_size)
            obs, actions, mask = self.batch(s)
            err = model.action_error(
                obs.map(lambda x: x.to(device)),
                actions.to(device),
                self.noise[s].to(device),
                self.t[s].to(device),
            )
            mask = mask.to(device)
            total += float((err * mask).sum())
            count += float(mask.sum())
        model.train(was_training)
        return total / max(count, 1.0)
