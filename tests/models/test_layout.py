"""Layouts address a model's layer stacks and Linear modules by name."""

from __future__ import annotations

import pytest
from torch import nn

from leanvla.errors import UserError
from leanvla.models.config import vla_config
from leanvla.models.layout import VLA_LAYOUT, Layout, Stack, layout_for
from leanvla.models.vla import VLA


def test_vla_layout_names_every_block_linear():
    model = VLA(vla_config("tiny", vision_layers=1))
    assert layout_for(model) is VLA_LAYOUT
    linears = VLA_LAYOUT.linear_modules(model)
    assert all(isinstance(m, nn.Linear) for m in linears.values())
    assert len(linears) == 7 * (2 + 2 + 1)
    assert "backbone.1.mlp.down_proj" in linears and "expert.layers.0.attn.q_proj" in linears
    assert list(VLA_LAYOUT.linear_modules(model, ["expert"])) == [
        n for n in linears if n.startswith("expert.")
    ]
    assert len(VLA_LAYOUT.layers(model, "backbone")) == 2


def test_layout_naming_missing_modules_is_a_user_error():
    model = VLA(vla_config("tiny"))
    bad = Layout((Stack("backbone", "backbone", ("attn.q_proj", "attn.nope")),))
    with pytest.raises(UserError, match="backbone.0.attn.nope"):
        bad.check(model)
    with pytest.raises(UserError, match="no such module"):
        Layout((Stack("x", "decoder.layers", ()),)).layers(model, "x")
    with pytest.raises(UserError, match="no stack 'vision2'"):
        VLA_LAYOUT.stack("vision2")


def test_a_stack_that_is_no_module_list_and_a_model_without_a_layout_are_user_errors():
    model = VLA(vla_config("tiny"))
    with pytest.raises(
        UserError, match="layout stack 'x' points at 'state_proj', which is a Linear, not an nn.ModuleList"
    ):
        Layout((Stack("x", "state_proj", ()),)).layers(model, "x")
    with pytest.raises(UserError, match="no built-in layout for Sequential; describe its layer stacks"):
        layout_for(nn.Sequential(nn.Linear(2, 2)))
