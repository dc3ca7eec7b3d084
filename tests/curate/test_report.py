"""curate's report: the per-task table counts and averages each task's own demonstrations."""

from __future__ import annotations

from leanvla.curate.report import task_table


def test_the_task_table_counts_and_averages_per_task_in_first_seen_order():
    lines = task_table(["b", "a", "b", "b"], [1.0, -5.0, 2.0, 6.0], [True, False, False, True])
    assert lines[2:] == ["| b | 3 | 2 | 67% | +3.00 |", "| a | 1 | 0 | 0% | -5.00 |"]


def test_the_task_table_names_and_writes_the_column_it_is_given():
    lines = task_table(["a", "a"], [0.001, 0.002], [True, False], "mean self-influence", lambda v: f"{v:.3g}")
    assert lines[0].endswith("| mean self-influence |")
    assert lines[2] == "| a | 2 | 1 | 50% | 0.0015 |"
