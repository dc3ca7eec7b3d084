"""Shared fixtures: LeRobot's own dataset, and a tiny recorded dataset + tiny trained policy that
several tests reuse (recorded once per session: rendering is the slow part)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.helpers import record_in_process, train_tiny_vla

os.environ.setdefault("MUJOCO_GL", "egl")
# Decoded frames are cached for the suite's own datasets, never in the user's cache (frame_cache).
os.environ["LEANVLA_CACHE"] = tempfile.mkdtemp(prefix="leanvla-test-cache-")
atexit.register(shutil.rmtree, os.environ["LEANVLA_CACHE"], ignore_errors=True)
REPO = Path(__file__).resolve().parents[1]
FIXTURE = (REPO.parent / "shared" / "fixtures" / "lerobot_metaworld_v30").resolve()


@pytest.fixture(scope="session")
def lerobot_fixture() -> Path:
    assert FIXTURE.is_dir(), (
        f"the LeRobot fixture is missing at {FIXTURE}: tests expect ../shared beside the repository"
    )
    return FIXTURE


@pytest.fixture(scope="session")
def data(tmp_path_factory) -> Path:
    """A small synthetic LeRobotDataset, no rendering (read only: tests train on it, never change it)."""
    from tests.data.helpers import synthetic_dataset

    return synthetic_dataset(tmp_path_factory.mktemp("synthetic") / "ds")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """2 tasks x 3 episodes, two 32 px cameras, recorded in-process by the real recorder."""
    return record_in_process(
        tmp_path_factory.mktemp("data") / "tiny",
        tasks="reach-v3,drawer-close-v3",
        episodes=3,
        cameras="corner2,corner3",
        image_size=32,
    )


@pytest.fixture(scope="session")
def tiny_run(tiny_dataset, tmp_path_factory) -> Path:
    """A tiny VLA trained for a few steps on `tiny_dataset`."""
    return train_tiny_vla(tiny_dataset, tmp_path_factory.mktemp("runs") / "tiny")


@pytest.fixture(scope="session")
def discrete_run(data, tmp_path_factory) -> Path:
    """A tiny discrete-head VLA on `data`: 16 action tokens in blocks of 8, so it decodes with the
    fast (Fast-dVLA) decoder unless told otherwise."""
    from leanvla.train.config import DiscreteOptions
    from leanvla.train.loop import train
    from tests.helpers import tiny_train_config

    out = tmp_path_factory.mktemp("discrete") / "run"
    options = DiscreteOptions(vocab=16, block=8, bins="quantile")
    train(tiny_train_config(data, out, head="discrete", discrete=options), progress=False)
    return out
