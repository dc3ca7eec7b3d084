"""`train --head discrete`: bins fitted on the data and carried by the checkpoint (and reloaded to the
same decoding); bad settings rejected in one line."""

from __future__ import annotations

import pytest
import torch

from leanvla.models.checkpoint import load_policy
from leanvla.train.loop import train
from tests.helpers import tiny_train_config
from tests.test_cli import one_line_error, run


def test_bins_are_fitted_saved_and_decoding_reloads_identically(discrete_run):
    first, second = load_policy(discrete_run), load_policy(discrete_run)
    edges = first.model.expert.bin_edges
    assert not torch.equal(edges, torch.linspace(-3.0, 3.0, 17).repeat(4, 1))  # fitted, not the default
    images = torch.randint(0, 256, (2, 1, 3, 16, 16), dtype=torch.uint8)
    state, task = torch.zeros(2, 4), torch.tensor([0, 1])
    assert torch.equal(first.act(images, state, task), second.act(images, state, task))
    assert first.model.cfg.decoder == "auto" and first.model.expert.n_blocks == 2
    assert first.model.last_decode.tokens == 16
    recorded = first.meta["action_tokens"]  # the tokenizer's round trip on the training actions
    assert recorded["bins"] == "quantile" and recorded["vocab"] == 16
    assert 0 < recorded["round_trip_error"]["max_over_half_bin"] <= 1.0 + 1e-6


def test_a_fine_tuned_discrete_policy_keeps_its_bins_and_their_record(discrete_run, data, tmp_path):
    train(tiny_train_config(data, tmp_path / "tuned", init=discrete_run, steps=2), progress=False)
    base, tuned = load_policy(discrete_run), load_policy(tmp_path / "tuned")
    assert torch.equal(tuned.model.expert.bin_edges, base.model.expert.bin_edges)
    assert tuned.meta["action_tokens"] == base.meta["action_tokens"]


def test_bad_block_size_is_one_line(capsys, data, tmp_path):
    code, _, err = run(
        capsys,
        "train",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "r"),
        "--model.size",
        "tiny",
        "--head",
        "discrete",
        "--discrete.block",
        "5",
        "--chunk-size",
        "4",
        "--n-action-steps",
        "2",
        "--steps",
        "1",
    )
    one_line_error(code, err, "block 5 must divide the chunk's 16 action tokens", "one of 1, 2, 4, 8, 16")
    assert not (tmp_path / "r" / "policy").exists()


@pytest.fixture(scope="module")
def flow_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("f") / "flow"
    train(tiny_train_config(data, out, steps=1), progress=False)
    return out


def test_a_flow_init_cannot_become_discrete(capsys, data, flow_run, tmp_path):
    code, _, err = run(
        capsys,
        "train",
        "--data",
        str(data),
        "--init",
        str(flow_run),
        "--out",
        str(tmp_path / "ft"),
        "--head",
        "discrete",
    )
    one_line_error(code, err, "--head discrete, but --init", "has a 'flow' head")
