"""State noise in training: it reaches what the model sees, follows the seed, and is checked."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from leanvla.errors import UserError
from leanvla.train.loop import train
from tests.data.helpers import synthetic_dataset
from tests.helpers import tiny_train_config


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synthetic_dataset(tmp_path_factory.mktemp("s") / "ds")


def weights(run):
    return load_file(str(run / "policy" / "model.safetensors"))


def test_state_noise_changes_training_and_is_reproducible(data, tmp_path):
    plain = weights(train(tiny_train_config(data, tmp_path / "plain"), progress=False))
    noisy = weights(train(tiny_train_config(data, tmp_path / "a", state_noise=0.5), progress=False))
    again = weights(train(tiny_train_config(data, tmp_path / "b", state_noise=0.5), progress=False))
    assert all(torch.equal(noisy[k], again[k]) for k in noisy)
    assert not torch.equal(plain["state_proj.weight"], noisy["state_proj.weight"])


def test_negative_state_noise_is_refused(data, tmp_path):
    with pytest.raises(UserError, match="--state-noise must be >= 0"):
        train(tiny_train_config(data, tmp_path / "r", state_noise=-0.1), progress=False)
    assert not (tmp_path / "r").exists()
