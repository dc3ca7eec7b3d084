r"""Pool `adapt.py --replicate` runs over seeds and read the goal off the pooled rows.

One seed's 500 episodes per row give intervals of about +-4 points, wider than the gaps the goal
asks about (LoRA-SP >= the best LoRA, within 2 points of full fine-tuning). Runs on several seeds
(same tasks, steps and base; each its own recording, initialisation and evaluation seed) pool into
rows of seeds x tasks x episodes, and each LoRA-SP row's gap to the best LoRA and to full
fine-tuning gets a paired interval over the (seed, task) cells, which share their evaluation
positions between rows.

    python benchmarks/adapt_seeds.py --work outputs/bench/adapt_multi10 \\
        --work outputs/bench/adapt_multi10_seed1 --work outputs/bench/adapt_multi10_seed2 \\
        --name adapt_multi10_pooled

Reads only each WORK/results.json (nothing is trained or evaluated); pools the rows present in every
run; writes docs/results/<--name>.md and <--name>_rank_success.png.
"""

from __future__ import annotations

from pathlib import Path

from adapt import adapter_cells, goal_lines, plot_rank_success
from common import RESULTS, write_result
from pooling import (
    PAIRED_NOTE,
    evaluation_seed,
    gap_cell,
    paired_gap,
    parse_runs,
    pooled_success,
    protocol_shape,
    report_head,
)

EXPORTED = ", exported (mean routing)"


def pooled_record(records: list[dict], episodes: int) -> dict:
    """One row over seeds: success over every episode (Wilson interval on the pooled count), the
    active rank averaged, trainable parameters and rank as they are."""
    active = [r["active_rank"] for r in records if r.get("active_rank") is not None]
    return {
        **pooled_success(records, episodes),
        "active_rank": sum(active) / len(active) if active else None,
        "rank": records[0].get("rank"),
        "trainable": records[0].get("trainable"),
    }


def main() -> None:
    parser, args, runs = parse_runs(__doc__, "benchmarks/adapt.py --replicate")
    shared = [n for n in runs[0] if all(n in run for run in runs)]
    trained = [n for n in shared if not n.endswith(EXPORTED)]
    names = trained + [n for n in shared if n.endswith(EXPORTED)]  # the folds below the rows they fold
    if "full fine-tuning" not in trained or not any(n.startswith("LoRA r") for n in trained):
        parser.error("the runs share no full fine-tuning or LoRA row; pool adapt.py --replicate runs")
    pooled = {n: pooled_record([run[n] for run in runs], protocol_shape(runs[0])[1]) for n in names}
    plot_rank_success(pooled, trained, RESULTS / f"{args.name}_rank_success.png")
    write_result(
        f"{args.name}.md", "\n".join(pooled_report(args.work, runs, pooled, trained, args.name)) + "\n"
    )


def pooled_report(
    works: list[Path], runs: list[dict], pooled: dict, trained: list[str], name: str
) -> list[str]:
    """The report's lines: every pooled row beside its seeds, the goal read off the pooled trained
    rows, each LoRA-SP row's paired gaps, the pooled rank-success figure."""
    from leanvla.report import pct

    n_tasks = protocol_shape(runs[0])[0]
    seeds = [evaluation_seed(run) for run in runs]
    lora_best = max((n for n in trained if n.startswith("LoRA r")), key=lambda n: pooled[n]["mean"])
    seed_cols = " | ".join(f"seed {s}" for s in seeds)
    lines = [
        *report_head("Adapt", works, runs, " Mean active rank: averaged over the seeds."),
        "",
        f"| variant | trainable params | mean active rank | {seed_cols} | pooled [95% CI] |",
        "|" + "---|" * (4 + len(seeds)),
    ]
    for n, r in pooled.items():
        per_seed = " | ".join(pct(run[n]["mean"]) for run in runs)
        lines.append(
            f"| {' | '.join(adapter_cells(n, r))} | {per_seed} "
            f"| **{pct(r['mean'])}** [{pct(r['ci'][0])}, {pct(r['ci'][1])}] |"
        )
    lines += [
        "",
        "## Against the goal, pooled",
        "",
        *goal_lines(pooled, trained),
        "",
        "## Each LoRA-SP row's gap, paired",
        "",
        f"Success of the row minus that of the best pooled LoRA ({lora_best}) and of full fine-tuning, in points: "
        f"the mean over the {len(runs) * n_tasks} (seed, task) cells, which equals the pooled gap, with a 95% "
        "t interval over the cells (each cell compares the two rows on the same evaluation positions). "
        + PAIRED_NOTE,
        "",
        f"| LoRA-SP row | mean active rank | vs {lora_best} | vs full fine-tuning |",
        "|---|---|---|---|",
    ]
    for n in trained:
        if not n.startswith("LoRA-SP"):
            continue
        cells = [gap_cell(paired_gap(runs, n, against)) for against in (lora_best, "full fine-tuning")]
        lines.append(f"| {n} | {adapter_cells(n, pooled[n])[2]} | {' | '.join(cells)} |")
    lines += [
        "",
        "## Success against the rank each token uses, pooled",
        "",
        f"![pooled success against rank per token]({name}_rank_success.png)",
        "",
        "As in the single-seed reports: LoRA at its fixed rank, LoRA-SP at its mean active rank, 95% intervals of "
        "the pooled counts; the band is full fine-tuning's.",
    ]
    return lines


if __name__ == "__main__":
    main()
