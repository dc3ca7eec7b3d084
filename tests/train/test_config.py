"""An option a run would ignore is refused, naming what it needs (TrainConfig.check_options_used);
a number outside what it means is refused before anything is read (TrainConfig.check_ranges)."""

import os
import re
import sys
from pathlib import Path

import pytest

from leanvla.cli import main
from leanvla.errors import InputWarning, UserError
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
        (dict(init=INIT, model=ModelOptions(image_size=64)), (), "--model.image-size shapes a new policy"),
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
    cnn = TrainConfig(data=DATA, out=OUT, model=ModelOptions(type="cnn", image_size=32))
    cnn.check_options_used(["--model.type", "--model.image-size"])  # both models take images
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


def test_a_warm_up_as_long_as_the_run_is_a_warning_when_asked_for(recwarn):
    """The learning rate never reaches --lr before the run ends, nor decays. The default warm-up
    outlasts every short trial run, so only one set or typed is named."""
    with pytest.warns(InputWarning) as caught:
        TrainConfig(data=DATA, out=OUT, steps=40, warmup_steps=50).check_options_used()
    assert [str(w.message) for w in caught] == [
        "--warmup-steps 50 is not fewer than --steps 40: the learning rate rises the whole run, to 80% of "
        "--lr at its last step, and never decays; give fewer warm-up steps"
    ]
    with pytest.warns(InputWarning, match="--warmup-steps 100 is not fewer than --steps 100: .* to 100% of"):
        TrainConfig(data=DATA, out=OUT, steps=100).check_options_used(["--warmup-steps"])
    recwarn.clear()
    TrainConfig(data=DATA, out=OUT, steps=40).check_options_used()  # the default, not asked for
    TrainConfig(data=DATA, out=OUT, steps=40, warmup_steps=39).check_options_used()
    assert not [w for w in recwarn if issubclass(w.category, InputWarning)]


def test_the_command_line_says_it_once(data, tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "--steps",
        "2",
        "--warmup-steps",
        "4",
        "--model.size",
        "tiny",
        "--batch-size",
        "2",
        "--augment-shift",
        "0",
    ]
    assert main(["train", "--data", str(data), "--out", str(out), *args]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warned == [
        "leanvla train: warning: --warmup-steps 4 is not fewer than --steps 2: the learning rate rises the "
        "whole run, to 50% of --lr at its last step, and never decays; give fewer warm-up steps"
    ]


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


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(batch_size=0), "--batch-size must be >= 1, got 0"),
        (dict(steps=-3), "--steps must be >= 1, got -3"),
        (dict(log_every=0), "--log-every must be >= 1"),
        (dict(save_every=0), "--save-every must be >= 1"),
        (dict(chunk_size=0), "--chunk-size must be >= 1"),
        (dict(lr=float("nan")), "--lr must be a positive number, got nan"),
        (dict(lr=-1.0), "--lr must be a positive number"),
        (dict(lr=float("inf")), "--lr must be a positive number"),
        (dict(min_lr_ratio=2.0), "--min-lr-ratio is the final learning rate as a fraction of --lr"),
        (dict(warmup_steps=-5), "--warmup-steps must be finite and >= 0 (0 = no warm-up)"),
        (dict(weight_decay=float("inf")), "--weight-decay must be finite and >= 0"),
        (dict(grad_clip=-1.0), "--grad-clip must be finite and >= 0 (0 = no clipping)"),
        (dict(augment_shift=-2), "--augment-shift must be finite and >= 0"),
        (dict(threads=-1), "--threads must be finite and >= 0"),
        # torch's set_num_threads overflowed on it (a traceback)
        (dict(threads=10**12), f"--threads {10**12} is more than this machine's {os.cpu_count()} cores"),
        (dict(ema=1.0), "--ema is a decay in [0, 1)"),
        (dict(ema=-0.5), "--ema is a decay in [0, 1)"),
        (dict(n_action_steps=17), "--n-action-steps must be within 1..--chunk-size (16), got 17"),
        (dict(chunk_size=4, n_action_steps=0), "--n-action-steps must be within 1..--chunk-size (4), got 0"),
        (
            dict(val_episodes=Path("v.json"), val_every=30, log_every=25),
            "--val-every must be a positive multiple",
        ),
        (dict(val_episodes=Path("v.json"), val_samples=0), "--val-samples must be >= 1"),
        (dict(model=ModelOptions(width=0)), "--model.width must be >= 1, got 0"),
        (dict(model=ModelOptions(image_size=4)), "--model.image-size must be within 8..512 pixels, got 4"),
        (dict(model=ModelOptions(expert_layers=0)), "--model.expert-layers must be >= 1, got 0"),
        (dict(model=ModelOptions(vision_layers=-1)), "--model.vision-layers must be >= 0 (0 = stem only)"),
        (
            dict(model=ModelOptions(vision_channels=[8, -4])),
            "--model.vision-channels must be one or more channel counts >= 1, got [8, -4]",
        ),
    ],
)
def test_a_number_outside_its_meaning_is_refused(options, message):
    with pytest.raises(UserError, match=re.escape(message)):
        TrainConfig(data=DATA, out=OUT, **options).check_ranges()


