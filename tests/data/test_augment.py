from __future__ import annotations

import pytest
import torch

from leanvla.data.augment import random_shift, state_dropout, state_noise


def test_zero_pad_is_identity():
    x = torch.rand(2, 1, 3, 8, 8)
    assert torch.equal(random_shift(x, 0, torch.Generator().manual_seed(0)), x)


def test_shift_moves_content_by_whole_pixels():
    x = torch.arange(64, dtype=torch.float32).reshape(1, 1, 1, 8, 8).repeat(400, 1, 1, 1, 1)
    out = random_shift(x, 2, torch.Generator().manual_seed(0))
    seen = set()
    for img in out[:, 0, 0]:
        # the interior is a translated copy of the original: find the (dx, dy) that explains it
        matches = [
            (dx, dy)
            for dx in range(-2, 3)
            for dy in range(-2, 3)
            if torch.equal(img[2:6, 2:6], x[0, 0, 0, 2 + dy : 6 + dy, 2 + dx : 6 + dx])
        ]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == {(dx, dy) for dx in range(-2, 3) for dy in range(-2, 3)}  # all 25, both extremes


@pytest.mark.parametrize("augment", [state_noise, state_dropout])
def test_zero_state_augmentation_is_identity(augment):
    state = torch.rand(4, 4)
    assert augment(state, 0.0, torch.Generator().manual_seed(0)) is state


def test_state_noise_has_the_given_std_and_follows_the_seed():
    state = torch.rand(4096, 4)
    noisy = state_noise(state, 0.5, torch.Generator().manual_seed(3))
    again = state_noise(state, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(noisy, again)
    added = noisy - state
    assert abs(added.std().item() - 0.5) < 0.02 and abs(added.mean().item()) < 0.02


def test_state_dropout_zeroes_whole_rows_at_the_given_rate():
    state = torch.rand(4096, 4) + 1.0  # no entry is zero before dropout
    out = state_dropout(state, 0.3, torch.Generator().manual_seed(1))
    dropped = (out == 0).all(dim=1)
    kept = (out == state).all(dim=1)
    assert torch.equal(dropped | kept, torch.ones(4096, dtype=torch.bool))  # rows, never single entries
    assert abs(dropped.float().mean().item() - 0.3) < 0.03
    assert torch.equal(out, state_dropout(state, 0.3, torch.Generator().manual_seed(1)))
