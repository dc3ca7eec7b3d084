"""Vision encoder: a small conv stem turns each camera image into patch tokens, an optional
transformer refines them, and pixel shuffle merges neighbouring tokens (as SmolVLA does) before a
linear connector projects them into the backbone's width. Optionally one more token per camera
reads all of its tokens at once through a linear map, as the plain CNN baseline reads its features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from leanvla.models.config import VLAConfig
from leanvla.models.layers import Block, RMSNorm


class ConvStem(nn.Module):
    """Patchify, then stride-2 convs: 3 x S x S -> C x S/(p 2^(k-1)) x S/(p 2^(k-1)).

    The first stage is a p x p patch embedding (kernel = stride = p, as a ViT's): on a CPU it costs
    a quarter of a stride-2 5x5 conv at the same output size, and loses no pixel (it is linear).
    """

    def __init__(self, channels: list[int], patch: int):
        super().__init__()
        stages, c_in = [], 3
        for i, c in enumerate(channels):
            conv = (
                nn.Conv2d(c_in, c, patch, stride=patch)
                if i == 0
                else nn.Conv2d(c_in, c, 3, stride=2, padding=1)
            )
            stages += [conv, nn.GroupNorm(min(8, c), c), nn.GELU()]
            c_in = c
        self.net = nn.Sequential(*stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class VisionEncoder(nn.Module):
    def __init__(self, cfg: VLAConfig):
        super().__init__()
        self.cfg = cfg
        dim = cfg.vision_channels[-1]
        grid = cfg.vision_grid()
        self.grid = grid
        self.stem = ConvStem(cfg.vision_channels, cfg.vision_patch)
        self.pos = nn.Parameter(torch.zeros(len(cfg.cameras), grid * grid, dim))
        nn.init.normal_(self.pos, std=0.02)
        head_dim = max(dim // cfg.vision_heads, 8)
        self.layers = nn.ModuleList(
            [
                Block(dim, cfg.vision_heads, cfg.vision_heads, head_dim, int(dim * 2))
                for _ in range(cfg.vision_layers)
            ]
        )
        self.norm = RMSNorm(dim)
        s = cfg.pixel_shuffle
        self.connector = nn.Linear(dim * s * s, cfg.width)
        if cfg.vision_flat_token:
            self.flat = nn.Linear(self.tokens_per_camera * cfg.width, cfg.width)

    @property
    def tokens_per_camera(self) -> int:
        return (self.grid // self.cfg.pixel_shuffle) ** 2

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: B x N_cam x 3 x S x S (normalised floats) -> B x V x width, V = N_cam * tokens
        (+ N_cam flat tokens, one per camera, after all the others)."""
        b, n_cam = images.shape[:2]
        x = self.stem(images.flatten(0, 1))  # (B*N) x C x g x g
        c, g = x.shape[1], x.shape[-1]
        x = x.flatten(2).transpose(1, 2).reshape(b, n_cam, g * g, c) + self.pos  # B x N x g*g x C
        x = x.reshape(b, n_cam * g * g, c)
        for layer in self.layers:
            x, _ = layer(x, None, None)  # learned positions; cameras attend to each other
        x = self.norm(x).reshape(b * n_cam, g, g, c).permute(0, 3, 1, 2)
        s = self.cfg.pixel_shuffle
        x = F.pixel_unshuffle(x, s) if s > 1 else x  # (B*N) x C*s*s x g/s x g/s
        x = x.flatten(2).transpose(1, 2).reshape(b, -1, c * s * s)
        x = self.connector(x)  # B x (N * tokens) x width
        if self.cfg.vision_flat_token:
            flat = self.flat(x.reshape(b, n_cam, -1))  # B x N x width: one token per camera
            x = torch.cat([x, flat], dim=1)
        return x
