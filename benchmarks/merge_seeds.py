r"""Pool `merge.py` runs over seeds and read CapVector's goal off the pooled rows.

One seed's 250 episodes per row give intervals of about +-6 points, wider than the gaps the goal
asks about ((c) within 2 points of (b), (c) above (a)). Runs on several seeds (same tasks, steps and
objective; each its own recording, initialisation and evaluation seed) pool into rows of seeds x
tasks x episodes, and every comparison the goal makes gets a paired interval over the (seed, task)
cells, which share their evaluation positions between rows. The wall-time goal is read per seed:
each seed has its own target loss ((a)'s final validation loss).

    python benchmarks/merge_seeds.py --work outputs/bench/merge --work outputs/bench/merge_seed1 \
        --work outputs/bench/merge_seed2 --work outputs/bench/merge_seed3 --work outputs/bench/merge_seed4 \
        --name merge_pooled
    python benchmarks/merge_seeds.py --work outputs/bench/merge_demos10 --work outputs/bench/merge_demos10_seed1 \
        --name merge_demos10_pooled      # runs of one --target-demos pool together, not with others
    python benchmarks/merge_seeds.py --work outputs/bench/merge_dropout --work outputs/bench/merge_dropout_seed1 \
        --name merge_dropout_pooled      # likewise one --state-dropout, one objective and one --head

Reads only each WORK/results.json (nothing is trained or evaluated); writes docs/results/<--name>.md
and <--name>_gaps.png.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from common import RESULTS, write_result
from merge import (
    AUX_ROW,
    HELD_OUT,
    META_ROW,
    META_ROWS,
    PLAIN,
    VARIANTS,
    equal_step_saving,
    steps_to_target,
    wall_to_target,
)
from pooling import (
    PAIRED_NOTE,
    evaluation_seed,
    gap_cell,
    paired_gap,
    parse_runs,
    pooled_success,
    protocol_shape,
    report_head,
    seeds_to_decide,
)

NO_ORTH = next(name for name, (start, _, orth) in VARIANTS.items() if start != "base" and not orth)


def verdict(gap: tuple[float, float, float], line: float, seeds: int) -> str:
    """Whether a paired gap clears `line` (a fraction): with its whole interval, with none of it, or
    undecided (the interval spans the line), then with how many seeds it might be decided."""
    mean, lo, hi = gap
    if lo > line:
        return "holds, the whole interval above the line"
    if hi < line:
        return "fails, the whole interval below the line"
    said = f"the mean {'meets' if mean >= line else 'misses'} it, but the interval spans the line: undecided"
    needed = seeds_to_decide(gap, line, seeds)
    if needed is None:
        return said
    return (
        f"{said}; were its mean and spread to hold, about {needed} seeds would clear the interval of the "
        "line (at least: one seed's cells are not independent)"
    )


def main() -> None:
    parser, args, runs = parse_runs(__doc__, "benchmarks/merge.py")
    missing = [n for n in VARIANTS if not all(n in run for run in runs)]
    if missing:
        parser.error(f"'{missing[0]}' is missing from some runs; finish every merge.py run before pooling")
    extras = [json.loads((w / "results.json").read_text()) for w in args.work]
    # what every pooled run must share; the defaults are what runs from before each option recorded
    shared = {}
    for key, before, differ, option in (
        ("aux_objective", None, "auxiliary objectives", "one objective"),
        ("target_demos", 50 - HELD_OUT, "numbers of target demonstrations per task", "one --target-demos"),
        ("state_dropout", 0.0, "state dropouts", "one --state-dropout"),
        ("head", "flow", "action heads", "one --head"),
    ):
        values = {e.get(key, before) for e in extras}
        if len(values) > 1:
            parser.error(
                f"the runs' {differ} differ ({', '.join(sorted(map(str, values)))}); pool runs of {option}"
            )
        shared[key] = values.pop()
    for what, lacks in (
        ("step_ms (its runs predate timing a step's parts apart)", lambda e, run: "step_ms" not in e),
        (
            "along_merged (its runs predate measuring the update against the merged vector)",
            lambda e, run: any("along_merged" not in run[n] for n in META_ROWS),
        ),
    ):
        stale = [w for w, e, run in zip(args.work, extras, runs) if lacks(e, run)]
        if stale:
            parser.error(
                f"{stale[0]} has no {what}; rerun benchmarks/merge.py with that run's options "
                "to add it (nothing is retrained)"
            )
    parts = [e["step_ms"] for e in extras]
    episodes = protocol_shape(runs[0])[1]
    pooled = {n: pooled_success([run[n] for run in runs], episodes) for n in VARIANTS}
    plot_gaps(runs, RESULTS / f"{args.name}_gaps.png")
    lines = pooled_report(args.work, runs, pooled, parts, shared, args.name)
    write_result(f"{args.name}.md", "\n".join(lines) + "\n")


def pooled_report(
    works: list[Path],
    runs: list[dict],
    pooled: dict,
    parts: list,
    shared: dict,
    name: str,
) -> list[str]:
    """The report's lines: every pooled row beside its seeds, the goal read off the paired gaps and
    the per-seed wall times, what the auxiliary objective adds and costs, the ablations."""
    from leanvla.report import pct

    n_tasks = protocol_shape(runs[0])[0]
    seeds = [evaluation_seed(run) for run in runs]
    per_seed = lambda values: " / ".join(values)  # noqa: E731
    lines = [
        *report_head(
            "Merge (CapVector)",
            works,
            runs,
            (
                f" Auxiliary objective (the vector's auxiliary run and (b)): {shared['aux_objective']}."
                if shared["aux_objective"]
                else ""
            )
            + (f" Every policy has the {shared['head']} action head." if shared["head"] != "flow" else "")
            + f" Targets trained on {shared['target_demos']} demonstrations per task."
            + (
                f" Every fine-tuning dropped the proprio state in {shared['state_dropout']:g} of its samples."
                if shared["state_dropout"]
                else ""
            )
            + f" Per-seed columns read seed {per_seed(map(str, seeds))}. Steps to target: first logged step whose "
            "validation loss is <= that seed's (a) final one.",
        ),
        "",
        "| variant | ms/step | steps to target | success per seed | pooled [95% CI] | minus (a), paired |",
        "|---|---|---|---|---|---|",
    ]
    for n, r in pooled.items():
        ms = per_seed(f"{run[n]['s_per_step'] * 1000:.0f}" for run in runs)
        steps = per_seed(str(steps_to_target(run, n) or "not reached") for run in runs)
        lines.append(
            f"| {n} | {ms} | {steps} | {per_seed(pct(run[n]['mean']) for run in runs)} "
            f"| **{pct(r['mean'])}** [{pct(r['ci'][0])}, {pct(r['ci'][1])}] "
            f"| {gap_cell(paired_gap(runs, n, PLAIN)) if n != PLAIN else ''} |"
        )

    def ratio(run: dict) -> str:
        c, b = wall_to_target(run, META_ROW), wall_to_target(run, AUX_ROW)
        if c is None or b is None:
            return "not reached by " + " and ".join(x for x, w in (("(c)", c), ("(b)", b)) if w is None)
        return f"{c / b:.2f}x"

    c_vs_b, c_vs_a, b_vs_a = (
        paired_gap(runs, META_ROW, AUX_ROW),
        paired_gap(runs, META_ROW, PLAIN),
        paired_gap(runs, AUX_ROW, PLAIN),
    )
    cells = f"{len(runs) * n_tasks} (seed, task) cells"
    objective_x = statistics.median(ms["auxiliary"] / ms["plain"] for ms in parts)
    penalty_share = statistics.median(ms["penalty"] / ms["plain"] for ms in parts)
    lines += [
        "",
        "## Against the goal, pooled",
        "",
        f"Gaps in points: the mean over the {cells}, which equals the pooled gap, with a 95% t interval over "
        "the cells (each compares two rows on the same evaluation positions). " + PAIRED_NOTE,
        "",
        f"- (c) - (b): {gap_cell(c_vs_b)} (goal: >= -2, within 2 points of (b)): {verdict(c_vs_b, -0.02, len(runs))}",
        f"- (c) - (a): {gap_cell(c_vs_a)} (goal: > 0): {verdict(c_vs_a, 0.0, len(runs))}",
        f"- wall time to the target loss, (c) / (b), per seed: {per_seed(ratio(run) for run in runs)} (goal: <= 0.7x)",
        "",
        "## What the auxiliary objective adds, and what it and the penalty cost",
        "",
        "A capability vector can carry at most what the auxiliary objective adds over plain fine-tuning:",
        "",
        f"- (b) - (a): {gap_cell(b_vs_a)}",
        "- a step's parts, forward and backward timed in turn on each seed's meta model (merge.py's "
        '"What a step\'s parts cost"), per seed:',
        *(
            f"  - seed {seed}: plain {ms['plain']:.0f} ms; with the objective {ms['auxiliary']:.0f} ms "
            f"({ms['auxiliary'] / ms['plain']:.2f}x); the penalty {ms['penalty']:.1f} ms "
            f"({100 * ms['penalty'] / ms['plain']:.0f}% of plain)"
            for seed, ms in zip(seeds, parts)
        ),
        f"  - the median over seeds: the objective {objective_x:.2f}x plain, the penalty {100 * penalty_share:.0f}% "
        "of plain. Every seed times the same shapes, so the spread between seeds is the machine's timing noise.",
        "",
        "At equal steps (c) saves what the objective costs minus what the penalty costs: "
        f"{equal_step_saving(1.0, objective_x, penalty_share)} of (b)'s compute at the medians, against the "
        "goal's 30%; only reaching the target loss in fewer steps could save more.",
        "",
        "## Ablations, paired against (c)",
        "",
        "| ablation | minus (c), points [95% CI] |",
        "|---|---|",
        *(
            f"| {n.removeprefix('ablation: ')} | {gap_cell(paired_gap(runs, n, META_ROW))} |"
            for n in list(VARIANTS)[3:]
        ),
        "",
        *penalty_lines(runs, seeds),
        "",
        "## Every row against plain SFT",
        "",
        f"![paired gaps to (a)]({name}_gaps.png)",
        "",
        "Each row's success minus (a)'s over the (seed, task) cells, with its 95% t interval; the crosses are "
        "the seeds' own gaps.",
    ]
    return lines


def penalty_lines(runs: list[dict], seeds: list[int]) -> list[str]:
    """What the penalty protects: per seed, the share of the merged vector each meta-model row's
    fine-tuning undid and its alignment with tau, then the penalty's effect on both and on success."""
    from leanvla.merge.run import undone_percent

    undone = {n: [undone_percent(run[n]["along_merged"]) for run in runs] for n in META_ROWS}
    cos_sq = {n: [run[n]["along_merged"]["mean_squared_cosine"] for run in runs] for n in META_ROWS}
    size = [run[NO_ORTH]["along_merged"]["norm_ratio"] for run in runs]
    with_penalty = [x for n in META_ROWS if n != NO_ORTH for x in undone[n]]
    per_seed = lambda values: " / ".join(values)  # noqa: E731
    return [
        "## What the penalty protects",
        "",
        "Each meta-model row's update against the merged vector, per seed (merge.py's \"What fine-tuning did to the merged "
        "vector\"): the share of the merged lambda tau the fine-tuning undid, and the penalty's own measure, "
        "cos^2 per matrix averaged over the matrices (a random update's expectation: "
        f"{runs[0][META_ROW]['along_merged']['random_squared_cosine']:.1e}).",
        "",
        f"| variant | share of lambda tau undone, seed {per_seed(map(str, seeds))} | mean cos^2 per matrix |",
        "|---|---|---|",
        *(
            f"| {n} | {per_seed(f'{x:.1f}%' for x in undone[n])} "
            f"| {per_seed(f'{x:.1e}' for x in cos_sq[n])} |"
            for n in META_ROWS
        ),
        "",
        f"Without the penalty, plain SFT undoes only {min(undone[NO_ORTH]):.1f}% to {max(undone[NO_ORTH]):.1f}% of "
        f"the merged vector: its update, {statistics.median(size):.1f}x that vector's size (median), lies almost "
        f"orthogonal to tau already. With it, {min(with_penalty):.1f}% to {max(with_penalty):.1f}% (below 0: it added to it), its updates "
        f"{statistics.median(cos_sq[NO_ORTH]) / statistics.median(cos_sq[META_ROW]):.0f}x less aligned with tau "
        f"(medians). Switching the penalty off changes (c)'s success by {gap_cell(paired_gap(runs, NO_ORTH, META_ROW))} "
        "points: the penalty does what it says, and what it prevents costs nothing measurable here.",
    ]


