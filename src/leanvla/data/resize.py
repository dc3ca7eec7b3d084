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
    inner_h, inner_w = scaled_shape(height, width, size)
    top, left = (size - inner_h) // 2, (size - inner_w) // 2
    out = np.zeros((n, size, size, channels), dtype=np.uint8)
    for start in range(0, n, BATCH):
        # uint8 in, channels last (the permuted view): torch's fast path, several times a float copy's
        chunk = torch.from_numpy(images[start : start + BATCH]).permute(0, 3, 1, 2)
        scaled = torch.nn.functional.interpolate(
            chunk, size=(inner_h, inner_w), mode="bilinear", antialias=True, align_corners=False
        )
        out[start : start + BATCH, top : top + inner_h, left : left + inner_w] = scaled.permute(
            0, 2, 3, 1
        ).numpy()
    return out
