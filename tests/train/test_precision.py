"""--precision bf16: the forward pass runs under bfloat16 autocast while the weights, the optimizer
and what is saved stay float32; every head, adapter and objective trains under it; a run resumes
exactly, and only at the precision it started with."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file

from leanvla.errors import InputWarning, UserError
from leanvla.report import read_metrics
from leanvla.train.loop import train
from tests.helpers import tiny_train_config


def bf16_train(cfg):
    """train(cfg) at bf16 on the CPU, where it warns that bf16 is for GPUs."""
    with pytest.warns(InputWarning, match="bf16 on the CPU"):
        return train(cfg, progress=False)


def first_loss(run) -> float:
    return read_metrics(run / "metrics.jsonl")[0]["loss"]


def test_bf16_computes_the_forward_in_bfloat16_and_keeps_float32_weights(data, tmp_path):
    fp32 = train(tiny_train_config(data, tmp_path / "fp32", steps=2), progress=False)
    bf16 = bf16_train(tiny_train_config(data, tmp_path / "bf16", steps=2, precision="bf16"))
    a, b = first_loss(fp32), first_loss(bf16)
    # The same weights and draws: bfloat16 rounding (8 bits of mantissa) moves the loss, not far.
    assert a != b and math.isclose(a, b, rel_tol=0.05)
    weights = load_file(str(bf16 / "policy" / "model.safetensors"))
    assert {w.dtype for w in weights.values() if w.is_floating_point()} == {torch.float32}


@pytest.mark.parametrize(
    "options",
    [
        dict(head="discrete"),
        dict(head="regression"),
        dict(aux=dict(horizon=2, pixels=True)),
        dict(model=dict(type="cnn")),
    ],
    ids=["discrete", "regression", "aux", "cnn"],
)
def test_every_head_and_objective_trains_at_bf16(data, tmp_path, options):
    from leanvla.train.config import AuxOptions, ModelOptions

    if "aux" in options:
        options = {**options, "aux": AuxOptions(**options["aux"])}
    if "model" in options:
        options = {**options, "model": ModelOptions(**options["model"])}
    run = bf16_train(tiny_train_config(data, tmp_path / "run", steps=2, precision="bf16", **options))
    assert all(math.isfinite(r["loss"]) for r in read_metrics(run / "metrics.jsonl"))


@pytest.mark.parametrize("adapter", ["lora", "lora-sp"])
def test_adapters_train_at_bf16(data, tmp_path, adapter):
    from leanvla.adapt.config import LoRAOptions

    base = train(tiny_train_config(data, tmp_path / "base", steps=2), progress=False)
    cfg = tiny_train_config(
        data,
        tmp_path / "run",
        steps=2,
        precision="bf16",
        init=base,
        adapter=adapter,
        lora=LoRAOptions(rank=4),
    )
    run = bf16_train(cfg)
    saved = load_file(str(run / "policy" / "adapter.safetensors"))
    assert {w.dtype for w in saved.values() if w.is_floating_point()} == {torch.float32}


def test_a_bf16_run_resumes_exactly_and_only_at_bf16(data, tmp_path):
    cfg = dict(steps=6, save_every=2, precision="bf16")
    whole = bf16_train(tiny_train_config(data, tmp_path / "whole", **cfg))
    run = tmp_path / "resumed"
    with pytest.warns(InputWarning):
        train(tiny_train_config(data, run, **cfg), progress=False, stop_after=3)
    with pytest.raises(UserError, match="precision"):
        train(tiny_train_config(data, run, **{**cfg, "precision": "fp32"}), progress=False)
    bf16_train(tiny_train_config(data, run, **cfg))
    a = load_file(str(whole / "policy" / "model.safetensors"))
    b = load_file(str(run / "policy" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
