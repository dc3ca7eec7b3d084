"""Decoding options, as `leanvla eval` and `leanvla probe` take them: checked against the policy's
head and ranges in one line before anything runs, and summarised with what decoding cost."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from leanvla.decode.options import DecodingOptions, decoding_summary
from leanvla.errors import UserError
from leanvla.models.config import vla_config
from tests.test_cli import one_line_error, run


def discrete_meta(**settings) -> dict:
    model = vla_config("tiny", chunk_size=8, action_dim=4, head="discrete", action_vocab=16, token_block=8)
    return {"type": "vla", "model": {**model.to_dict(), **settings}}


def test_only_the_options_given_are_overrides():
    assert DecodingOptions().overrides(discrete_meta(), Path("p")) == {}
    chosen = DecodingOptions(decoder="bidirectional", decode_iterations=3)
    assert chosen.overrides(discrete_meta(), Path("p")) == {
        "decoder": "bidirectional",
        "decode_iterations": 3,
    }


@pytest.mark.parametrize(
    "meta, options, message",
    [
        (
            discrete_meta(),
            dict(flow_noise=0.0),
            "--flow-noise needs a flow-head VLA; p has a 'discrete' head",
        ),
        (
            {"type": "cnn", "model": {}},
            dict(decoder="fast"),
            "need a discrete-head policy; p has a 'cnn' head",
        ),
        (
            {"type": "cnn", "model": {}},
            dict(flow_noise=0.0),
            "--flow-noise needs a flow-head VLA; p has a 'cnn'",
        ),
        (discrete_meta(), dict(activation_threshold=0.0), "--activation-threshold must be in (0, 1]"),
        (discrete_meta(), dict(decode_order="shuffled"), "--decode-order must be one of confidence, random,"),
        (discrete_meta(), dict(decoder="greedy"), "decoder 'greedy' is not one of"),
    ],
)
def test_an_option_the_policy_cannot_use_is_refused(meta, options, message):
    with pytest.raises(UserError, match=re.escape(message)):
        DecodingOptions(**options).overrides(meta, Path("p"))


def test_a_discrete_heads_cost_is_counted_per_chunk_and_per_pass():
    decode = decoding_summary(discrete_meta(), {}, chunks=4, passes=16)["decode"]
    assert decode["decoder"] == "fast" and decode["forward_passes_per_chunk"] == 4.0  # 16 passes, 4 chunks
    assert decode["tokens_per_pass"] == 8.0  # 4 chunks of 32 tokens in 16 passes
    overridden = decoding_summary(discrete_meta(), {"decoder": "bidirectional"}, chunks=2, passes=20)[
        "decode"
    ]
    assert overridden["decoder"] == "bidirectional" and overridden["forward_passes_per_chunk"] == 10.0


def commands(policy: Path, data: Path, out: Path) -> dict[str, list[str]]:
    """The two commands that take decoding options, each on `policy`."""
    return {
        "eval": ["eval", "--policy", str(policy)],
        "probe": ["probe", "--policy", str(policy), "--data", str(data), "--out", str(out)],
    }


@pytest.mark.parametrize("command", ["eval", "probe"])
def test_bad_decoder_settings_are_one_line(capsys, discrete_run, data, tmp_path, command):
    base = commands(discrete_run, data, tmp_path / "out")[command]
    for extra, message in (
        (["--commit-threshold", "1.5"], "--commit-threshold must be in (0, 1], got 1.5"),
        (
            ["--decoder", "greedy"],
            "invalid choice 'greedy' for argument '--decoder'. Expected one of: None, auto, bidirectional, fast, fast-nocache.",
        ),
        (["--decode-order", "shuffled"], "invalid choice 'shuffled' for argument '--decode-order'"),
        (["--flow-noise", "0"], "--flow-noise needs a flow-head VLA"),
    ):
        code, _, err = run(capsys, *base, *extra)
        one_line_error(code, err, f"leanvla {command}: error:", message)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["eval", "probe"])
def test_decoder_options_need_a_discrete_head_and_flow_noise_a_scale(
    capsys, tiny_run, tiny_dataset, tmp_path, command
):
    base = commands(tiny_run, tiny_dataset, tmp_path / "out")[command]
    code, _, err = run(capsys, *base, "--decoder", "fast")
    one_line_error(code, err, "--decoder and its thresholds need a discrete-head policy", "'flow' head")
    code, _, err = run(capsys, *base, "--flow-noise", "-1")
    one_line_error(code, err, "--flow-noise must be finite and >= 0", "got -1.0")
    code, _, err = run(capsys, *base, "--flow-noise", "inf")  # it ran, every action NaN
    one_line_error(code, err, "--flow-noise must be finite and >= 0", "got inf")
    assert not (tmp_path / "out").exists()


def test_the_choices_offered_are_the_ones_the_model_accepts():
    from typing import get_args, get_type_hints

    from leanvla.decode.bidirectional import ORDERS
    from leanvla.models.config import DECODERS

    hints = get_type_hints(DecodingOptions)
    assert set(get_args(get_args(hints["decoder"])[0])) == set(DECODERS)
    assert set(get_args(get_args(hints["decode_order"])[0])) == set(ORDERS)
