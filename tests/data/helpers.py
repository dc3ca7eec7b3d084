"""Small LeRobotDatasets written by LeRobotWriter, for tests that need no simulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from leanvla.data.format import image_feature
from leanvla.data.writer import LeRobotWriter


def synthetic_dataset(
    root: Path,
    lengths=(6, 4, 9, 5),
    tasks=("task a", "task b", "task a", "task c"),
    image_size: int = 16,
    seed: int = 0,
) -> Path:
    """Episodes whose action at frame f of episode e is (e, f, 0, 0): chunks are easy to check."""
    rng = np.random.default_rng(seed)
    features = {
        "observation.images.cam": image_feature(image_size, image_size),
        "observation.state": {"dtype": "float32", "shape": [4], "names": None},
        "action": {"dtype": "float32", "shape": [4], "names": None},
    }
    writer = LeRobotWriter(root, fps=10, features=features)
    for e, (length, task) in enumerate(zip(lengths, tasks)):
        action = np.zeros((length, 4), np.float32)
        action[:, 0], action[:, 1] = e, np.arange(length)
        writer.add_episode(
            task,
            {
                "observation.images.cam": rng.integers(
                    0, 256, (length, image_size, image_size, 3), dtype=np.uint8
                ),
                "observation.state": rng.normal(size=(length, 4)).astype(np.float32),
                "action": action,
            },
            extra={"metaworld/positions": [float(e), 0.5]},
        )
    writer.finalize()
    return root


def dataset_with(root: Path, cameras: dict[str, tuple[int, int]], state_dim: int | None = 4) -> Path:
    """Two short episodes of random images from the given cameras (name -> height, width), with a
    state of the given size."""
    features = {f"observation.images.{name}": image_feature(h, w) for name, (h, w) in cameras.items()}
    if state_dim is not None:
        features["observation.state"] = {"dtype": "float32", "shape": [state_dim], "names": None}
    features["action"] = {"dtype": "float32", "shape": [4], "names": None}
    writer = LeRobotWriter(root, fps=10, features=features)
    rng = np.random.default_rng(0)
    for _ in range(2):
        frames = {
            key: rng.integers(0, 256, [5, *f["shape"]]).astype(
                np.uint8 if f["dtype"] == "image" else np.float32
            )
            for key, f in features.items()
        }
        writer.add_episode("task a", frames)
    writer.finalize()
    return root
