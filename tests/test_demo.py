"""`leanvla demo --quick`: the same path as `make demo`, tiny, in under three minutes."""

from __future__ import annotations

import platform
import sys
import time

from leanvla.cli import main


def test_quick_demo_runs_end_to_end(tmp_path, capsys):
    start = time.perf_counter()
    code = main(["demo", "--quick", "--out", str(tmp_path / "demo"), "--cache", str(tmp_path / "cache")])
    elapsed = time.perf_counter() - start
    assert code == 0
    report = (tmp_path / "demo" / "report.md").read_text()
    for section in (
        "## Data",
        "## Base policy",
        "## Closed-loop success",
        "| **mean** |",
        "loss.png",
        "## What the base policy reads (`leanvla probe`)",
        "given its state, ",
        "## Prune (CLP)",
        "| 2 + 2 |",
        "## Adapt (LoRA-SP)",
        "| drawer-open-v3 |",
        "## Merge (CapVector)",
        "| meta + SFT + orth |",
        "% of the merged vector",
        "## Curate (ATHENA)",
        "## Decode (Fast-dVLA)",
        "| discrete head, Fast-dVLA decoder |",
        "evaluated with the fast decoder (Fast-dVLA)",  # as the evaluation ran: its record, not the plan
        "confidence >= 0.001 (under 1/32: every token of a block commits in the block's first pass).",
        f"On: Python {platform.python_version()}, torch ",  # what the timings were measured on
    ):
        assert section in report
    assert (tmp_path / "demo" / "loss.png").stat().st_size > 1000
    assert (tmp_path / "demo" / "base" / "policy" / "model.safetensors").is_file()
    assert (tmp_path / "demo" / "pruned" / "cka_backbone.png").is_file()
    assert (tmp_path / "demo" / "adapted" / "policy" / "adapter.safetensors").is_file()
    assert (tmp_path / "demo" / "adapted" / "active_rank.png").is_file()
    assert (tmp_path / "demo" / "meta" / "capability_vector.safetensors").is_file()
    assert (tmp_path / "demo" / "meta" / "vector_norms.png").is_file()
    assert (tmp_path / "demo" / "curated" / "selection.json").is_file()
    assert (tmp_path / "demo" / "probe" / "probe.png").is_file()
    assert (tmp_path / "demo" / "curated" / "scores_per_task.png").is_file()
    assert elapsed < 180, elapsed
    # a second run reuses the cached dataset and the finished training
    start = time.perf_counter()
    assert main(["demo", "--quick", "--out", str(tmp_path / "demo"), "--cache", str(tmp_path / "cache")]) == 0
    assert time.perf_counter() - start < elapsed


def test_a_negative_seed_is_one_line_and_no_output_directory(tmp_path, capsys):
    out = tmp_path / "demo"
    assert (
        main(["demo", "--quick", "--seed", "-1", "--out", str(out), "--cache", str(tmp_path / "cache")]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["leanvla demo: error: --seed must be >= 0 (it seeds numpy's recording draws), got -1"]
    assert not out.exists() and not (tmp_path / "cache").exists()


def test_without_the_simulator_it_is_one_line_and_no_output_directory(tmp_path, capsys, monkeypatch):
    """`pip install leanvla` has no Meta-World (the sim extra): the demo said so, but only after
    making --out and --cache."""
    monkeypatch.setitem(sys.modules, "metaworld", None)
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--cache", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "leanvla demo: error: this needs the optional package 'metaworld'"
    )
    assert "pip install 'leanvla[sim]'" in err[0]
    assert not out.exists() and not (tmp_path / "cache").exists()
