"""Normalisation with dataset statistics (LeRobot's MEAN_STD): the formulas, the floor on a feature
that never varies, and actions that come back from the policy's scale exactly."""

from __future__ import annotations

import re

import pytest
import torch

from leanvla.data.normalize import MIN_STD, Normalizer, check_stats
from leanvla.data.stats import stats_from_json
from leanvla.errors import UserError

STATS = {
    "observation.state": {"mean": [1.0, -2.0], "std": [2.0, 0.0]},  # the second never varies
    "action": {"mean": [0.5, 0.0, -1.0], "std": [0.5, 1.0, 4.0]},
    "observation.images.a": {"mean": [[[0.5]], [[0.4]], [[0.3]]], "std": [[[0.2]], [[0.1]], [[0.25]]]},
    "observation.images.b": {"mean": [[[0.1]], [[0.2]], [[0.3]]], "std": [[[0.5]], [[0.5]], [[0.5]]]},
}


def normalizer() -> Normalizer:
    return Normalizer(STATS, "observation.state", "action", ["observation.images.a", "observation.images.b"])


def test_state_is_standardised_with_a_floor_on_a_constant_feature():
    state = torch.tensor([[3.0, -2.5]])
    expected = torch.tensor([[(3.0 - 1.0) / 2.0, (-2.5 + 2.0) / MIN_STD]])
    torch.testing.assert_close(normalizer().state(state), expected)


def test_actions_come_back_from_the_policys_scale():
    n = normalizer()
    actions = torch.tensor([[1.0, -3.0, 7.0], [0.5, 0.0, -1.0]])
    scaled = n.action(actions)
    torch.testing.assert_close(
        scaled, (actions - torch.tensor([0.5, 0.0, -1.0])) / torch.tensor([0.5, 1.0, 4.0])
    )
    assert torch.equal(scaled[1], torch.zeros(3))  # the mean maps to 0
    torch.testing.assert_close(n.unaction(scaled), actions)


def test_images_are_scaled_per_camera_and_channel():
    images = torch.full((1, 2, 3, 4, 4), 255, dtype=torch.uint8)  # white, both cameras
    out = normalizer().images(images)
    assert out.dtype == torch.float32 and out.shape == images.shape
    expected = torch.tensor([[0.5 / 0.2, 0.6 / 0.1, 0.7 / 0.25], [0.9 / 0.5, 0.8 / 0.5, 0.7 / 0.5]])
    torch.testing.assert_close(out[0, :, :, 0, 0], expected)
    assert torch.equal(out[0, :, :, 0, 0, None, None].expand(2, 3, 4, 4), out[0])


SIZES = {"observation.state": 2, "action": 3, "observation.images.a": 3, "observation.images.b": 3}


@pytest.mark.parametrize(
    "feature, name, values, message",
    [
        ("action", "mean", [0.5, 0.0], "holds 2 numbers; the policy's 'action' has 3"),
        (
            "observation.images.b",
            "std",
            [[[0.5]], [[0.5]]],
            "holds 2 numbers; the policy's 'observation.images.b' has 3",
        ),
        ("action", "std", [0.5, float("inf"), 1.0], "holds inf at 1; it must be finite"),
        ("observation.state", "mean", [float("nan"), 0.0], "holds nan at 0; it must be finite"),
        ("action", "mean", ["a", "b", "c"], "must be numbers, got ['a', 'b', 'c']"),
        ("action", "mean", [True, False, True], "must be numbers, got [True, False, True]"),
    ],
)
def test_statistics_the_normalizer_cannot_use_are_one_clear_error(feature, name, values, message):
    check_stats(stats_from_json(STATS), SIZES, "stats.json")  # what it reads, each of its size, passes
    stats = stats_from_json({**STATS, feature: {**STATS[feature], name: values}})
    with pytest.raises(UserError, match=f"^{re.escape(f'stats.json: the {name} of {feature!r} {message}')}$"):
        check_stats(stats, SIZES, "stats.json")


def test_a_feature_or_statistic_the_normalizer_reads_must_be_there():
    stats = stats_from_json(STATS)
    with pytest.raises(UserError, match=r"^stats.json has no statistics of 'observation.images.c'$"):
        check_stats(stats, {**SIZES, "observation.images.c": 3}, "stats.json")
    del stats["action"]["std"]
    with pytest.raises(UserError, match=r"^stats.json has no 'std' of 'action'$"):
        check_stats(stats, SIZES, "stats.json")
