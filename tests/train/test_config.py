"""An option a run would ignore is refused, naming what it needs (TrainConfig.check_options_used)."""

from pathlib import Path

import pytest

from leanvla.cli import main
from leanvla.errors import UserError
from leanvla.train.config import (
    AuxOptions,
    DiscreteOptions,
    DistillOptions,
    ModelOptions,
    OrthOptions,
    TrainConfig,
)

DATA, OUT, INIT = Path("data"), Path("out"), Path("base")


@pytest.mark.parametrize(
    "options, typed, message",
    [
        (
            dict(init=INIT, model=ModelOptions(size="base")),
            (),
            "--model.size shapes a new policy, but --init base",
        ),
        # Typed at its default value: only the command line tells it from an untouched option.
        (dict(init=INIT), ["--model.size", "small"], "--model.size shapes a new policy"),
        (dict(init=INIT, discrete=DiscreteOptions(vocab=64)), (), "--discrete.vocab shapes a new policy"),
        (dict(model=ModelOptions(type="cnn", width=64)), (), "--model.width applies to the reference VLA"),
        (
            dict(model=ModelOptions(type="cnn"), head="discrete"),
            (),
            "--head discrete needs the reference VLA",
        ),
        (
            dict(head="discrete", model=ModelOptions(flow_steps=3)),
            (),
            "--model.flow-steps applies to --head flow",
        ),
        (dict(discrete=DiscreteOptions(block=8)), (), "--discrete.block applies to --head discrete"),
        (dict(aux=AuxOptions(weight=1.0)), (), "--aux.weight adds to the auxiliary objective, which is off"),
        (dict(aux=AuxOptions(env_state=True)), (), "--aux.env-state adds to the auxiliary objective"),
        (dict(aux=AuxOptions(pixels=True)), (), "--aux.pixels adds to the auxiliary objective"),
        (
            dict(init=INIT),
            ["--orth.weight=0.1"],
            "--orth.weight weights the orthogonal penalty, which is off",
        ),
        (dict(distill=DistillOptions(weight=2.0)), (), "--distill.weight weights distillation, which is off"),
        (dict(), ["--val-every", "100"], "--val-every applies to the validation loss, which is off"),
    ],
)
def test_an_option_the_run_would_ignore_is_refused(options, typed, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        TrainConfig(data=DATA, out=OUT, **options).check_options_used(typed)


def test_options_the_run_uses_pass_typed_or_not():
    used = TrainConfig(
        data=DATA,
        out=OUT,
        model=ModelOptions(size="tiny", flow_steps=4),
        aux=AuxOptions(horizon=8, weight=1.0, env_state=True),
        val_episodes=Path("held_out.json"),
        val_every=10,
    )
    used.check_options_used(
        ["--model.size", "--model.flow-steps", "--aux.horizon", "--aux.weight", "--val-every"]
    )
    fine_tune = TrainConfig(data=DATA, out=OUT, init=INIT, orth=OrthOptions(vector=Path("tau"), weight=1.0))
    fine_tune.check_options_used(["--init", "--orth.vector", "--orth.weight", "--steps", "--lr"])
    discrete = TrainConfig(data=DATA, out=OUT, head="discrete", discrete=DiscreteOptions(block=8))
    discrete.check_options_used(["--head", "--discrete.block"])


def test_the_command_line_refuses_it_in_one_line_and_writes_nothing(tiny_dataset, tiny_run, tmp_path, capsys):
    out = tmp_path / "refused"
    args = ["train", "--data", str(tiny_dataset), "--init", str(tiny_run), "--out", str(out), "--steps", "1"]
    assert main([*args, "--model.size", "small"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"leanvla train: error: --model.size shapes a new policy, but --init {tiny_run} brings its own; drop it"
    ]
    assert not out.exists()


def test_the_orthogonal_penalty_is_refused_beside_lora_sp():
    config = TrainConfig(
        data=DATA, out=OUT, init=INIT, adapter="lora-sp", orth=OrthOptions(vector=Path("tau"))
    )
    with pytest.raises(UserError, match="LoRA-SP's update changes with every input"):
        config.check_orth()


def test_the_auxiliary_objective_is_refused_beside_adapters():
    config = TrainConfig(data=DATA, out=OUT, init=INIT, adapter="lora", aux=AuxOptions(horizon=4))
    with pytest.raises(UserError, match="--adapter lora would leave frozen at its random start"):
        config.check_aux()
