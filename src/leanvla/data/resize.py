"""Camera images of any shape to the square a policy takes.

The longer side is scaled to the policy's size and the shorter one padded evenly with black, as
SmolVLA prepares its images: nothing is cropped and the aspect ratio is kept, so a 480 x 640 wrist
camera shows the policy all it saw. Scaling is bilinear with antialiasing (a plain bilinear
downscale by 10x would skip most pixels). The same function serves every command that reads a
dataset, so a policy trained on resized images is fine-tuned, curated and pruned on the same ones.
"""

from __future__ import annotations

import numpy as np
import torch

BATCH = 256  # frames decoded, then scaled, at once: bounds the full-size frames held


def scaled_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """The (height, width) an image takes inside a size x size square, its longer side = size."""
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def fit_square(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 frames x H x W x C -> uint8 frames x size x size x C (unchanged when already so)."""
    n, height, width, channels = images.shape
    if (height, width) == (size, size):
        return images
    (top, left), (inner_h, inner_w) = _placement(height, width, size)
    out = np.zeros((n, size, size, channels), dtype=np.uint8)
    for start in range(0, n, BATCH):
        # uint8 in, channels last (the permuted view): torch's fast path, several times a float copy's
        chunk = torch.from_numpy(images[start : start + BATCH]).permute(0, 3, 1, 2)
        scaled = _scaled(chunk, inner_h, inner_w).permute(0, 2, 3, 1)
        out[start : start + BATCH, top : top + inner_h, left : left + inner_w] = scaled.numpy()
    return out


def fit_square_chw(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 frames x C x H x W -> uint8 frames x C x size x size (the same tensor when already so):
    the same pixels as `fit_square`, for frames a policy is given at inference."""
    n, channels, height, width = images.shape
    if (height, width) == (size, size):
        return images
    (top, left), (inner_h, inner_w) = _placement(height, width, size)
    out = images.new_zeros((n, channels, size, size))
    out[:, :, top : top + inner_h, left : left + inner_w] = _scaled(images, inner_h, inner_w)
    return out


def _placement(height: int, width: int, size: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, left), (height, width)) of the scaled image inside the square: centred, padding split evenly."""
    inner_h, inner_w = scaled_shape(height, width, size)
    return ((size - inner_h) // 2, (size - inner_w) // 2), (inner_h, inner_w)


def _scaled(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return torch.nn.functional.interpolate(
        images, size=(height, width), mode="bilinear", antialias=True, align_corners=False
    )
