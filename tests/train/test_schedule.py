from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from leanvla.train.loop import flow_time
from leanvla.train.schedule import EMA, lr_at


def test_warmup_then_cosine_to_the_floor():
    peak, warmup, total, floor = 1e-3, 10, 110, 0.1
    assert lr_at(0, peak, warmup, total, floor) == pytest.approx(peak / 10)
    assert lr_at(9, peak, warmup, total, floor) == pytest.approx(peak)
    assert lr_at(10, peak, warmup, total, floor) == pytest.approx(peak)
    assert lr_at(60, peak, warmup, total, floor) == pytest.approx(peak * (floor + (1 - floor) * 0.5))
    assert lr_at(110, peak, warmup, total, floor) == pytest.approx(peak * floor)
    values = [lr_at(s, peak, warmup, total, floor) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_ema_tracks_the_weights():
    model = nn.Linear(2, 2)
    ema = EMA(model, decay=0.9)  # not 0.5, where the old value and the new weigh alike
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    assert torch.allclose(ema.shadow["weight"], start + 0.1)
    assert torch.equal(ema.state_dict_for(model)["bias"], ema.shadow["bias"])


def test_flow_time_follows_beta_1p5_1():
    t = flow_time(torch.rand(200_000, generator=torch.Generator().manual_seed(0)))
    assert 0.001 <= float(t.min()) and float(t.max()) <= 1.0
    # Beta(1.5, 1) has mean 1.5 / 2.5 = 0.6 (scaled by 0.999, shifted by 0.001)
    assert math.isclose(float(t.mean()), 0.6 * 0.999 + 0.001, abs_tol=2e-3)
