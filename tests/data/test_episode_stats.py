"""Every episode's statistics computed from its frames are those leanvla's writer computed of them."""

from __future__ import annotations

import numpy as np
import pytest

from leanvla.data.episode_stats import episode_stats_from_frames
from leanvla.data.reader import LeRobotDataset
from leanvla.data.stats import STAT_NAMES, image_stats
from tests.data.helpers import synthetic_dataset, to_video_dataset

CAM = "observation.images.cam"


class Bar:
    def __init__(self):
        self.n = 0

    def update(self, n: int = 1) -> None:
        self.n += n


def test_each_episodes_statistics_are_those_the_writer_computed_of_its_frames(tmp_path):
    dataset = LeRobotDataset(synthetic_dataset(tmp_path / "ds", data_files_size_in_mb=1e-6))
    bar = Bar()
    computed = episode_stats_from_frames(dataset, bar)
    assert bar.n == dataset.num_episodes  # an episode of its camera at a time
    assert [list(stats) for stats in computed] == [list(dataset.features)] * dataset.num_episodes
    for episode, stats in enumerate(computed):
        for key, named in stats.items():
            assert sorted(named) == sorted(STAT_NAMES), key
            for name, value in named.items():  # the writer's, from the frames before encoding
                written = np.asarray(dataset.episode_column(f"stats/{key}/{name}")[episode])
                assert written.shape == value.shape and np.array_equal(written, value), (episode, key, name)


def test_a_video_cameras_statistics_are_those_of_its_frames_as_they_decode(tmp_path):
    pytest.importorskip("av", reason="PyAV is in the dev extra; `make test` installs it")
    root = synthetic_dataset(tmp_path / "ds", image_size=16)
    to_video_dataset(root, episodes_per_file=2)
    dataset = LeRobotDataset(root)
    frames, lengths = dataset.read_images(CAM), dataset.episode_column("length")
    first = np.concatenate([[0], np.cumsum(lengths)])
    for episode, stats in enumerate(episode_stats_from_frames(dataset)):
        expected = image_stats(frames[first[episode] : first[episode + 1]])
        assert stats[CAM].keys() == expected.keys()
        for name, value in expected.items():
            assert np.array_equal(stats[CAM][name], value), (episode, name)
