"""config_from_json reads back exactly the TrainConfig a run wrote to train_config.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leanvla.adapt.config import LoRAOptions
from leanvla.errors import UserError
from leanvla.train.config import AuxOptions, ModelOptions, OrthOptions, TrainConfig
from leanvla.train.state import config_from_json, config_json


def _through_file(cfg: TrainConfig) -> dict:
    return json.loads(json.dumps(config_json(cfg)))  # what train_config.json holds


def test_round_trip_with_nested_options_and_paths():
    cfg = TrainConfig(
        data=Path("/d"),
        out=Path("runs/x"),
        init=Path("/base/policy"),
        val_episodes=Path("val.json"),
        model=ModelOptions(size="small", layers=3),
        adapter="lora-sp",
        lora=LoRAOptions(rank=16, eta=0.7, group_rank="vision=8"),
        aux=AuxOptions(horizon=8, weight=0.5, env_state=True),
        orth=OrthOptions(vector=Path("/meta/capability_vector.safetensors"), weight=0.2),
        steps=40,
        threads=1,
    )
    back = config_from_json(_through_file(cfg))
    assert back == cfg
    assert isinstance(back.orth.vector, Path) and isinstance(back.data, Path)
    assert back.episodes is None


def test_defaults_round_trip():
    cfg = TrainConfig(data=Path("/d"), out=Path("o"))
    assert config_from_json(_through_file(cfg)) == cfg


def test_options_the_run_predates_take_defaults():
    saved = _through_file(TrainConfig(data=Path("/d"), out=Path("o"), ema=0.9))
    del saved["state_dropout"], saved["aux"]["env_state"]
    back = config_from_json(saved)
    assert back.state_dropout == 0.0 and back.aux.env_state is False and back.ema == 0.9


def test_unknown_option_is_one_line_naming_it():
    saved = _through_file(TrainConfig(data=Path("/d"), out=Path("o")))
    saved["aux"]["future_option"] = 1
    with pytest.raises(UserError, match=r"run/train_config.json: unknown option aux.future_option") as err:
        config_from_json(saved, where="run/train_config.json")
    assert "\n" not in str(err.value)


def test_a_full_run_that_recorded_adapter_options_reads_back_runnable():
    # Before check_used_by, benchmark full fine-tuning rows wrote their shared --lora.targets.
    saved = _through_file(TrainConfig(data=Path("/d"), out=Path("o")))
    saved["lora"]["targets"] = "backbone,expert"
    back = config_from_json(saved)
    assert back.lora == LoRAOptions()
    back.check_adapter()


def test_an_adapter_option_the_version_lacks_names_the_file():
    saved = _through_file(TrainConfig(data=Path("/d"), out=Path("o"), init=Path("/b"), adapter="lora"))
    saved["lora"]["future_option"] = 1
    with pytest.raises(UserError, match=r"^run/train_config.json: unknown adapter option 'future_option'"):
        config_from_json(saved, where="run/train_config.json")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda saved: saved.update(steps="40"), 'steps must be int, got "40"$'),  # resumed as text, silently
        (lambda saved: saved.update(seed=True), "seed must be int, got true$"),
        (lambda saved: saved.update(lr="3e-4"), 'lr must be float, got "3e-4"$'),
        (lambda saved: saved.update(data=3), "data must be a path, got 3$"),  # a TypeError
        (lambda saved: saved.update(out=None), "out must be a path, got null$"),
        (
            lambda saved: saved.update(head="diffusion"),
            r"head must be Literal\['flow', 'discrete', 'regression'\], got \"diffusion\"$",
        ),
        (lambda saved: saved["aux"].update(env_state="no"), 'aux.env_state must be bool, got "no"$'),
    ],
)
def test_a_value_of_the_wrong_kind_is_one_line_naming_it(edit, message):
    saved = _through_file(TrainConfig(data=Path("/d"), out=Path("o")))
    edit(saved)
    with pytest.raises(UserError, match=f"^run/train_config.json: {message}"):
        config_from_json(saved, where="run/train_config.json")
    assert (
        config_from_json({**_through_file(TrainConfig(data=Path("/d"), out=Path("o"))), "init": None}).init
        is None
    )


def test_a_training_state_saved_reads_back_and_a_full_disk_is_an_oserror_naming_the_file(tmp_path):
    """Given a path, PyTorch's writer said "unexpected pos 129088 vs 128980" of a full disk."""
    import errno

    import torch

    from leanvla.train.state import save_torch

    state = {"step": 3, "weights": torch.arange(6.0)}
    save_torch(state, tmp_path / "state.pt")
    again = torch.load(tmp_path / "state.pt")
    assert again["step"] == 3 and torch.equal(again["weights"], state["weights"])
    if not Path("/dev/full").exists():  # every write there fails: the disk is full
        pytest.skip("no /dev/full here")
    for size in (1, 10**7):  # failing as the file closes, and as torch writes
        with pytest.raises(OSError) as full:
            save_torch({"weights": torch.zeros(size)}, Path("/dev/full"))
        assert (full.value.errno, full.value.filename) == (errno.ENOSPC, "/dev/full")
