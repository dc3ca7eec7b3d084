"""`leanvla train` given fewer cores than the machine has: its default thread count (--threads 0)
now, the cores the process may use, against an earlier revision's, the machine's cores.

    python benchmarks/cores.py                        # about 8 minutes on 2 CPU cores

Each run is a new `leanvla train` process on the LeRobot fixture (../shared/fixtures), at the
command's defaults (model `small`, batch 64) for --steps steps, logged every --log-every, seed 0,
the frame cache off. Its seconds a step are the mean of its logged windows after the first (no
start-up, no warm-up). Each way runs --repeats times, the two revisions in turn, the fastest run
counting. Three ways to give a process fewer cores:

1. none: the whole machine;
2. affinity: the process may run on --cores of the machine's cores (`os.sched_setaffinity`, what
   `taskset`, Slurm and a container's cpuset do);
3. quota: a cgroup CPU quota of --cores cores (what `docker --cpus` and a Kubernetes CPU limit do):
   the scheduler runs the process that many cores' worth of each 100 ms, then stops it. Made as a
   new cgroup under /sys/fs/cgroup, so it needs root and a cgroup filesystem it may write; where
   it cannot be made the way is skipped, saying why.

The earlier revision (--against, default 15e64c7: its default was os.cpu_count() threads divided
by the processes) runs from a temporary git worktree. The torch thread count each run recorded
(environment.json) is shown; on the whole machine both revisions train on the same threads, so
their losses are asserted equal. Writes docs/results/NAME.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from common import REPO, command_line, result_name, write_result

FIXTURE = REPO.parent / "shared" / "fixtures" / "lerobot_metaworld_v30"
PERIOD_US = 100_000


def train_run(src: Path, out: Path, steps: int, log_every: int, limit: Callable | None) -> dict:
    """`leanvla train` from the package under `src`, in a new process that `limit` (run in it
    before it starts) confines: its seconds a step after the first window, threads and losses."""
    env = {**os.environ, "PYTHONPATH": str(src), "LEANVLA_CACHE": "off"}
    env.pop("LOCAL_WORLD_SIZE", None)
    command = [sys.executable, "-c", "from leanvla.cli import main; main()", "train"]
    command += ["--data", str(FIXTURE), "--out", str(out), "--steps", str(steps), "--seed", "0"]
    command += ["--log-every", str(log_every)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, preexec_fn=limit)
    if done.returncode != 0:
        raise RuntimeError(f"`leanvla train` failed:\n{done.stderr[-3000:]}")
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    batch = json.loads((out / "train_config.json").read_text())["batch_size"]
    windows = [batch / record["samples_per_s"] for record in logged[1:]]
    (start,) = json.loads((out / "environment.json").read_text())
    return {
        "step_s": sum(windows) / len(windows),
        "threads": start["torch_threads"],
        "losses": [record["loss"] for record in logged],
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--against", default="15e64c7", help="git revision to compare the working tree with")
    parser.add_argument("--cores", type=int, default=1, help="the cores a limited process is given")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--name", type=result_name, default="cores")
    args = parser.parse_args()
    machine = len(os.sched_getaffinity(0))
    if not 1 <= args.cores < machine:
        parser.error(f"--cores {args.cores}: give fewer cores than this process may use ({machine})")

    with tempfile.TemporaryDirectory() as tmp:
        earlier = Path(tmp) / "earlier"
        subprocess.run(["git", "worktree", "add", "--detach", str(earlier), args.against], cwd=REPO,
                       check=True, capture_output=True)  # fmt: skip
        try:
            rows, skipped = measure(args, {args.against: earlier / "src", "now": REPO / "src"}, Path(tmp))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(earlier)], cwd=REPO, check=True)
    write_result(f"{args.name}.md", report(args, machine, rows, skipped))


def measure(args, sources: dict[str, Path], tmp: Path) -> tuple[list[dict], str | None]:
    """Per way: each revision's fastest seconds a step, its threads, and its first run's losses."""
    ways: dict[str, Callable | None] = {"none": None, "affinity": pinned(args.cores)}
    skipped, quota = None, None
    try:
        quota = QuotaCgroup(args.cores)
        ways["quota"] = quota.enter
    except OSError as exc:
        skipped = f"no CPU quota could be set here ({exc})"
    rows = []
    try:
        for way, limit in ways.items():
            runs: dict[str, list[dict]] = {label: [] for label in sources}
            for repeat in range(args.repeats):
                for label, src in sources.items():
                    print(f"{way}: {label}, run {repeat + 1} of {args.repeats} ...", file=sys.stderr)
                    out = tmp / f"{way}-{label}-{repeat}"
                    runs[label].append(train_run(src, out, args.steps, args.log_every, limit))
            rows.append({"way": way, **{label: best(found) for label, found in runs.items()}})
    finally:
        if quota is not None:
            quota.remove()
    whole = rows[0]
    earlier, now = whole[args.against], whole["now"]
    assert earlier["threads"] == now["threads"] and earlier["losses"] == now["losses"], whole
    return rows, skipped


def best(runs: list[dict]) -> dict:
    fastest = min(runs, key=lambda run: run["step_s"])
    assert len({run["threads"] for run in runs}) == 1, runs
    return {**fastest, "all": [run["step_s"] for run in runs]}


def report(args, machine: int, rows: list[dict], skipped: str | None) -> str:
    described = {
        "none": f"none (the whole machine: {machine} cores)",
        "affinity": f"affinity: {args.cores} of {machine} cores",
        "quota": f"quota: {args.cores} core{'s' * (args.cores != 1)} a period",
    }
    lines = [
        "# `leanvla train` on fewer cores than the machine has: the default thread count",
        "",
        f"    {command_line()}",
        "",
        f"`leanvla train` on the LeRobot fixture at its defaults, {args.steps} steps, seconds a step after the "
        f"first logged window, the fastest of {args.repeats} runs each, the revisions in turn. `{args.against}` "
        "started os.cpu_count() threads (divided by the processes); now the cores the process may use "
        "(`leanvla.cores`: its affinity, bounded by its cgroup's CPU quota).",
        "",
        f"| cores given | {args.against}: threads | s/step | now: threads | s/step | now / {args.against} | every run (s/step, {args.against}; now) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        earlier, now = row[args.against], row["now"]
        every = (
            ", ".join(f"{s:.3f}" for s in earlier["all"]) + "; " + ", ".join(f"{s:.3f}" for s in now["all"])
        )
        lines.append(
            f"| {described[row['way']]} | {earlier['threads']} | {earlier['step_s']:.3f} | {now['threads']} | "
            f"{now['step_s']:.3f} | {now['step_s'] / earlier['step_s']:.2f}x | {every} |"
        )
    if skipped:
        lines += ["", f"The quota way was skipped: {skipped}."]
    lines += [
        "",
        f"On the whole machine both revisions trained on {rows[0]['now']['threads']} threads and logged the same "
        "losses (asserted).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
