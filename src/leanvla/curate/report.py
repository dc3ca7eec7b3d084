"""curate's report.md: what was kept per task, how scores spread, the best and worst demonstrations."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch

from leanvla.atomic import write_bytes_atomic
from leanvla.curate.scores import RANKINGS
from leanvla.report import pyplot, save_figure

SHOWN = 4  # best and worst demonstrations pictured


def _short(text: str, n: int = 28) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def plot_scores(
    path: Path,
    names: list[str],
    score: torch.Tensor,
    task_of: list[int],
    selected: torch.Tensor,
    label: str,
) -> None:
    """Per task: every demonstration's score (`label` names it), kept ones filled."""
    plt = pyplot()
    tasks = sorted(set(task_of))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(tasks) + 1.5), 3.4))
    task_t = torch.tensor(task_of)
    generator = torch.Generator().manual_seed(0)  # the horizontal jitter only
    for x, k in enumerate(tasks):
        members = task_t == k
        values = score[members].numpy()
        ax.boxplot(values, positions=[x], widths=0.5, showfliers=False)
        jitter = x + 0.15 * (torch.rand(len(values), generator=generator).numpy() - 0.5)
        kept = selected[members].numpy()
        ax.scatter(jitter[kept], values[kept], s=10, color="tab:green", label="kept" if x == 0 else None)
        ax.scatter(
            jitter[~kept],
            values[~kept],
            s=10,
            facecolors="none",
            edgecolors="tab:red",
            label="dropped" if x == 0 else None,
        )
    ax.set_xticks(range(len(tasks)), [_short(names[k]) for k in tasks], rotation=20, ha="right", fontsize=7)
    ax.set_ylabel(label)
    ax.set_title("scores per task", fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def plot_kept(path: Path, names: list[str], kept: dict[int, tuple[int, int]], fraction: float) -> None:
    """Per task: the fraction of its demonstrations kept, against the overall fraction."""
    plt = pyplot()
    tasks = sorted(kept)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(tasks) + 1.5), 3.0))
    ax.bar(range(len(tasks)), [kept[k][0] / kept[k][1] for k in tasks], color="tab:blue")
    ax.axhline(fraction, color="black", linestyle="--", linewidth=1, label=f"overall {fraction:.0%}")
    ax.set_xticks(range(len(tasks)), [_short(names[k]) for k in tasks], rotation=20, ha="right", fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("kept fraction")
    ax.legend(fontsize=7)
    save_figure(fig, path)


def plot_extremes(path: Path, data, rows, names: list[str], score: torch.Tensor) -> None:
    """Middle frames of the best and worst demonstrations (first camera), with their scores."""
    plt = pyplot()
    order = score.argsort(descending=True).tolist()
    shown = min(SHOWN, len(order) // 2) or 1
    picks = [("best", i) for i in order[:shown]] + [("worst", i) for i in order[::-1][:shown]]
    fig, axes = plt.subplots(2, shown, figsize=(2.0 * shown, 4.4), squeeze=False)
    for j, (kind, i) in enumerate(picks):
        ax = axes[j // shown][j % shown]
        frames = torch.nonzero(data.episode_index == rows[i].episode).flatten()
        image = data.images([int(frames[len(frames) // 2])])[0, 0].permute(1, 2, 0).numpy()
        ax.imshow(image)
        ax.set_title(
            f"{kind}: ep {rows[i].episode}\n{_short(names[rows[i].task], 20)}\n{float(score[i]):+.2f}",
            fontsize=7,
        )
        ax.axis("off")
    save_figure(fig, path)


def seconds(timing: dict, prefix: str) -> float:
    """A timing summed over its parts (training and validation demonstrations are timed apart)."""
    return sum(v for k, v in timing.items() if k.startswith(prefix))


def _signed(value) -> str:
    """A score cell: signed to two places, or n/a where there was nothing to score against."""
    value = float(value)
    return "n/a" if math.isnan(value) else f"{value:+.2f}"


def task_table(
    tasks: list[str],
    values: list[float],
    selected: list[bool],
    column: str = "mean score",
    cell: Callable[[float], str] = lambda v: f"{v:+.2f}",
) -> list[str]:
    """Markdown rows per task (first-seen order): demonstrations, kept, kept fraction, and the mean of
    `values` over the task's demonstrations (headed `column`, written by `cell`)."""
    lines = [f"| task | demonstrations | kept | kept fraction | {column} |", "|---|---|---|---|---|"]
    for task in dict.fromkeys(tasks):
        mine = [i for i, t in enumerate(tasks) if t == task]
        kept = sum(selected[i] for i in mine)
        mean = sum(values[i] for i in mine) / len(mine)
        lines.append(f"| {task} | {len(mine)} | {kept} | {kept / len(mine):.0%} | {cell(mean)} |")
    return lines


def write_report(
    out: Path, cfg, data, rows, names: list[str], scores, selected: torch.Tensor, timing: dict, summary: dict
) -> None:
    task_of = [r.task for r in rows]
    # Figures and tables follow the ranking that made the selection.
    ranking, label = scores.ranking(cfg.select_by), RANKINGS[cfg.select_by]
    kept = {}
    for k in sorted(set(task_of)):
        members = [i for i, t in enumerate(task_of) if t == k]
        kept[k] = (int(selected[members].sum()), len(members))
    plot_scores(out / "scores_per_task.png", names, ranking, task_of, selected, label)
    plot_kept(out / "kept_per_task.png", names, kept, cfg.fraction)
    plot_extremes(out / "best_and_worst.png", data, rows, names, ranking)

    against = (
        f"against {summary['validation']} validation demonstrations"
        if summary["validation"]
        else "without validation demonstrations (typicality only; the influence columns are empty)"
    )
    collect_s = seconds(timing, "collect_s")
    projection_s = seconds(timing, "projection_s")
    lines = [
        "# Curation report (ATHENA influence)",
        "",
        f"Policy `{Path(cfg.policy)}`, data `{Path(cfg.data)}`: {summary['demonstrations']} demonstrations scored "
        f"{against}; phi has P = {summary['dim']} dims "
        f"(k_in = {cfg.k_in}, k_out = {cfg.k_out} per Linear of {cfg.stacks}; other parameters: {cfg.other}); "
        f"curvature {summary['curvature']}, damping {cfg.damping} x mean eigenvalue; alpha {cfg.alpha}; "
        f"kept {int(selected.sum())} by {label} ({cfg.fraction:.0%} overall, at least {cfg.task_floor:.0%} of "
        "each task).",
        "",
        "| stage | seconds |",
        "|---|---|",
        f"| collect (forward + backward + projection) | {collect_s:.1f} |",
        f"| of which projection hooks | {projection_s:.1f} |",
        f"| curvature | {timing['curvature_s']:.2f} |",
        f"| score + select | {timing['score_s']:.3f} |",
        "",
    ]
    by_task = sorted(range(len(rows)), key=lambda i: task_of[i])  # tasks in index order
    task_names, kept_flags = [names[task_of[i]] for i in by_task], [bool(selected[i]) for i in by_task]
    if cfg.select_by == "typicality":
        # Typicality is a z-score within each task, so its task mean is 0 by construction; the raw
        # self-influence says instead which tasks the policy finds hardest to fit.
        self_influence = [float(scores.self_influence[i]) for i in by_task]
        lines += task_table(
            task_names, self_influence, kept_flags, "mean self-influence", lambda v: f"{v:.3g}"
        )
    else:
        lines += task_table(task_names, [float(ranking[i]) for i in by_task], kept_flags)
    order = ranking.argsort(descending=True).tolist()
    for title, picks in (("Best", order[:5]), ("Worst", order[::-1][:5])):
        lines += [
            "",
            f"{title} demonstrations:",
            "",
            "| episode | task | local | global | score | self-influence | typicality |",
            "|---|---|---|---|---|---|---|",
        ]
        for i in picks:
            lines.append(
                f"| {rows[i].episode} | {names[rows[i].task]} | {_signed(scores.local[i])} | "
                f"{_signed(scores.global_[i])} | {_signed(scores.score[i])} | "
                f"{float(scores.self_influence[i]):.3g} | {_signed(scores.typicality[i])} |"
            )
    lines += [
        "",
        "![scores per task](scores_per_task.png)",
        "![kept per task](kept_per_task.png)",
        "![best and worst](best_and_worst.png)",
        "",
    ]
    write_bytes_atomic(out / "report.md", "\n".join(lines).encode())
