"""Commands given fewer cores than the machine has: `leanvla train`'s default thread count
(--threads 0) and `leanvla eval`'s default worker count now, sized by the cores the process may
use, against an earlier revision's, sized by the machine.

    python benchmarks/cores.py                        # about 15 minutes on 2 CPU cores

Each run is a new process: `leanvla train` on the LeRobot fixture (../shared/fixtures) at the
command's defaults (model `small`, batch 64) for --steps steps, logged every --log-every, seed 0,
the frame cache off, timed as its seconds a step over the logged windows after the first (no
start-up, no warm-up); then `leanvla eval` of the policy the first whole-machine training run of
this checkout wrote, --eval-episodes episodes on each of its 3 tasks, seed 0, timed whole (its
worker processes' start included: that is what a second worker costs). Each way runs --repeats
times, the two revisions in turn, the fastest run counting. Three ways to give a process fewer
cores:

1. none: the whole machine;
2. affinity: the process may run on --cores of the machine's cores (`os.sched_setaffinity`, what
   `taskset`, Slurm and a container's cpuset do);
3. quota: a cgroup CPU quota of --cores cores (what `docker --cpus` and a Kubernetes CPU limit do):
   the scheduler runs the process that many cores' worth of each 100 ms, then stops it. Made as a
   new cgroup under /sys/fs/cgroup, so it needs root and a cgroup filesystem it may write; where
   it cannot be made the way is skipped, saying why.

The earlier revision (--against, default 15e64c7: training started os.cpu_count() threads divided
by the processes, evaluation 2 workers) runs from a temporary git worktree. The threads and
workers each run recorded are shown. Asserted: on the whole machine both revisions train on the
same threads and log the same losses; in every way both evaluate to the same episodes' success.
Writes docs/results/NAME.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from common import REPO, command_line, leanvla_at, result_name, source_at, write_result

FIXTURE = REPO.parent / "shared" / "fixtures" / "lerobot_metaworld_v30"
PERIOD_US = 100_000
COMMANDS = ("train", "eval")


def train_run(src: Path, out: Path, args, limit: Callable | None) -> dict:
    """Seconds a step after the first logged window, the threads it trained on, its losses."""
    options = ["--data", str(FIXTURE), "--out", str(out), "--steps", str(args.steps), "--seed", "0"]
    leanvla_at(src, ["train", *options, "--log-every", str(args.log_every)], limit, LEANVLA_CACHE="off")
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    batch = json.loads((out / "train_config.json").read_text())["batch_size"]
    windows = [batch / record["samples_per_s"] for record in logged[1:]]
    (start,) = json.loads((out / "environment.json").read_text())
    return {
        "seconds": sum(windows) / len(windows),
        "count": start["torch_threads"],
        "same": [record["loss"] for record in logged],
    }


def eval_run(src: Path, out: Path, args, limit: Callable | None, policy: Path) -> dict:
    """Wall seconds, the workers it ran, and each episode's success."""
    options = ["--policy", str(policy), "--episodes", str(args.eval_episodes), "--seed", "0"]
    seconds = leanvla_at(
        src, ["eval", *options, "--save-rollouts", "0", "--out", str(out)], limit, LEANVLA_CACHE="off"
    )
    result = json.loads(out.read_text())
    return {
        "seconds": seconds,
        "count": result["environment"]["workers"],
        "same": [(e["task"], e["success"]) for e in result["episodes"]],
    }


def pinned(cores: int) -> Callable:
    """Run on the first `cores` cores this process may use."""
    allowed = sorted(os.sched_getaffinity(0))[:cores]
    return lambda: os.sched_setaffinity(0, allowed)


class QuotaCgroup:
    """A new cgroup with a CPU quota of `cores` (v2's cpu.max, else v1's cpu controller). Raises
    OSError where this process may not make one."""

    def __init__(self, cores: int):
        mount, name = Path("/sys/fs/cgroup"), f"leanvla-bench-{os.getpid()}"
        controllers = mount / "cgroup.controllers"
        if controllers.is_file() and "cpu" in controllers.read_text().split():
            self.path = mount / name
            self.path.mkdir()
            (self.path / "cpu.max").write_text(f"{cores * PERIOD_US} {PERIOD_US}")
        else:
            self.path = mount / "cpu" / name
            self.path.mkdir()
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(cores * PERIOD_US))

    def enter(self) -> None:
        """Move this process into the cgroup (run in the new process, before it starts)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def remove(self) -> None:
        self.path.rmdir()  # its processes have exited: an empty cgroup goes with rmdir


def machine_cores(parser: argparse.ArgumentParser, cores: int) -> int:
    """The cores this process may use; --cores must be fewer (refused through `parser`)."""
    machine = len(os.sched_getaffinity(0))
    if not 1 <= cores < machine:
        parser.error(f"--cores {cores}: give fewer cores than this process may use ({machine})")
    return machine


def limited_ways(cores: int) -> tuple[dict[str, Callable | None], QuotaCgroup | None, str | None]:
    """The ways of giving a new process `cores` cores, each a function run in it before it starts
    (none: the whole machine); the quota's cgroup (to remove afterwards), and why there is no quota
    way, if there is none."""
    ways: dict[str, Callable | None] = {"none": None, "affinity": pinned(cores)}
    try:
        quota = QuotaCgroup(cores)
    except OSError as exc:
        return ways, None, f"no CPU quota could be set here ({exc})"
    return {**ways, "quota": quota.enter}, quota, None


def described_ways(cores: int, machine: int) -> dict[str, str]:
    """Each way as a table's first column says it."""
    return {
        "none": f"none (the whole machine: {machine} cores)",
        "affinity": f"affinity: {cores} of {machine} cores",
        "quota": f"quota: {cores} core{'s' * (cores != 1)} a period",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--against", default="15e64c7", help="git revision to compare the working tree with")
    parser.add_argument("--cores", type=int, default=1, help="the cores a limited process is given")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--eval-episodes", type=int, default=4, help="episodes per task")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--name", type=result_name, default="cores")
    args = parser.parse_args()
    machine = machine_cores(parser, args.cores)

    with source_at(args.against, parser) as earlier, tempfile.TemporaryDirectory() as tmp:
        rows, skipped = measure(args, {args.against: earlier, "now": REPO / "src"}, Path(tmp))
    write_result(f"{args.name}.md", report(args, machine, rows, skipped))


