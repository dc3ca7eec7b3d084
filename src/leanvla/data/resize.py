"""Camera images of any shape to the square a policy takes, two ways.

- pad (the default): the longer side is scaled to the policy's size and the shorter one padded
  evenly with black, as SmolVLA prepares its images: nothing is cropped and the aspect ratio is
  kept, so a 480 x 640 wrist camera shows the policy all it saw.
- crop: the centred square of the frame, scaled to the policy's size, as LeRobot's diffusion policy
  crops: the edges are lost but every pixel of the square shows the scene, which a wide (16:9)
  camera's padding would leave nearly half black.

Scaling is bilinear with antialiasing (a plain bilinear downscale by 10x would skip most pixels).
The same functions serve every command that reads a dataset and `Policy.act`, so a policy trained
on fitted images is fine-tuned, curated, pruned and run on the same ones.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

BATCH = 256  # frames decoded, then scaled, at once: bounds the full-size frames held
# The fits, each as a progress line or a protocol tells it.
FITTED = {"pad": "scaled and padded", "crop": "cropped to their centred square and scaled"}


def scaled_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """The (height, width) an image takes inside a size x size square, its longer side = size."""
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def fit_square(images: np.ndarray, size: int, fit: str = "pad") -> np.ndarray:
    """uint8 frames x H x W x C -> uint8 frames x size x size x C (unchanged when already so)."""
    n, height, width, channels = images.shape
    if (height, width) == (size, size):
        return images
    plan = _plan(height, width, size, fit)
    out = np.zeros((n, size, size, channels), dtype=np.uint8)
    for start in range(0, n, BATCH):
        # uint8 in, channels last (the permuted view): torch's fast path, several times a float copy's
        chunk = torch.from_numpy(images[start : start + BATCH, plan.rows, plan.cols]).permute(0, 3, 1, 2)
        scaled = _scaled(chunk, plan.inner).permute(0, 2, 3, 1)
        out[start : start + BATCH, plan.out_rows, plan.out_cols] = scaled.numpy()
    return out


def fit_square_chw(images: torch.Tensor, size: int, fit: str = "pad") -> torch.Tensor:
    """uint8 frames x C x H x W -> uint8 frames x C x size x size (the same tensor when already so):
    the same pixels as `fit_square`, for frames a policy is given at inference."""
    n, channels, height, width = images.shape
    if (height, width) == (size, size):
        return images
    plan = _plan(height, width, size, fit)
    out = images.new_zeros((n, channels, size, size))
    out[:, :, plan.out_rows, plan.out_cols] = _scaled(images[:, :, plan.rows, plan.cols], plan.inner)
    return out


class _Plan(NamedTuple):
    """The frame's window that is kept, the shape it is scaled to, and where that lands in the square."""

    rows: slice
    cols: slice
    inner: tuple[int, int]
    out_rows: slice
    out_cols: slice


def _plan(height: int, width: int, size: int, fit: str) -> _Plan:
    if fit == "crop":  # the centred square, filling the policy's
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        whole = slice(0, size)
        return _Plan(slice(top, top + side), slice(left, left + side), (size, size), whole, whole)
    if fit != "pad":
        raise ValueError(f"unknown image fit {fit!r}; one of {tuple(FITTED)}")
    inner_h, inner_w = scaled_shape(height, width, size)
    top, left = (size - inner_h) // 2, (size - inner_w) // 2  # centred, padding split evenly
    return _Plan(
        slice(0, height),
        slice(0, width),
        (inner_h, inner_w),
        slice(top, top + inner_h),
        slice(left, left + inner_w),
    )


def _scaled(images: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    if tuple(images.shape[-2:]) == shape:  # a crop already at the policy's size
        return images
    return torch.nn.functional.interpolate(
        images, size=shape, mode="bilinear", antialias=True, align_corners=False
    )
