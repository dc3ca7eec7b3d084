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
        self.rows = data.sample_indices(samples, generator)
        batch = data.batch(self.rows)
        self.obs = Observation(
            normalizer.images(batch.images),
            normalizer.state(batch.state),
            tokens[batch.task_index],
            token_mask[batch.task_index],
            batch.task_index,
        )
        self.actions = normalizer.action(batch.actions)
        self.mask = batch.action_mask
        self.noise = torch.randn(self.actions.shape, generator=generator)
        self.t = flow_time(torch.rand(samples, generator=generator))
        self.batch_size = batch_size

    @torch.no_grad()
    def loss(self, model: nn.Module) -> float:
        """Mean flow-matching error over the held-out samples (model left in the mode it was in)."""
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        total, count = 0.0, 0.0
        for lo in range(0, len(self.rows), self.batch_size):
            s = slice(lo, lo + self.batch_size)
            obs = self.obs.map(lambda x, s=s: x[s].to(device))
            err = model.action_error(
                obs, self.actions[s].to(device), self.noise[s].to(device), self.t[s].to(device)
            )
            mask = self.mask[s].to(device)
            total += float((err * mask).sum())
            count += float(mask.sum())
        model.train(was_training)
        return total / max(count, 1.0)
