r"""How far float rounding carries in an adapt.py run: does a row repeat on a machine that rounds
differently?

    python benchmarks/adapt_rounding.py --work outputs/bench/adapt_io_seed0_rerun --row 'LoRA r64' --name adapt_rounding

Reruns each --row of a finished adapt.py WORK from its own train_config.json, changing one thing: the
number of torch threads (1 instead of the cores), which changes the order of float additions and
nothing else, as another CPU does. Then, per row: the gap between the two runs'
logged losses step by step (plotted), and closed loop episode by episode against the original. A
row whose rerun repeats its original is not one that rounding moves between machines; merge_rounding.py
asks the same of merge.py's runs, where some trainings amplify it.

Writes docs/results/<--name>.md and <--name>_divergence.png. Reruns go to WORK/rounding/.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from pathlib import Path

from common import RESULTS, Results, command_line, result_name, shown, slug, train_timed, write_result
from merge_rounding import loss_gaps, plot, rerun_closed_loop, thread_count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--work", type=Path, required=True, help="a finished benchmarks/adapt.py work directory"
    )
    parser.add_argument(
        "--row", action="append", required=True, help="a row of that run, e.g. 'LoRA r64' (repeatable)"
    )
    parser.add_argument(
        "--name", type=result_name, default="adapt_rounding", help="result file name (without .md)"
    )
    args = parser.parse_args()
    work = args.work
    for row in args.row:
        run = work / "runs" / slug(row)
        if not (run / "eval.json").is_file():
            parser.error(f"{shown(run)} holds no evaluated run; is --row '{row}' a row of {shown(work)}?")

    from leanvla.train.state import config_from_json

    out = work / "rounding"
    done = Results(out)
    runs, gaps = {}, {}
    for row in args.row:
        original = work / "runs" / slug(row)
        cfg = config_from_json(
            json.loads((original / "train_config.json").read_text()), f"{row}: train_config.json"
        )
        then = cfg.threads or os.cpu_count() or 1  # 0 = one per core
        fewer = 1 if then > 1 else 2  # any other count reorders the additions
        runs[row] = replace(cfg, out=out / slug(row), threads=fewer)
        done.setdefault(row, {"threads": then, "rerun_threads": fewer, "train_s": train_timed(runs[row])})
        if "flipped" not in done[row]:
            done[row].update(rerun_closed_loop(runs[row].out, original))
            done.save()
        gaps[row] = loss_gaps(runs[row].out, original)

    figure = f"{args.name}_divergence.png"
    first = done[args.row[0]]
    change = f"{thread_count(first['rerun_threads'])} instead of {first['threads']}"
    plot(gaps, runs[args.row[0]].warmup_steps, change, RESULTS / figure)
    write_result(f"{args.name}.md", report(work, done, gaps, figure, args.row))


def report(work: Path, done: dict, gaps: dict, figure: str, rows: list[str]) -> str:
    from leanvla.report import pct

    lines = [
        "# Adapt: how far float rounding carries",
        "",
        f"Command: `{command_line()}`",
        "",
        f"Reruns of rows of {shown(work)} from their own train_config.json, changing only the torch thread "
        "count, which reorders float additions and nothing else. Closed loop on the original's protocol "
        "(same tasks, episodes and evaluation seed), episode by episode against the original.",
        "",
        "| row | threads, original -> rerun | largest loss gap | loss gap at the last step | success, original -> rerun "
        "| episodes with another outcome | with another length |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        d, g = done[row], [gap for _, gap in gaps[row]]
        lines.append(
            f"| {row} | {d['threads']} -> {d['rerun_threads']} | {max(g):.1e} | {g[-1]:.1e} | "
            f"{pct(d['original_mean'])} -> {pct(d['mean'])} | {d['flipped']} of {d['episodes']} | "
            f"{d['other_length']} of {d['episodes']} |"
        )
    lines += ["", f"![loss gaps]({figure})"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
