r"""A small dataset written by LeRobot's own writer; run by LeRobot's Python, not leanvla's.

    .venv-lerobot/bin/python tools/lerobot_writes.py ROOT [--a-file-each]     # make lerobot installs it

Four episodes (12, 7, 15 and 9 frames at 10 fps; tasks "a", "b", "a", "c") of random images from a
camera LeRobot stores as video (48 x 64, encoded as LeRobot encodes by default: AV1, a keyframe
every 2 frames) and one it stores as PNG (48 x 64 too), a random state, and actions (episode, frame,
0, 0), written through `LeRobotDataset.create`, `add_frame`, `save_episode` and `finalize`, as a
robot's recording script writes them: every episode in one data file and one mp4 a camera, or with
`--a-file-each` in files of their own, two files a chunk (LeRobot rolling over to the next file and
chunk, as it does at video_files_size_in_mb and chunks_size). tests/data/test_lerobot_interop.py
reads it with leanvla and with LeRobot and compares the two; tools/lerobot_edits.py adds episodes to
a dataset as this adds them.
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


def add_episodes(dataset, episodes: list[tuple[int, str]], seed: int) -> None:
    """Episodes of random frames of the dataset's own features, saved one by one as LeRobot's
    recording script saves them; the action at frame f of episode e is (e, f, 0, ...)."""
    from lerobot.datasets.utils import DEFAULT_FEATURES

    rng = np.random.default_rng(seed)
    given = {k: f for k, f in dataset.features.items() if k not in DEFAULT_FEATURES}
    for frames, task in episodes:
        episode = dataset.meta.total_episodes
        for frame in range(frames):
            values = {"task": task}
            for key, feature in given.items():
                shape = tuple(feature["shape"])
                if feature["dtype"] in ("video", "image"):
                    values[key] = rng.integers(0, 256, shape, dtype=np.uint8)
                else:
                    values[key] = rng.normal(size=shape).astype(np.float32)
            values["action"] = np.zeros(given["action"]["shape"], np.float32)
            values["action"][:2] = episode, frame
            dataset.add_frame(values)
        dataset.save_episode()


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[2:] not in ([], ["--a-file-each"]):
        sys.exit(__doc__)
    dataset = lerobot_dataset_class().create("local/written", fps=FPS, features=FEATURES, root=sys.argv[1])
    if sys.argv[2:]:  # files smaller than any episode's
        dataset.meta.update_chunk_settings(
            chunks_size=2, data_files_size_in_mb=1e-6, video_files_size_in_mb=1e-6
        )
    add_episodes(dataset, EPISODES, seed=0)
    dataset.finalize()


if __name__ == "__main__":
    main()
