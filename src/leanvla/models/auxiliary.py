"""An auxiliary objective for the reference VLA: from the backbone's summary of the observation at
t, predict what the robot will see and where its hand will be `horizon` frames later.

    target features = layernorm(mean of the vision encoder's tokens of the frame at t + horizon)
                      (computed by the policy's own encoder, without gradient)
    target state    = normalised proprio state at t + horizon
    error           = MSE(features) + MSE(state), per sample

Its price is an extra vision forward over the future frames every step, plus the head. CapVector
(`leanvla merge`) exists to pay such prices once.

With `--aux.env-state` the head also predicts the environment state at t (the dataset's
`observation.environment_state`: in Meta-World the objects' and the goal's poses), standardised:

    error          += MSE(environment state)

The proprio state says where the hand is; only the images say where the object is. The reference
VLA leans on the proprio state and barely reads the images (docs/RESULTS.md, "Why the VLA lags the
CNN"): this target makes the backbone's summary carry what the images show. It needs a dataset that
recorded the simulator's state (`leanvla data metaworld` writes it), and costs one Linear.

With `--aux.pixels` the head also decodes the future frame itself, every camera, pixel by pixel
(a `PixelDecoder`: the vision stem mirrored), as world-model and reconstruction objectives do:

    error          += MSE(future images, in the encoder's normalised units)

The feature and state targets cost little on the reference VLA (1.04-1.20x a plain step, measured
in docs/RESULTS.md, Merge): its vision encoder is small. Decoding pixels adds a trained decoder
as large as the encoder, the kind of price reconstruction objectives pay (measured there too).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from leanvla.models.pixel_decoder import PixelDecoder


class AuxiliaryPrediction(NamedTuple):
    features: torch.Tensor  # B x width
    state: torch.Tensor  # B x state_dim
    env: torch.Tensor | None  # B x env_dim, when the head predicts the environment state
    pixels: torch.Tensor | None  # B x N_cam x 3 x S x S, when the head decodes the future frame


class AuxiliaryHead(nn.Module):
    def __init__(self, width: int, state_dim: int, env_dim: int = 0, pixels: PixelDecoder | None = None):
        super().__init__()
        self.env_dim = env_dim
        self.trunk = nn.Sequential(nn.Linear(width, 2 * width), nn.SiLU())
        self.features = nn.Linear(2 * width, width)
        self.state = nn.Linear(2 * width, state_dim)
        if env_dim > 0:
            self.env = nn.Linear(2 * width, env_dim)
        self.pixels = pixels  # reads the summary itself: the trunk is the small outputs' bottleneck

    def forward(self, summary: torch.Tensor) -> AuxiliaryPrediction:
        h = self.trunk(summary)
        return AuxiliaryPrediction(
            self.features(h),
            self.state(h),
            self.env(h) if self.env_dim > 0 else None,
            self.pixels(summary) if self.pixels is not None else None,
        )


def per_sample_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per sample (B,), over every dimension after the first."""
    return (prediction - target).pow(2).flatten(1).mean(1)


def future_rows(rows: torch.Tensor, episode_end: torch.Tensor, horizon: int) -> torch.Tensor:
    """Row `horizon` frames after each row, clamped to the last frame of its episode."""
    return torch.minimum(rows + horizon, episode_end[rows] - 1)


def standardised_environment_state(env_state: torch.Tensor) -> torch.Tensor:
    """Each dimension to zero mean and unit variance over the training frames; a constant
    dimension (an absent second object, say) becomes all zeros rather than a division by zero."""
    std = env_state.std(0)
    return (env_state - env_state.mean(0)) / torch.where(std > 1e-6, std, torch.ones_like(std))


def auxiliary_terms(
    head: AuxiliaryHead,
    vision: nn.Module,
    summary: torch.Tensor,
    future_images: torch.Tensor,
    future_state: torch.Tensor,
    env_state: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Per-sample errors (B,) by target, whose sum is the auxiliary error: the future frame's
    features and state from `summary`, the present environment state when the head has that
    output ("env"), and the future frame's pixels when it decodes them ("pixels")."""
    with torch.no_grad():
        tokens = vision(future_images)
        target = F.layer_norm(tokens.mean(1), tokens.shape[-1:])
    predicted = head(summary)
    terms = {
        "features": per_sample_mse(predicted.features, target),
        "state": per_sample_mse(predicted.state, future_state),
    }
    if predicted.env is not None:
        terms["env"] = per_sample_mse(predicted.env, env_state)
    if predicted.pixels is not None:
        terms["pixels"] = per_sample_mse(predicted.pixels, future_images)
    return terms
