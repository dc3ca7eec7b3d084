"""Dataset statistics in LeRobot's layout: images in [0, 1] units per channel."""

from __future__ import annotations

import numpy as np
import pytest

from leanvla.data.stats import STAT_NAMES, image_histogram, image_stats, vector_stats


def test_image_statistics_are_per_channel_in_unit_range():
    images = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    images[0, ..., 0] = 255  # channel 0: white in one frame of two; channel 2: white in both
    images[..., 2] = 255
    stats = image_stats(images)
    np.testing.assert_allclose(np.ravel(stats["mean"]), [0.5, 0.0, 1.0])
    np.testing.assert_allclose(np.ravel(stats["std"]), [0.5, 0.0, 0.0])
    np.testing.assert_allclose(np.ravel(stats["max"]), [1.0, 0.0, 1.0])


def every_pixel_stats(images: np.ndarray) -> dict[str, np.ndarray]:
    """The slow reference: a float copy of every pixel, through vector_stats."""
    return vector_stats(images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0)


@pytest.mark.parametrize("seed", range(4))
def test_image_statistics_from_value_counts_equal_those_over_every_pixel(seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (5, 7, 9, 3), dtype=np.uint8)
    images[..., 1] = rng.integers(10, 13, images.shape[:-1])  # few values: quantiles between ranks
    images[..., 2] = 200 + seed  # one value
    stats, reference = image_stats(images), every_pixel_stats(images)
    for name in STAT_NAMES:
        if name != "count":
            assert stats[name].shape == (3, 1, 1), name
            np.testing.assert_allclose(stats[name].ravel(), reference[name], rtol=0, atol=1e-12, err_msg=name)
    assert stats["count"].tolist() == [5]


def test_value_counts_add_up_over_frames_taken_a_few_at_a_time():
    images = np.random.default_rng(0).integers(0, 256, (10, 4, 4, 3), dtype=np.uint8)
    parts = image_histogram(images[:3]) + image_histogram(images[3:])
    assert np.array_equal(parts, image_histogram(images)) and parts.sum() == images.size
