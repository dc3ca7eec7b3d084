"""Pooling one benchmark's runs over seeds: the checks that make runs poolable, success over every
episode of every seed, and paired gaps between two rows over the (seed, task) cells.

Each run is a WORK/results.json of result_record rows (name -> record) written by a benchmark on
one seed. Runs pool when they evaluate the same tasks with the same episodes per task on distinct
evaluation seeds. Used by adapt_seeds.py and merge_seeds.py.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

from common import RESULTS, command_line, result_name, shown, signed_points


def parse_runs(doc: str, producer: str) -> tuple[argparse.ArgumentParser, argparse.Namespace, list[dict]]:
    """The pooling scripts' command line (--work twice or more, --name) and the runs it names; runs
    that do not pool end the program with one line and exit code 2."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--work", type=Path, action="append", required=True, help=f"a {producer} WORK (give two or more)"
    )
    parser.add_argument("--name", type=result_name, required=True, help="docs/results/<name>.md")
    args = parser.parse_args()
    if len(args.work) < 2:
        parser.error("give --work at least twice: pooling needs two or more seeds")
    try:
        return parser, args, load_runs(args.work, producer)
    except ValueError as error:
        parser.error(str(error))


def load_runs(works: list[Path], producer: str) -> list[dict]:
    """Each WORK's result records (name -> record), checked to be one protocol on distinct seeds;
    ValueError says which runs do not pool and what to do. `producer` is the command that writes a
    WORK (for the message when one has no results)."""
    runs = []
    for work in works:
        path = work / "results.json"
        if not path.is_file():
            raise ValueError(f"{path}: no results; run {producer} --work {work} first")
        runs.append(
            {n: r for n, r in json.loads(path.read_text()).items() if isinstance(r, dict) and "mean" in r}
        )
    layouts = {(protocol_shape(run), tuple(next(iter(run.values()))["per_task"])) for run in runs}
    if len(layouts) > 1:
        raise ValueError(
            f"{', '.join(map(str, works))}: the runs evaluate different tasks or episode counts; pool one protocol"
        )
    seeds = [evaluation_seed(run) for run in runs]
    if len(set(seeds)) < len(seeds):
        raise ValueError(
            f"{', '.join(map(str, works))}: evaluation seeds {seeds} repeat; pool runs on distinct seeds"
        )
    return runs


def protocol_shape(run: dict) -> tuple[int, int]:
    """(tasks, episodes per task) from a record's protocol line ("10 tasks x 50 episodes, ...")."""
    tasks, episodes = re.match(r"(\d+) tasks x (\d+) episodes", next(iter(run.values()))["protocol"]).groups()
    return int(tasks), int(episodes)


def evaluation_seed(run: dict) -> int:
    return int(re.search(r"evaluation seed (\d+)", next(iter(run.values()))["protocol"]).group(1))


def report_head(title: str, works: list[Path], runs: list[dict], more: str = "") -> list[str]:
    """A pooled report's first lines: the title with its seeds, the command, and which runs pool into
    how many episodes per row (`more` continues that paragraph)."""
    n_tasks, episodes = protocol_shape(runs[0])
    seeds = [evaluation_seed(run) for run in runs]
    reports = [f"[{w.name}.md]({w.name}.md)" for w in works if (RESULTS / f"{w.name}.md").exists()]
    return [
        f"# {title}, pooled over seeds {', '.join(map(str, seeds))}: {n_tasks} tasks",
        "",
        f"Command: `{command_line()}`",
        "",
        "Runs: "
        + ", ".join(f"`{shown(w)}` (seed {s})" for w, s in zip(works, seeds))
        + (f"; their reports: {', '.join(reports)}" if reports else "")
        + f". Each row pools {len(runs)} seeds x {n_tasks} tasks x {episodes} episodes = "
        f"{len(runs) * n_tasks * episodes} episodes; success in % with the 95% Wilson interval of the pooled "
        "count." + more,
    ]


def pooled_success(records: list[dict], episodes: int) -> dict:
    """One row's success over every episode of every seed, with the Wilson interval of the pooled count."""
    from leanvla.evaluate import wilson

    tasks = list(records[0]["per_task"])
    successes = sum(round(r["per_task"][t] * episodes) for r in records for t in tasks)
    total = episodes * len(tasks) * len(records)
    return {"mean": successes / total, "ci": list(wilson(successes, total))}


def paired_gap(runs: list[dict], row: str, against: str) -> tuple[float, float, float]:
    """Mean success gap row - against over the (seed, task) cells, with a 95% t interval: the cells
    pair the two rows on the same evaluation positions, so seed-to-seed and task-to-task spread
    cancels out of each difference."""
    gaps = [
        run[row]["per_task"][t] - run[against]["per_task"][t] for run in runs for t in run[row]["per_task"]
    ]
    n = len(gaps)
    mean = sum(gaps) / n
    sd = math.sqrt(sum((g - mean) ** 2 for g in gaps) / (n - 1))
    half = t_quantile_975(n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def seeds_to_decide(gap: tuple[float, float, float], line: float, seeds: int) -> int | None:
    """How many seeds would put a paired gap's interval clear of `line` if its mean and spread held
    (the half-width falls as one over the root of the cells); None when the mean sits on the line.
    A floor: the cells of one seed share their training runs, so they are not independent."""
    mean, lo, hi = gap
    if mean == line:
        return None
    return math.ceil(seeds * ((hi - lo) / 2 / abs(mean - line)) ** 2)


def gap_cell(gap: tuple[float, float, float]) -> str:
    """A paired gap in points as the tables show it: "+0.4 [-1.3, +2.1]" (never "-0.0")."""
    mean, lo, hi = (signed_points(g) for g in gap)
    return f"{mean} [{lo}, {hi}]"


def t_quantile_975(dof: int) -> float:
    """Student t's 97.5% quantile (scipy is not a dependency): Cornish-Fisher expansion around the
    normal's 1.96, within 0.01 of the exact value from 5 degrees of freedom up."""
    z = 1.959964
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / dof + g2 / dof**2 + g3 / dof**3


PAIRED_NOTE = (
    "An interval that spans 0 leaves the sign of the gap open at this many episodes. The cells of one seed share "
    "their training runs, so with few seeds the interval is, if anything, too narrow."
)
