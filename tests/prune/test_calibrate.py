"""The calibration hooks see exactly the representations the model computes, padding excluded."""

from __future__ import annotations

import pytest
import torch

from leanvla.models.layout import VLA_LAYOUT
from leanvla.prune.calibrate import record_similarity
from leanvla.prune.similarity import linear_cka_reference
from tests.prune.test_remove import inputs, tiny_vla


def test_backbone_similarity_equals_cka_of_the_returned_hidden_states():
    model = tiny_vla()
    obs, actions, noise, t = inputs(model)
    tokens, mask = model.tokenizer.batch(["open the door and then stop", "reach"])  # unequal: padding
    obs.tokens, obs.token_mask = tokens[obs.task_index], mask[obs.task_index]

    def run(_batch):
        prefix = model.prefix_of(obs)
        model.flow_error(prefix, actions, noise, t)
        return {"backbone": prefix.valid, "expert": None}

    acc = record_similarity(model, VLA_LAYOUT, ["backbone", "expert"], [0], run)
    with torch.no_grad():
        x, valid = model.embed_prefix(obs.images, obs.tokens, obs.token_mask, obs.state)
        _, _, hidden = model.run_backbone(x, valid, return_hidden=True)
    assert not valid.all()  # the instructions pad: the mask matters
    reps = [x[valid], *(h[valid] for h in hidden)]
    assert acc["backbone"].n == int(valid.sum())
    cka = acc["backbone"].cka()
    for r in range(len(reps)):
        for s in range(len(reps)):
            assert cka[r, s].item() == pytest.approx(linear_cka_reference(reps[r], reps[s]), abs=1e-6)
    assert acc["expert"].n == actions.shape[0] * actions.shape[1]  # every action token


def test_a_stack_that_never_runs_is_reported():
    from leanvla.errors import UserError

    model = tiny_vla()
    obs = inputs(model)[0]
    with pytest.raises(UserError, match="stack 'expert' did not run"):
        record_similarity(model, VLA_LAYOUT, ["expert"], [0], lambda _b: model.prefix_of(obs) and {})


def test_a_stack_without_layers_is_reported():
    from leanvla.errors import UserError

    model = tiny_vla()  # no vision transformer: the 'vision' stack is empty
    with pytest.raises(UserError, match="stack 'vision' has no layers to calibrate"):
        record_similarity(model, VLA_LAYOUT, ["vision"], [0], lambda _b: {})
