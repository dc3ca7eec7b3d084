"""The CNN baseline: one regressed chunk per observation, trained on its squared error."""

from __future__ import annotations

from dataclasses import replace

import torch

from leanvla.models.cnn_policy import CNNConfig, CNNPolicy
from leanvla.models.policy import Observation


def observation(batch: int, cameras: int, seed: int = 0) -> Observation:
    g = torch.Generator().manual_seed(seed)
    return Observation(
        images=torch.randn(batch, cameras, 3, 32, 32, generator=g),
        state=torch.randn(batch, 5, generator=g),
        tokens=torch.zeros(batch, 1, dtype=torch.long),
        token_mask=torch.ones(batch, 1, dtype=torch.bool),
        task_index=torch.arange(batch) % 3,
    )


def test_the_error_is_the_squared_error_of_the_predicted_chunk_per_action_step():
    torch.manual_seed(0)
    cfg = CNNConfig(cameras=["a", "b"], image_size=32, state_dim=5, action_dim=3, chunk_size=6, num_tasks=3)
    model = CNNPolicy(cfg).eval()
    obs = observation(4, cameras=2)
    actions = torch.randn(4, 6, 3)
    chunk = model.predict(obs, noise=torch.randn(4, 6, 3))
    assert chunk.shape == (4, 6, 3)
    error = model.action_error(obs, actions, noise=torch.randn(4, 6, 3), t=torch.rand(4))
    torch.testing.assert_close(error, ((chunk - actions) ** 2).mean(-1))


def test_the_task_and_the_second_camera_reach_the_chunk():
    torch.manual_seed(0)
    model = CNNPolicy(CNNConfig(cameras=["a", "b"], image_size=32, state_dim=5, num_tasks=3)).eval()
    obs = observation(3, cameras=2)
    second_camera_dark = obs.images.index_fill(1, torch.tensor([1]), 0.0)
    for changed in (
        replace(obs, task_index=(obs.task_index + 1) % 3),
        replace(obs, images=second_camera_dark),
    ):
        assert not torch.allclose(model(changed), model(obs))
