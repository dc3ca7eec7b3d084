"""An auxiliary objective for the reference VLA: from the backbone's summary of the observation at
t, predict what the robot will see and where its hand will be `horizon` frames later.

    target features = layernorm(mean of the vision encoder's tokens of the frame at t + horizon)
                      (computed by the policy's own encoder, without gradient)
    target state    = normalised proprio state at t + horizon
    error           = MSE(features) + MSE(state), per sample

It costs what such objectives cost: an extra vision forward over the future frames every step,
plus the head. CapVector (`leanvla merge`) exists to pay that price once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AuxiliaryHead(nn.Module):
    def __init__(self, width: int, state_dim: int):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(width, 2 * width), nn.SiLU())
        self.features = nn.Linear(2 * width, width)
        self.state = nn.Linear(2 * width, state_dim)

    def forward(self, summary: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(summary)
        return self.features(h), self.state(h)


def future_rows(rows: torch.Tensor, episode_end: torch.Tensor, horizon: int) -> torch.Tensor:
    """Row `horizon` frames after each row, clamped to the last frame of its episode."""
    return torch.minimum(rows + horizon, episode_end[rows] - 1)


def auxiliary_error(
    head: AuxiliaryHead,
    vision: nn.Module,
    summary: torch.Tensor,
    future_images: torch.Tensor,
    future_state: torch.Tensor,
) -> torch.Tensor:
    """Per-sample error (B,) of predicting the future frame's features and state from `summary`."""
    with torch.no_grad():
        tokens = vision(future_images)
        target = F.layer_norm(tokens.mean(1), tokens.shape[-1:])
    features, state = head(summary)
    return (features - target).pow(2).mean(-1) + (state - future_state).pow(2).mean(-1)
