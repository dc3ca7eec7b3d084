"""The logging window: per-name means over the steps since the last read, kept as tensors until read."""

from __future__ import annotations

import pytest
import torch

from leanvla.train.log_window import LogWindow


def test_means_are_per_step_means_by_name_in_order_added():
    window = LogWindow()
    values = {"loss": [0.5, 0.25, 1.0], "aux_state": [2.0, 4.0, 3.0]}
    for i in range(3):
        window.add("loss", torch.tensor(values["loss"][i]))
        window.add("aux_state", torch.tensor(values["aux_state"][i], dtype=torch.float64))
        window.step()
    means = window.means()
    assert list(means) == ["loss", "aux_state"]
    assert means["loss"] == pytest.approx(sum(values["loss"]) / 3, rel=1e-7)
    assert means["aux_state"] == pytest.approx(3.0, rel=1e-7)


def test_reading_starts_a_new_window():
    window = LogWindow()
    window.add("loss", torch.tensor(10.0))
    window.step()
    assert window.means() == {"loss": 10.0}
    assert window.steps == 0
    window.add("loss", torch.tensor(1.0))
    window.step()
    window.add("loss", torch.tensor(2.0))
    window.step()
    assert window.means() == {"loss": 1.5}  # the 10 is not carried over


def test_values_are_detached_and_an_empty_window_is_empty():
    window = LogWindow()
    w = torch.tensor(2.0, requires_grad=True)
    window.add("loss", w * 3)
    assert not window.sums["loss"].requires_grad  # holding the graph would keep a step's activations
    window.step()
    assert window.means() == {"loss": 6.0}
    assert window.means() == {}
