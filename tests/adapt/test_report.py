"""LoRA-SP's per-layer active-rank log, read back: where each layer's rank settled."""

from __future__ import annotations

import json

import pytest

from leanvla.adapt.report import last_quarter_means, plot_active_rank, read_active_rank


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "active_rank.jsonl"
    steps = [
        {"step": 10 * (i + 1), "layers": {"backbone.0.q": 8.0 - i, "vision.layers.0.q": 2.0 * i}}
        for i in range(8)
    ]
    path.write_text("".join(json.dumps(s) + "\n" for s in steps))
    return path


def test_the_log_reads_back_in_order(log):
    steps, names, rows = read_active_rank(log)
    assert steps == [10, 20, 30, 40, 50, 60, 70, 80]
    assert names == ["backbone.0.q", "vision.layers.0.q"] and rows[2] == [6.0, 4.0]


def test_last_quarter_means_average_the_last_quarter_of_the_logged_steps(log):
    # 8 logged steps: the last 2 (i = 6, 7)
    assert last_quarter_means(log) == {"backbone.0.q": 1.5, "vision.layers.0.q": 13.0}


def test_the_figure_is_drawn(log, tmp_path):
    out = plot_active_rank(log, tmp_path / "rank.png")
    assert out.stat().st_size > 1000
