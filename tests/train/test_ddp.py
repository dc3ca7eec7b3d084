"""Two-process data-parallel training (torchrun, gloo) matches one process on the same global batch."""

from __future__ import annotations

import subprocess
import sys

import torch
from safetensors.torch import load_file

from leanvla.models.checkpoint import build_model, read_meta
from tests.data.helpers import synthetic_dataset

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
    "1",
    "--chunk-size",
    "4",
    "--n-action-steps",
    "2",
    "--warmup-steps",
    "2",
    "--threads",
    "1",
]


def test_two_processes_match_one(tmp_path):
    data = synthetic_dataset(tmp_path / "ds")
    one = tmp_path / "one"
    two = tmp_path / "two"
    base = [sys.executable, "-m", "leanvla", "train", "--data", str(data)]
    subprocess.run([*base, "--out", str(one), *ARGS], check=True, capture_output=True)
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29533",
        "-m",
        "leanvla",
    ]
    result = subprocess.run(
        [*torchrun, "train", "--data", str(data), "--out", str(two), *ARGS], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    a, b = load_file(str(one / "policy/model.safetensors")), load_file(str(two / "policy/model.safetensors"))
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 1e-4, worst
    # the weights moved: the comparison is not between two untouched initialisations
    torch.manual_seed(0)
    init = build_model(read_meta(one / "policy")).state_dict()
    assert min(float((init[k] - a[k]).abs().max()) for k in a if k.endswith("q_proj.weight")) > 1e-3
    losses_one = (one / "metrics.jsonl").read_text().splitlines()
    losses_two = (two / "metrics.jsonl").read_text().splitlines()
    assert len(losses_one) == len(losses_two) == 6
