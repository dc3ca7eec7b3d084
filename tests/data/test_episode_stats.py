"""Every episode's statistics computed from its frames are those leanvla's writer computed of them."""

from __future__ import annotations

import itertools
import threading
import time
import weakref

import numpy as np
import pytest

from leanvla.data import episode_stats
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


def test_an_episodes_pixels_are_counted_while_the_next_episode_decodes(tmp_path, monkeypatch):
    dataset = LeRobotDataset(synthetic_dataset(tmp_path / "ds"))
    episodes = dataset.num_episodes
    given = [threading.Event() for _ in range(episodes)]  # the n-th episode decoded and given
    real_frames = LeRobotDataset.episode_frames

    def noted_frames(self, key):
        for n, given_episode in enumerate(real_frames(self, key)):
            given[n].set()
            yield given_episode

    calls, next_given_while_counting = itertools.count(), []

    def counted_once_the_next_is_given(frames):  # counted between decodes, it would wait in vain
        n = next(calls)
        if n + 1 < episodes:
            next_given_while_counting.append(given[n + 1].wait(timeout=5))
        return image_stats(frames)

    monkeypatch.setattr(LeRobotDataset, "episode_frames", noted_frames)
    monkeypatch.setattr(episode_stats, "image_stats", counted_once_the_next_is_given)
    computed = episode_stats_from_frames(dataset)
    assert next_given_while_counting == [True] * (episodes - 1)
    for episode, stats in enumerate(computed):
        written = dataset.episode_column(f"stats/{CAM}/mean")[episode]
        assert np.array_equal(np.asarray(written), stats[CAM]["mean"])


def test_episodes_over_the_overlapped_bytes_are_counted_one_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setattr(episode_stats, "OVERLAPPED_BYTES", 0)  # every episode larger
    dataset = LeRobotDataset(synthetic_dataset(tmp_path / "ds"))
    real_frames, given, previous_alive = LeRobotDataset.episode_frames, [0], []

    def noted_frames(self, key):
        previous = None  # the episode given before: a weak reference, holding nothing
        for episode, frames in real_frames(self, key):
            given[0] += 1
            # The counting thread lets go of its frames a moment after handing on their counts.
            deadline = time.monotonic() + 2
            while previous is not None and previous() is not None and time.monotonic() < deadline:
                time.sleep(0.001)
            previous_alive.append(previous is not None and previous() is not None)
            previous = weakref.ref(frames)
            yield episode, frames
            del frames

    given_when_counted = []

    def counted(frames):
        stats = image_stats(frames)
        time.sleep(0.1)  # time enough for the next episode to decode, were it let
        given_when_counted.append(given[0])
        return stats

    monkeypatch.setattr(LeRobotDataset, "episode_frames", noted_frames)
    monkeypatch.setattr(episode_stats, "image_stats", counted)
    computed = episode_stats_from_frames(dataset)
    episodes = dataset.num_episodes
    assert given_when_counted == list(range(1, episodes + 1))  # each before the next decoded
    assert previous_alive == [False] * episodes  # never two episodes' frames held at once
    assert [CAM in stats for stats in computed] == [True] * episodes


def test_an_error_counting_an_episodes_pixels_reaches_the_caller(tmp_path, monkeypatch):
    dataset = LeRobotDataset(synthetic_dataset(tmp_path / "ds"))

    def failing(frames):
        raise MemoryError("no room to count")

    monkeypatch.setattr(episode_stats, "image_stats", failing)
    with pytest.raises(MemoryError, match="no room to count"):
        episode_stats_from_frames(dataset)