@pytest.mark.parametrize(
    "options, check, message",
    [
        (
            dict(aux=AuxOptions(horizon=4, weight=float("inf"))),
            "check_aux",
            "--aux.weight must be finite and >= 0",
        ),
        (
            dict(init=INIT, orth=OrthOptions(vector=Path("tau"), weight=float("nan"))),
            "check_orth",
            "--orth.weight must be finite and >= 0, got nan",
        ),
        (
            dict(distill=DistillOptions(teacher=Path("t"), weight=-1.0), head="discrete"),
            "check_distill",
            "--distill.weight must be finite and >= 0",
        ),
        (dict(aux=AuxOptions(horizon=-1)), "check_aux", "--aux.horizon must be >= 0, got -1"),
        (
            dict(aux=AuxOptions(horizon=4), model=ModelOptions(type="cnn")),
            "check_aux",
            "--aux needs the reference VLA (--model.type vla)",
        ),
        (
            dict(orth=OrthOptions(vector=Path("tau"))),
            "check_orth",
            "--orth.vector regularises an update: pass --init",
        ),
        (
            dict(init=INIT, orth=OrthOptions(vector=Path("no-such-vector"))),
            "check_orth",
            "--orth.vector no-such-vector does not exist; `leanvla merge --out DIR` writes "
            "DIR/capability_vector.safetensors",
        ),
        (
            dict(init=INIT, orth=OrthOptions(vector=Path("t"))),
            "check_orth",
            "--orth.vector t is a directory without capability_vector.safetensors: pass a `leanvla merge` "
            "--out directory, or the vector file in it",
        ),
        (
            dict(distill=DistillOptions(teacher=Path("t")), aux=AuxOptions(horizon=4)),
            "check_distill",
            "--distill.teacher does not combine with --aux",
        ),
        (
            dict(distill=DistillOptions(teacher=Path("t")), flow_samples=2),
            "check_distill",
            "--distill.teacher needs --flow-samples 1",
        ),
        (
            dict(distill=DistillOptions(teacher=Path("t")), init=INIT, adapter="lora"),
            "check_distill",
            "--distill.teacher trains every weight: use --adapter full",
        ),
    ],
)
def test_an_objective_option_outside_its_meaning_is_refused(options, check, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("tau").write_bytes(b"")  # the checks read only that the vector and teacher exist
    Path("t").mkdir()
    with pytest.raises(UserError, match=re.escape(message)):
        getattr(TrainConfig(data=DATA, out=OUT, **options), check)()


def test_the_defaults_and_the_edges_of_each_range_pass():
    TrainConfig(data=DATA, out=OUT).check_ranges()
    edges = dict(warmup_steps=0, weight_decay=0.0, grad_clip=0.0, augment_shift=0, threads=0, ema=0.0)
    TrainConfig(data=DATA, out=OUT, min_lr_ratio=1.0, chunk_size=4, n_action_steps=4, **edges).check_ranges()
    # a fine-tuned --init keeps its own chunking: --n-action-steps is checked against it later
    TrainConfig(data=DATA, out=OUT, init=INIT, n_action_steps=40).check_ranges()


def test_the_command_line_refuses_a_zero_batch_in_one_line_and_writes_nothing(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "refused"
    assert main(["train", "--data", str(tiny_dataset), "--out", str(out), "--batch-size", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["leanvla train: error: --batch-size must be >= 1, got 0"]
    assert not out.exists()


def test_lora_without_peft_is_refused_before_any_data_is_read(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)  # as if not installed: `pip install leanvla` has none
    missing = ["--data", str(tmp_path / "no data"), "--init", str(tmp_path / "no policy")]
    assert main(["train", *missing, "--out", str(tmp_path / "o"), "--adapter", "lora"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs the optional package 'peft'" in err[0], err
    assert err[0].endswith(
        "install it with: pip install 'leanvla[adapt]'  (peft: LoRA adapters, and merging --vectors)"
    )
