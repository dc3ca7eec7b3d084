"""Training-time augmentation of observations.

Random shift (DrQ): pad by `pad` pixels (edge-replicated), crop back. Behaviour cloning from pixels
over-fits to exact pixel positions with a few dozen demonstrations; shifts of a few pixels are the
cheapest known fix. Done with one grid_sample over the batch. State noise and state dropout: see
`state_noise` and `state_dropout`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_shift(images: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """images: B x N x C x H x W float; an independent integer shift in [-pad, pad] per image."""
    if pad <= 0:
        return images
    b, n, c, h, w = images.shape
    x = images.reshape(b * n, c, h, w)
    shift = torch.randint(-pad, pad + 1, (b * n, 2), generator=generator).float()
    # Affine grid in normalised coordinates: a shift of s pixels is 2 s / size.
    theta = torch.zeros(b * n, 2, 3)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = 2.0 * shift[:, 0] / w
    theta[:, 1, 2] = 2.0 * shift[:, 1] / h
    grid = F.affine_grid(theta, (b * n, c, h, w), align_corners=False)
    out = F.grid_sample(x, grid, mode="nearest", padding_mode="border", align_corners=False)
    return out.reshape(b, n, c, h, w)


def state_noise(state: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """state: B x S normalised; adds N(0, std^2) per entry.

    A policy can imitate a demonstration from the proprio state alone (where the hand is says where
    it goes next) while barely reading the images, and then fails at positions the state does not
    encode; blurring the state makes it read them (benchmarks/generalization.py measures this).
    """
    if std <= 0:
        return state
    return state + std * torch.randn(state.shape, generator=generator)


def state_dropout(state: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """state: B x S normalised; each row becomes zeros (the dataset's mean state) with probability p.

    Noise only blurs the state; dropping it whole leaves a sample the images alone can explain, so
    the policy must learn to read them. Evaluation always sees the state.
    """
    if p <= 0:
        return state
    keep = torch.rand(state.shape[0], 1, generator=generator) >= p
    return state * keep
