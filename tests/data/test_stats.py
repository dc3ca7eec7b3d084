"""Dataset statistics in LeRobot's layout: images in [0, 1] units per channel."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest

from leanvla.data import stats as stats_module
from leanvla.data.stats import STAT_NAMES, image_histogram, image_stats, pixel_value_counts, vector_stats


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


def each_channel_alone(images: np.ndarray) -> np.ndarray:
    """The slow reference: np.bincount over each channel's values."""
    flat = images.reshape(-1, images.shape[-1])
    return np.stack([np.bincount(flat[:, c], minlength=256) for c in range(flat.shape[1])])


SHAPES = [(3, 5, 7, 3), (2, 3, 3, 1), (1, 5, 5, 4), (4, 6, 6, 3), (1, 1, 1, 3), (0, 4, 4, 3)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: "x".join(map(str, shape)))
@pytest.mark.parametrize("paired_from", [0, 1 << 30], ids=["two bytes at a time", "each channel alone"])
@pytest.mark.parametrize("words_at_once", [1, 7, stats_module.WORDS_AT_ONCE])
def test_pixel_values_counted_two_bytes_at_a_time_are_those_of_each_channel(
    shape, paired_from, words_at_once, monkeypatch
):
    # Odd sizes leave bytes past the last whole period of channel pairs; one and four channels
    # pair a channel with itself, or two pairs a pixel. Seven words at once leave a part.
    monkeypatch.setattr(stats_module, "PAIRED_BYTES", paired_from)
    monkeypatch.setattr(stats_module, "WORDS_AT_ONCE", words_at_once)
    images = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    images.reshape(-1)[:5] = 255  # the top value, in the low and the high byte of a word
    assert np.array_equal(pixel_value_counts(images), each_channel_alone(images))
    assert np.array_equal(pixel_value_counts(images[:, ::2]), each_channel_alone(images[:, ::2]))  # a view


@pytest.mark.parametrize("threads", [2, 3, 8])
def test_pixel_values_counted_on_many_threads_are_those_of_one(threads, monkeypatch):
    monkeypatch.setattr(stats_module, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(stats_module, "PAIRED_BYTES", 0)
    monkeypatch.setattr(stats_module, "cores_per_process", lambda: threads)
    images = np.random.default_rng(2).integers(0, 256, (5, 6, 7, 3), dtype=np.uint8)  # fewer frames than 8
    assert np.array_equal(image_histogram(images), each_channel_alone(images))


def test_only_uint8_pixels_are_counted():
    with pytest.raises(TypeError, match="counts uint8 pixels, not uint16"):
        image_histogram(np.zeros((1, 2, 2, 3), dtype=np.uint16))


def count_in_child(images: np.ndarray, results) -> None:
    results.put(image_histogram(images))


def test_a_forked_process_counts_on_threads_of_its_own(monkeypatch):
    # The parent's counting threads are not in a forked child: there, work handed to them would
    # wait for ever.
    monkeypatch.setattr(stats_module, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(stats_module, "cores_per_process", lambda: 2)
    images = np.random.default_rng(3).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    expected = image_histogram(images)  # the parent's threads started
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=count_in_child, args=(images, results))
    child.start()
    try:
        assert np.array_equal(results.get(timeout=30), expected)
    finally:
        child.join(timeout=5)
        child.kill()
