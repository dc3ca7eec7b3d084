"""Normalisation of states, actions and images with dataset statistics (mean/std), as LeRobot's
MEAN_STD mode. The statistics travel with every checkpoint (`stats.json`), so a policy normalises
at inference exactly as it did in training.
"""

from __future__ import annotations

import numpy as np
import torch

from leanvla.errors import UserError, require

# A feature that never varies (e.g. the gripper in reach) would divide by zero.
MIN_STD = 1e-2


# What the normalizer reads of each feature's statistics.
NORMALIZED = ("mean", "std")


def check_stats(stats: dict[str, dict[str, np.ndarray]], sizes: dict[str, int], where: str) -> None:
    """Each feature's NORMALIZED statistics, `sizes[feature]` finite numbers (a stats.json edited by
    hand gave NaN actions, or a shape error mid-run, or a KeyError)."""
    for key, size in sizes.items():
        require(key in stats, f"{where} has no statistics of '{key}'")
        for name in NORMALIZED:
            require(name in stats[key], f"{where} has no '{name}' of '{key}'")
            values, named = stats[key][name], f"{where}: the {name} of '{key}'"
            require(
                values.dtype.kind in "iuf", f"{named} must be numbers, got {values.reshape(-1)[:4].tolist()}"
            )
            require(
                values.size == size, f"{named} holds {values.size} numbers; the policy's '{key}' has {size}"
            )
            if not np.isfinite(values).all():
                at = int(np.flatnonzero(~np.isfinite(values.reshape(-1)))[0])
                raise UserError(f"{named} holds {values.reshape(-1)[at]} at {at}; it must be finite")


class Normalizer:
    def __init__(self, stats: dict[str, dict], state_key: str, action_key: str, camera_keys: list[str]):
        def vec(key: str, name: str) -> torch.Tensor:
            return torch.as_tensor(np.asarray(stats[key][name], dtype=np.float32)).reshape(-1)

        self.stats = stats
        self.state_mean, self.state_std = vec(state_key, "mean"), vec(state_key, "std").clamp(min=MIN_STD)
        self.action_mean, self.action_std = vec(action_key, "mean"), vec(action_key, "std").clamp(min=MIN_STD)
        # Images: per-camera, per-channel statistics in [0, 1], shaped N_cam x 3 x 1 x 1.
        self.image_mean = torch.stack([vec(k, "mean") for k in camera_keys])[:, :, None, None]
        self.image_std = torch.stack([vec(k, "std") for k in camera_keys]).clamp(min=MIN_STD)[
            :, :, None, None
        ]

    def to(self, device: torch.device) -> Normalizer:
        """The statistics moved to `device`, to normalise tensors there."""
        for name in ("state_mean", "state_std", "action_mean", "action_std", "image_mean", "image_std"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def state(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.state_mean) / self.state_std

    def action(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.action_mean) / self.action_std

    def unaction(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.action_std + self.action_mean

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 B x N_cam x 3 x H x W -> normalised float."""
        return (x.float() / 255.0 - self.image_mean) / self.image_std
