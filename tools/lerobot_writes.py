r"""A small dataset written by LeRobot's own writer; run by LeRobot's Python, not leanvla's.

    .venv-lerobot/bin/python tools/lerobot_writes.py ROOT     # make lerobot installs it

Four episodes (12, 7, 15 and 9 frames at 10 fps; tasks "a", "b", "a", "c") of random images from a
camera LeRobot stores as video (48 x 64, encoded as LeRobot encodes by default: AV1, a keyframe
every 2 frames) and one it stores as PNG (48 x 64 too), a random state, and actions (episode, frame, 0,
0), written through `LeRobotDataset.create`, `add_frame`, `save_episode` and `finalize`, as a
robot's recording script writes them. tests/data/test_lerobot_interop.py reads it with leanvla and
with LeRobot and compares the two.
"""

from __future__ import annotations

import sys

import numpy as np
from lerobot_reads import lerobot_dataset_class

FPS = 10
EPISODES = [(12, "a"), (7, "b"), (15, "a"), (9, "c")]  # (frames, task)
FEATURES = {
    "observation.images.cam": {
        "dtype": "video",
        "shape": (48, 64, 3),
        "names": ["height", "width", "channels"],
    },
    "observation.images.wrist": {
        "dtype": "image",
        "shape": (48, 64, 3),
        "names": ["height", "width", "channels"],
    },
    "observation.state": {"dtype": "float32", "shape": (4,), "names": None},
    "action": {"dtype": "float32", "shape": (4,), "names": None},
}


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    dataset = lerobot_dataset_class().create("local/written", fps=FPS, features=FEATURES, root=sys.argv[1])
    rng = np.random.default_rng(0)
    for episode, (frames, task) in enumerate(EPISODES):
        for frame in range(frames):
            dataset.add_frame(
                {
                    "observation.images.cam": rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
                    "observation.images.wrist": rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
                    "observation.state": rng.normal(size=4).astype(np.float32),
                    "action": np.array([episode, frame, 0, 0], np.float32),
                    "task": task,
                }
            )
        dataset.save_episode()
    dataset.finalize()


if __name__ == "__main__":
    main()