def plot_gaps(runs: list[dict], out: Path) -> None:
    """Each row's paired gap to (a) with its interval, and every seed's gap as a cross: a row whose bar
    crosses 0 has not been told apart from plain SFT."""
    from leanvla.report import pyplot, save_figure

    plt = pyplot()
    names = list(VARIANTS)[1:]
    fig, ax = plt.subplots(figsize=(6.4, 0.5 * len(names) + 1.2))
    for y, n in enumerate(names):
        mean, lo, hi = (100 * g for g in paired_gap(runs, n, PLAIN))
        ax.errorbar(mean, y, xerr=[[mean - lo], [hi - mean]], fmt="o", color="tab:blue", capsize=3)
        seed_gaps = [100 * (run[n]["mean"] - run[PLAIN]["mean"]) for run in runs]
        ax.scatter(seed_gaps, [y] * len(runs), color="0.4", s=12, marker="x", zorder=3)
    ax.axvline(0, color="0.5", lw=1)
    ax.set_yticks(range(len(names)), [n.removeprefix("ablation: ") for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("success minus plain SFT's (points)")
    ax.legend(
        handles=[
            plt.Line2D([], [], marker="o", color="tab:blue", label="pooled, 95% t interval"),
            plt.Line2D([], [], marker="x", color="0.4", lw=0, label="each seed"),
        ],
        fontsize=8,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=2,
        frameon=False,
    )
    save_figure(fig, out, dpi=110)


if __name__ == "__main__":
    main()
