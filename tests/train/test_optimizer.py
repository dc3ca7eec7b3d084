"""The training loop's AdamW: decay on matrices only; fused on the CPU, and updating as torch's
per-tensor AdamW does up to float rounding."""

from __future__ import annotations

import torch
from torch import nn

from leanvla.train.optimizer import adamw, param_groups

CPU = torch.device("cpu")


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.LayerNorm(7), nn.Linear(7, 3))
    model[2].bias.requires_grad_(False)  # frozen: in no group
    return model


def test_weight_decay_falls_on_matrices_only_and_frozen_parameters_are_left_out():
    model = _model()
    decay, rest = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and rest["weight_decay"] == 0.0
    assert [p.shape for p in decay["params"]] == [(7, 5), (3, 7)]
    assert [p.shape for p in rest["params"]] == [(7,), (7,), (7,)]  # bias, LayerNorm weight and bias


def test_adamw_is_fused_on_the_cpu_unless_told_otherwise():
    assert all(g["fused"] for g in adamw(_model(), 1e-3, 0.1, CPU).param_groups)
    assert not any(g["fused"] for g in adamw(_model(), 1e-3, 0.1, CPU, fused=False).param_groups)


def test_fused_updates_equal_the_per_tensor_ones_up_to_rounding():
    """Same start, same gradients, 5 steps with a changing learning rate: the two implementations
    agree to float32 rounding, and the weights did move (so the comparison can fail)."""
    models = {fused: _model() for fused in (True, False)}
    optimizers = {fused: adamw(m, 1e-2, 0.1, CPU, fused=fused) for fused, m in models.items()}
    start = [p.detach().clone() for p in models[True].parameters()]
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(16, 5, generator=generator)
    for step in range(5):
        for fused, model in models.items():
            optimizers[fused].zero_grad(set_to_none=True)
            model(x * (step + 1)).pow(2).mean().backward()
            for group in optimizers[fused].param_groups:
                group["lr"] = 1e-2 / (step + 1)
            optimizers[fused].step()
    for fused_p, loop_p, first in zip(models[True].parameters(), models[False].parameters(), start):
        torch.testing.assert_close(fused_p, loop_p, rtol=1e-5, atol=1e-6)
        if fused_p.requires_grad:
            assert not torch.equal(fused_p, first)
