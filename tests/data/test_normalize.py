"""Normalisation with dataset statistics (LeRobot's MEAN_STD): the formulas, the floor on a feature
that never varies, and actions that come back from the policy's scale exactly."""

from __future__ import annotations

import torch

from leanvla.data.normalize import MIN_STD, Normalizer

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
