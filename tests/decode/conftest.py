"""Fixtures the discrete-head tests share."""

from __future__ import annotations

import pytest

from tests.data.helpers import synthetic_dataset


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """A small synthetic LeRobotDataset (read only: tests train on it, never change it)."""
    return synthetic_dataset(tmp_path_factory.mktemp("d") / "ds")
