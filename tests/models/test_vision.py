"""The vision encoder: its learned positions enter every patch token; samples do not mix."""

from __future__ import annotations

import torch

from leanvla.models.config import vla_config
from leanvla.models.vision import VisionEncoder


def test_learned_positions_enter_the_patch_tokens():
    torch.manual_seed(0)
    cfg = vla_config("tiny", cameras=["observation.images.a", "observation.images.b"], image_size=32)
    encoder = VisionEncoder(cfg).eval()
    images = torch.randn(2, 2, 3, 32, 32)
    with torch.no_grad():
        placed = encoder(images)
        encoder.pos.zero_()
        unplaced = encoder(images)
    moved = (placed - unplaced).abs().amax(-1)  # per token
    assert (moved > 1e-4).all()  # every output token carries its position


def test_each_sample_is_encoded_from_its_own_cameras():
    torch.manual_seed(0)
    cfg = vla_config("tiny", cameras=["observation.images.a", "observation.images.b"], image_size=32)
    encoder = VisionEncoder(cfg).eval()
    images = torch.randn(3, 2, 3, 32, 32)  # 3 samples x 2 cameras
    with torch.no_grad():
        together = encoder(images)
        alone = torch.cat([encoder(images[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
