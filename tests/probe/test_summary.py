"""A probe's errors reduced per chunk step, action dimension and swap, against explicit loops."""

from __future__ import annotations

import math

import pytest
import torch

from leanvla.probe.summary import reduce_errors, summarise


def errors_and_mask(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    errors = torch.rand(5, 4, 3, generator=generator)
    compared = torch.ones(5, 4, dtype=torch.bool)
    compared[1, 3:] = compared[2, 1:] = False  # episodes that end within the chunk
    compared[:, 3] = False  # no frame's demonstration goes on four steps
    return errors, compared


def slow_mean(errors, compared, frames, steps, dims) -> float:
    values = [float(errors[f, s, d]) for f in frames for s in steps for d in dims if compared[f, s]]
    return sum(values) / len(values) if values else math.nan


def test_each_mean_counts_only_the_steps_a_demonstration_took():
    errors, compared = errors_and_mask()
    found = reduce_errors(errors, compared, executed=2)
    frames, dims = range(5), range(3)
    assert found["frames"] == 5
    assert found["first_action"] == pytest.approx(float(errors[:, 0].mean()), abs=1e-6)
    assert found["executed"] == pytest.approx(slow_mean(errors, compared, frames, range(2), dims), abs=1e-6)
    for step, value in enumerate(found["by_step"]):
        expected = slow_mean(errors, compared, frames, [step], dims)
        assert value is None if math.isnan(expected) else value == pytest.approx(expected, abs=1e-6)
    assert found["by_step"][3] is None
    for dim, value in enumerate(found["by_dimension"]):
        assert value == pytest.approx(slow_mean(errors, compared, frames, range(2), [dim]), abs=1e-6)


def test_swaps_are_compared_with_the_same_frames_own_error():
    errors, compared = errors_and_mask()
    paired = torch.tensor([True, False, True, True, False])
    images = (errors[paired] * 2, compared[paired])
    state = (errors[paired] + 1, compared[paired])
    found = summarise((errors, compared), {"images": images, "state": state}, paired, executed=2)
    own = slow_mean(errors, compared, [0, 2, 3], range(2), range(3))
    assert found["swapped"]["frames"] == 3
    assert found["swapped"]["as_recorded"] == pytest.approx(own, abs=1e-6)
    assert found["swapped"]["images"] == pytest.approx(2 * own, abs=1e-6)
    assert found["swapped"]["state"] == pytest.approx(own + 1, abs=1e-6)
    assert found["executed"] == pytest.approx(
        slow_mean(errors, compared, range(5), range(2), range(3)), abs=1e-6
    )


def test_a_group_without_counterparts_reports_no_swap():
    errors, compared = errors_and_mask()
    nothing = torch.zeros(5, dtype=torch.bool)
    empty = (errors[nothing], compared[nothing])
    found = summarise((errors, compared), {"images": empty, "state": empty}, nothing, executed=2)
    assert found["swapped"] == {"frames": 0}
