"""State noise and state dropout in training: they reach what the model sees, follow the seed, and are checked."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from leanvla.errors import UserError
from leanvla.train.loop import train
from tests.helpers import tiny_train_config


def weights(run):
    return load_file(str(run / "policy" / "model.safetensors"))


@pytest.mark.parametrize("option", [{"state_noise": 0.5}, {"state_dropout": 0.5}])
def test_state_augmentation_changes_training_and_is_reproducible(data, tmp_path, option):
    plain = weights(train(tiny_train_config(data, tmp_path / "plain"), progress=False))
    changed = weights(train(tiny_train_config(data, tmp_path / "a", **option), progress=False))
    again = weights(train(tiny_train_config(data, tmp_path / "b", **option), progress=False))
    assert all(torch.equal(changed[k], again[k]) for k in changed)
    assert not torch.equal(plain["state_proj.weight"], changed["state_proj.weight"])


@pytest.mark.parametrize("std", [-0.1, float("inf")])  # an infinite std made the loss nan at step 1
def test_state_noise_that_is_not_a_std_is_refused(data, tmp_path, std):
    with pytest.raises(UserError, match=f"--state-noise must be finite and >= 0 \\(a std\\), got {std}"):
        train(tiny_train_config(data, tmp_path / "r", state_noise=std), progress=False)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("p", [-0.1, 1.0])
def test_state_dropout_outside_zero_one_is_refused(data, tmp_path, p):
    with pytest.raises(UserError, match=r"--state-dropout is a probability in \[0, 1\)"):
        train(tiny_train_config(data, tmp_path / "r", state_dropout=p), progress=False)
    assert not (tmp_path / "r").exists()
