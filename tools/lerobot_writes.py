r"""Datasets written by LeRobot's own writer; run by LeRobot's Python, not leanvla's.

    .venv-lerobot/bin/python tools/lerobot_writes.py ROOT [--a-file-each]  # make lerobot installs it
    .venv-lerobot/bin/python tools/lerobot_writes.py ROOT [ROOT ...] --append

A new dataset at ROOT: four episodes (12, 7, 15 and 9 frames at 10 fps; tasks "a", "b", "a", "c")
of random images from a camera LeRobot stores as video (48 x 64, encoded as LeRobot encodes by
default: AV1, a keyframe every 2 frames) and one it stores as PNG (48 x 64 too), a random state,
and actions (episode, frame, 0, 0), written through `LeRobotDataset.create`, `add_frame`,
`save_episode` and `finalize`, as a robot's recording script writes them: every episode in one
data file and one mp4 a camera, or with `--a-file-each` in files of their own, two files a chunk
(LeRobot rolling over to the next file and chunk, as it does at video_files_size_in_mb and
chunks_size).

With `--append`, each dataset already at a ROOT (leanvla wrote it) is opened as `lerobot-record
--resume` opens it, and two episodes are added to it (5 and 6 frames; tasks "task b" and "a task
LeRobot added"): random frames of its own features, actions (episode, frame, 0, ...) as before.
tests/data/test_lerobot_interop.py reads both with leanvla and with LeRobot and compares the two.
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
APPENDED = [(5, "task b"), (6, "a task LeRobot added")]  # task b: one synthetic_dataset has


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
    roots = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
    options = [arg for arg in sys.argv[1:] if arg.startswith("--")]
    appending = options == ["--append"]
    if (
        not roots
        or options not in ([], ["--a-file-each"], ["--append"])
        or (len(roots) > 1 and not appending)
    ):
        sys.exit(__doc__)
    LeRobotDataset = lerobot_dataset_class()
    if appending:  # several in one run: LeRobot takes seconds to import
        for root in roots:
            dataset = LeRobotDataset("local/appended", root=root)
            dataset.start_image_writer(num_processes=0, num_threads=2)  # as lerobot-record --resume does
            add_episodes(dataset, APPENDED, seed=1)
            dataset.finalize()
        return
    dataset = LeRobotDataset.create("local/written", fps=FPS, features=FEATURES, root=roots[0])
    if options:  # files smaller than any episode's
        dataset.meta.update_chunk_settings(
            chunks_size=2, data_files_size_in_mb=1e-6, video_files_size_in_mb=1e-6
        )
    add_episodes(dataset, EPISODES, seed=0)
    dataset.finalize()


if __name__ == "__main__":
    main()
