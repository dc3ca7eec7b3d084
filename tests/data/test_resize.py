"""Images of any shape fit the policy's square: by default longer side scaled to it, shorter side
padded evenly with black, nothing cropped; or their centred square kept and scaled. The reader's
batched path gives what one call on every frame does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from leanvla.data.reader import LeRobotDataset
from leanvla.data.resize import fit_square, fit_square_chw, scaled_shape
from tests.data.helpers import dataset_with, synthetic_dataset


def test_the_longer_side_fills_the_square_and_the_shorter_keeps_the_aspect_ratio():
    assert scaled_shape(480, 640, 64) == (48, 64)
    assert scaled_shape(640, 480, 64) == (64, 48)
    assert scaled_shape(16, 16, 8) == (8, 8)
    assert scaled_shape(1, 1000, 8) == (1, 8)  # never less than a pixel


def test_a_wide_image_is_padded_above_and_below_with_black():
    images = np.full((2, 30, 60, 3), 200, np.uint8)  # a constant colour: scaling keeps it exactly
    out = fit_square(images, 20)  # inner 10 x 20, padded 5 above and 5 below
    assert out.shape == (2, 20, 20, 3)
    assert (out[:, 5:15] == 200).all()
    assert (out[:, :5] == 0).all() and (out[:, 15:] == 0).all()


def test_a_tall_image_is_padded_left_and_right_and_keeps_its_left_right_order():
    images = np.zeros((1, 40, 20, 3), np.uint8)
    images[:, :, :10] = 255  # white left half, black right half
    out = fit_square(images, 8)  # inner 8 x 4, padded 2 on each side
    assert (out[0, :, :2] == 0).all() and (out[0, :, 6:] == 0).all()
    assert (out[0, :, 2] == 255).all() and (out[0, :, 5] == 0).all()  # the columns between blend


def test_downscaling_averages_instead_of_skipping_pixels():
    images = np.zeros((1, 64, 64, 1), np.uint8)
    column = np.arange(64) % 8
    images[:, :, (column == 3) | (column == 4)] = 255  # a quarter of each 8-pixel block is white
    out = fit_square(images, 8).astype(int)
    # the block's mean, 64 (71 at the edges, whose kernel is cut); a plain bilinear 8x downscale
    # samples exactly between pixels 3 and 4 of each block: 255 everywhere
    assert (out[..., 1:7, :] == 64).all() and (np.abs(out - 64) <= 7).all()


def test_an_image_of_the_right_size_is_returned_as_it_is():
    images = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    assert fit_square(images, 16) is images


def test_a_crop_at_the_policys_size_is_the_frames_centred_square_exactly():
    images = np.random.default_rng(2).integers(0, 256, (2, 20, 34, 3), dtype=np.uint8)
    assert np.array_equal(fit_square(images, 20, "crop"), images[:, :, 7:27])  # (34 - 20) / 2 = 7
    tall = images.transpose(0, 2, 1, 3)  # 34 x 20
    assert np.array_equal(fit_square(tall, 20, "crop"), tall[:, 7:27])


def test_a_larger_crop_is_scaled_as_its_square_alone_would_be():
    images = np.random.default_rng(3).integers(0, 256, (2, 30, 60, 3), dtype=np.uint8)
    centre = np.ascontiguousarray(images[:, :, 15:45])  # the 30 x 30 square in the middle
    assert np.array_equal(fit_square(images, 16, "crop"), fit_square(centre, 16))
    assert np.array_equal(fit_square(centre, 16, "crop"), fit_square(centre, 16))  # a square: either fit


def test_an_unknown_fit_is_an_error():
    with pytest.raises(ValueError, match="unknown image fit 'stretch'"):
        fit_square(np.zeros((1, 8, 12, 3), np.uint8), 8, "stretch")


@pytest.mark.parametrize("fit", ["pad", "crop"])
def test_frames_channels_first_fit_as_stored_frames_do_whatever_their_memory_layout(fit):
    images = np.random.default_rng(1).integers(0, 256, (5, 20, 30, 3), dtype=np.uint8)
    expected = torch.from_numpy(fit_square(images, 16, fit)).permute(0, 3, 1, 2)
    channels_last = torch.from_numpy(images).permute(0, 3, 1, 2)  # as a camera's frames arrive
    assert torch.equal(fit_square_chw(channels_last, 16, fit), expected)
    assert torch.equal(fit_square_chw(channels_last.contiguous(), 16, fit), expected)
    square = torch.zeros(2, 3, 16, 16, dtype=torch.uint8)
    assert fit_square_chw(square, 16, fit) is square


@pytest.mark.parametrize("batch", [2, 256])
def test_the_reader_scales_a_few_frames_at_a_time_as_one_call_scales_them_all(tmp_path, monkeypatch, batch):
    import leanvla.data.resize

    monkeypatch.setattr(leanvla.data.resize, "BATCH", batch)  # 2: many batches, the last one short
    dataset = LeRobotDataset(synthetic_dataset(tmp_path / "ds", lengths=(3, 4), tasks=("a", "b")))
    full = dataset.read_images("observation.images.cam")
    rows = np.arange(len(full)) % 2 == 0
    scaled = dataset.read_images("observation.images.cam", rows=rows, size=8)
    assert scaled.shape == (int(rows.sum()), 8, 8, 3)
    assert np.array_equal(scaled, fit_square(full[rows], 8))


def test_the_reader_crops_when_asked(tmp_path):
    dataset = LeRobotDataset(dataset_with(tmp_path / "ds", {"cam": (12, 20)}))
    full = dataset.read_images("observation.images.cam")
    cropped = dataset.read_images("observation.images.cam", size=8, fit="crop")
    assert np.array_equal(cropped, fit_square(full, 8, "crop"))
    assert not np.array_equal(cropped, fit_square(full, 8))
