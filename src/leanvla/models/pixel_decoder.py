"""The vision stem run backwards: from one summary vector to every camera's image.

    summary (B x width) -> Linear -> N_cam token grids (C_last x g x g each)
                        -> per stem stage, in reverse: GroupNorm, GELU, transposed conv
                           (x2 per stride-2 stage; the patch embedding's p x p last)
                        -> B x N_cam x 3 x S x S

It mirrors `ConvStem` stage for stage (same channels, same strides), as the decoders of
reconstruction and world-model objectives mirror their encoders (`--aux.pixels`). Trained beside
`small`, it makes a step 1.25-1.29x a plain one, where the feature and state targets cost 1.04-1.20x
(docs/RESULTS.md, Merge).
"""

from __future__ import annotations

import torch
from torch import nn


class PixelDecoder(nn.Module):
    def __init__(self, width: int, cameras: int, image_size: int, channels: list[int], patch: int):
        super().__init__()
        self.cameras, self.image_size = cameras, image_size
        self.grid = image_size // (patch * 2 ** (len(channels) - 1))
        self.channels = channels[-1]
        self.inp = nn.Linear(width, cameras * self.channels * self.grid**2)
        stages = []
        for c_in, c_out in zip(channels[:0:-1], channels[-2::-1]):  # stride-2 stages, last first
            stages += [nn.GroupNorm(min(8, c_in), c_in), nn.GELU(), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1)]
        c = channels[0]
        stages += [nn.GroupNorm(min(8, c), c), nn.GELU(), nn.ConvTranspose2d(c, 3, patch, stride=patch)]
        self.net = nn.Sequential(*stages)

    def forward(self, summary: torch.Tensor) -> torch.Tensor:
        """B x width -> B x N_cam x 3 x S x S, in the normalised pixel units the encoder reads."""
        b = summary.shape[0]
        grids = self.inp(summary).view(b * self.cameras, self.channels, self.grid, self.grid)
        return self.net(grids).view(b, self.cameras, 3, self.image_size, self.image_size)
