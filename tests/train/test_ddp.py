"""Two-process data-parallel training (torchrun, gloo) matches one process on the same global batch,
the auxiliary objective included: weights and every logged loss."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from leanvla.models.checkpoint import build_model, read_meta

ARGS = [
    "--model.size",
    "tiny",
    "--steps",
    "6",
    "--batch-size",
    "8",
    "--save-every",
    "3",
    "--log-every",
    "2",  # windows of two steps: their sums are all-reduced once, when the window closes
    "--chunk-size",
    "4",
    "--n-action-steps",
    "2",
    "--warmup-steps",
    "2",
    "--threads",
    "1",
    "--aux.horizon",
    "2",
]


def test_two_processes_match_one(data, tmp_path):
    one = tmp_path / "one"
    two = tmp_path / "two"
    base = [sys.executable, "-m", "leanvla", "train", "--data", str(data)]
    subprocess.run([*base, "--out", str(one), *ARGS], check=True, capture_output=True)
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--standalone",  # a free port: runs side by side do not collide
        "-m",
        "leanvla",
    ]
    result = subprocess.run(
        [*torchrun, "train", "--data", str(data), "--out", str(two), *ARGS], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == f"trained: {two / 'policy'}\n"  # once, from the main process
    a, b = load_file(str(one / "policy/model.safetensors")), load_file(str(two / "policy/model.safetensors"))
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 1e-4, worst
    # the weights moved: the comparison is not between two untouched initialisations
    torch.manual_seed(0)
    init = build_model(read_meta(one / "policy")).state_dict()
    assert min(float((init[k] - a[k]).abs().max()) for k in a if k.endswith("q_proj.weight")) > 1e-3
    records_one = [json.loads(s) for s in (one / "metrics.jsonl").read_text().splitlines()]
    records_two = [json.loads(s) for s in (two / "metrics.jsonl").read_text().splitlines()]
    assert len(records_one) == len(records_two) == 3
    for r1, r2 in zip(records_one, records_two):  # logged over the global batch, not one process's half
        for key in ("loss", "aux", "aux_features", "aux_state"):
            assert r2[key] == pytest.approx(r1[key], rel=1e-4), (r1["step"], key)
