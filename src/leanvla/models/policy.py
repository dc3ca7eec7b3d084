"""The interface between models and the rest of leanvla (training, evaluation, the methods).

A model (the VLA or the plain CNN baseline) implements two calls on normalised inputs:
    action_error(obs, actions, noise, t) -> B x H per-step training error
    predict(obs, noise)                  -> B x H x A normalised action chunk
`Policy` wraps a model with its normaliser and instruction list, so callers pass raw observations
and get actions in the environment's units.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from leanvla.data.normalize import Normalizer


@dataclass
class Observation:
    """A batch of normalised observations, in the form every model accepts."""

    images: torch.Tensor  # B x N_cam x 3 x H x W, normalised
    state: torch.Tensor  # B x S, normalised
    tokens: torch.Tensor  # B x L instruction token ids
    token_mask: torch.Tensor  # B x L bool
    task_index: torch.Tensor  # B, index into the policy's instruction list

    def map(self, fn) -> Observation:
        """This observation with `fn` applied to each of its tensors (to move or slice them)."""
        return Observation(*(fn(getattr(self, field.name)) for field in fields(self)))


class Policy:
    """A model plus what it needs to act: normaliser, instructions, chunking, config."""

    def __init__(self, model: nn.Module, normalizer: Normalizer, meta: dict):
        self.model = model
        self.normalizer = normalizer
        self.meta = meta
        self.instructions: list[str] = meta["instructions"]
        self.cameras: list[str] = meta["model"]["cameras"]
        self.chunk_size: int = meta["model"]["chunk_size"]
        self.n_action_steps: int = meta["model"]["n_action_steps"]
        self.action_dim: int = meta["model"]["action_dim"]
        self._tokens, self._token_mask = model.tokenizer.batch(self.instructions)

    def observation(
        self, images_uint8: torch.Tensor, state: torch.Tensor, task_index: torch.Tensor
    ) -> Observation:
        """Raw batch (uint8 images B x N x 3 x H x W, state B x S, task ids) -> normalised Observation."""
        return Observation(
            images=self.normalizer.images(images_uint8),
            state=self.normalizer.state(state),
            tokens=self._tokens[task_index],
            token_mask=self._token_mask[task_index],
            task_index=task_index,
        )

    def task_id(self, instruction: str) -> int:
        if instruction not in self.instructions:
            from leanvla.errors import UserError

            raise UserError(
                f"the policy was not trained on the instruction '{instruction}' (it knows: {self.instructions})"
            )
        return self.instructions.index(instruction)

    @torch.no_grad()
    def act(
        self,
        images_uint8: torch.Tensor,
        state: torch.Tensor,
        task_index: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Action chunks in environment units: B x H x A."""
        self.model.eval()
        obs = self.observation(images_uint8, state, task_index)
        noise = torch.randn(state.shape[0], self.chunk_size, self.action_dim, generator=generator)
        return self.normalizer.unaction(self.model.predict(obs, noise))
