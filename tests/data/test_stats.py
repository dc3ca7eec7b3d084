"""Dataset statistics in LeRobot's layout: images in [0, 1] units per channel."""

from __future__ import annotations

import numpy as np

from leanvla.data.stats import image_stats


def test_image_statistics_are_per_channel_in_unit_range():
    images = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    images[0, ..., 0] = 255  # channel 0: white in one frame of two; channel 2: white in both
    images[..., 2] = 255
    stats = image_stats(images)
    np.testing.assert_allclose(np.ravel(stats["mean"]), [0.5, 0.0, 1.0])
    np.testing.assert_allclose(np.ravel(stats["std"]), [0.5, 0.0, 0.0])
    np.testing.assert_allclose(np.ravel(stats["max"]), [1.0, 0.0, 1.0])