def measure(args, sources: dict[str, Path], tmp: Path) -> tuple[dict[str, list[dict]], str | None]:
    """Per command, per way: each revision's fastest run (seconds, threads or workers, what must be
    the same) and every run's seconds; why the quota way was skipped, if it was."""
    ways, quota, skipped = limited_ways(args.cores)
    policy = tmp / "train-none-now-0"  # the first whole-machine training run of this checkout
    rows: dict[str, list[dict]] = {command: [] for command in COMMANDS}
    try:
        for command in COMMANDS:
            for way, limit in ways.items():
                runs: dict[str, list[dict]] = {label: [] for label in sources}
                for repeat in range(args.repeats):
                    for label, src in sources.items():
                        print(
                            f"{command}, {way}: {label}, run {repeat + 1} of {args.repeats}", file=sys.stderr
                        )
                        out = tmp / f"{command}-{way}-{label}-{repeat}"
                        if command == "train":
                            runs[label].append(train_run(src, out, args, limit))
                        else:
                            runs[label].append(eval_run(src, out.with_suffix(".json"), args, limit, policy))
                rows[command].append({"way": way, **{label: best(found) for label, found in runs.items()}})
    finally:
        if quota is not None:
            quota.remove()
    whole = rows["train"][0]
    earlier, now = whole[args.against], whole["now"]
    assert earlier["count"] == now["count"] and earlier["same"] == now["same"], whole
    for row in rows["eval"]:
        assert row[args.against]["same"] == row["now"]["same"], row
    return rows, skipped


def best(runs: list[dict]) -> dict:
    fastest = min(runs, key=lambda run: run["seconds"])
    assert len({run["count"] for run in runs}) == 1, runs
    assert all(run["same"] == runs[0]["same"] for run in runs), runs
    return {**fastest, "all": [run["seconds"] for run in runs]}


def report(args, machine: int, rows: dict[str, list[dict]], skipped: str | None) -> str:
    described = described_ways(args.cores, machine)
    tasks = len({task for task, _ in rows["eval"][0]["now"]["same"]})
    successes = sum(success for _, success in rows["eval"][0]["now"]["same"])
    lines = [
        "# Commands given fewer cores than the machine has: training's threads, evaluation's workers",
        "",
        f"    {command_line()}",
        "",
        f"`{args.against}` sized both by the machine: `train` started os.cpu_count() threads (divided by the "
        "processes), `eval` 2 worker processes. Now both are sized by the cores the process may use "
        "(`leanvla.cores`: its affinity, bounded by its cgroup's CPU quota): as many threads, and 2 "
        f"workers or fewer. The fastest of {args.repeats} runs each, the revisions in turn.",
        "",
        f"`leanvla train` on the LeRobot fixture at its defaults, {args.steps} steps; seconds a step after the first "
        "logged window:",
        "",
        *table(args, described, rows["train"], "threads", "s/step", 3),
        "",
        f"`leanvla eval` of a policy trained so, {args.eval_episodes} episode{'s' * (args.eval_episodes != 1)} on "
        f"each of its {tasks} tasks "
        f"({successes} of {tasks * args.eval_episodes} succeeded, every run alike); wall seconds, the workers' start included:",
        "",
        *table(args, described, rows["eval"], "workers", "seconds", 1),
    ]
    if skipped:
        lines += ["", f"The quota way was skipped: {skipped}."]
    lines += [
        "",
        f"On the whole machine both revisions trained on {rows['train'][0]['now']['count']} threads and logged "
        "the same losses; in every way both evaluated to the same episodes (asserted).",
    ]
    return "\n".join(lines) + "\n"


def table(args, described: dict, rows: list[dict], count: str, unit: str, digits: int) -> list[str]:
    against = args.against
    lines = [
        f"| cores given | {against}: {count} | {unit} | now: {count} | {unit} | now / {against} | every run ({against}; now) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        earlier, now = row[against], row["now"]
        every = "; ".join(", ".join(f"{s:.{digits}f}" for s in run["all"]) for run in (earlier, now))
        lines.append(
            f"| {described[row['way']]} | {earlier['count']} | {earlier['seconds']:.{digits}f} | {now['count']} | "
            f"{now['seconds']:.{digits}f} | {now['seconds'] / earlier['seconds']:.2f}x | {every} |"
        )
    return lines


if __name__ == "__main__":
    main()
