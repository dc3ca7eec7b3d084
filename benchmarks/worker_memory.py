"""The memory recording and evaluation's worker processes hold across many tasks, now (one env at a
time a worker, the one before closed) against an earlier revision (an env a task, each kept to
the end).

    python benchmarks/worker_memory.py                # about 8 minutes on 2 CPU cores

A worker makes a Meta-World env for each task it runs episodes of; each env holds MuJoCo's model
and a rendering context, about 150 MB. Three commands run in new processes, each revision in turn,
--repeats times, with --workers 2 (the same count for both, whatever the machine's cores):

1. `leanvla data metaworld --tasks MT50 --episodes 1` at 64 x 64 (one episode of each of the 50
   tasks: every worker goes through about 25 tasks);
2. `leanvla train` of a tiny policy on now's recording, --train-steps steps (once, this checkout);
3. `leanvla eval` of that policy on the 50 tasks, one episode each, --max-steps steps, each
   episode's frames saved (--save-rollouts 1).

While a command runs, its process and its workers' private memory (USS: Private_Clean and
Private_Dirty of /proc/PID/smaps_rollup, pages no other process shares) is read every 0.25 s; the
tables show the largest worker's peak, the command's whole peak (all its processes at one
reading), and the fastest wall time. Asserted: both revisions record byte-identical datasets and
evaluate to the same episodes, seen in the same frames (the saved rollouts byte-identical: a policy
trained this little seldom succeeds, so success alone would show little). Linux only (/proc).
Writes docs/results/NAME.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import REPO, command_line, result_name, source_at, write_result

POLL_S = 0.25
MB = 1 << 20


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--against", default="03d3291", help="git revision to compare the working tree with")
    parser.add_argument("--tasks", default="MT50", help="tasks recorded and evaluated")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--max-steps", type=int, default=30, help="evaluation's step limit an episode")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--name", type=result_name, default="worker_memory")
    args = parser.parse_args()
    if not Path("/proc/self/smaps_rollup").is_file():
        parser.error(
            "this benchmark reads /proc/PID/smaps_rollup, which this system does not have (Linux 4.14+)"
        )
    with source_at(args.against, parser) as earlier, tempfile.TemporaryDirectory() as tmp:
        rows = measure(args, {args.against: earlier, "now": REPO / "src"}, Path(tmp))
    write_result(f"{args.name}.md", report(args, rows))


def measure(args, sources: dict[str, Path], tmp: Path) -> dict[str, dict[str, dict]]:
    """Per command, per revision: peaks (MB) and the fastest wall seconds, over the repeats."""
    rows: dict[str, dict[str, dict]] = {"record": {}, "eval": {}}
    record = ["data", "metaworld", "--tasks", args.tasks, "--episodes", "1", "--workers", str(args.workers)]
    in_turn(args, sources, tmp, rows["record"], "record", record, dataset_digest)

    policy, data = tmp / "policy", tmp / "record-now-0"
    print("train: a tiny policy on the recording", file=sys.stderr)
    train = ["train", "--data", str(data), "--out", str(policy), "--model.size", "tiny"]
    sampled(REPO / "src", [*train, "--model.image-size", "64", "--steps", str(args.train_steps)])
    evaluate = ["eval", "--policy", str(policy), "--episodes", "1", "--max-steps", str(args.max_steps)]
    evaluate += ["--workers", str(args.workers), "--save-rollouts", "1"]
    episodes, _ = in_turn(args, sources, tmp, rows["eval"], "eval", evaluate, evaluated, ".json")
    rows["eval"]["tasks"] = len(episodes)
    rows["eval"]["successes"] = sum(success for _, success, _ in episodes)
    return rows


def in_turn(
    args,
    sources: dict[str, Path],
    tmp: Path,
    row: dict,
    name: str,
    command: list[str],
    outcome,
    suffix: str = "",
):
    """`leanvla COMMAND --out OUT` of each revision in turn, --repeats times, each run's peaks and time
    kept in `row`; what `outcome(OUT)` finds is asserted the same for every run of both revisions,
    and returned."""
    found = {}
    for repeat in range(args.repeats):
        for label, src in sources.items():
            out = tmp / f"{name}-{label}-{repeat}{suffix}"
            print(f"{name}: {label}, run {repeat + 1} of {args.repeats}", file=sys.stderr)
            _keep(row, label, sampled(src, [*command, "--out", str(out)]))
            got = outcome(out)
            assert found.setdefault(label, got) == got, f"{label}'s {name} runs differ"
    assert all(each == found["now"] for each in found.values()), f"the revisions' {name} runs differ"
    return found["now"]


def evaluated(out: Path) -> tuple[list[tuple], str]:
    """Each episode's task, success and steps from an evaluation's results file, and a digest of
    its saved rollouts (every frame the policy saw, as image strips and GIFs: a frame rendered
    otherwise shows)."""
    episodes = [(e["task"], e["success"], e["steps"]) for e in json.loads(out.read_text())["episodes"]]
    return episodes, dataset_digest(Path(f"{out.with_suffix('')}_rollouts"))


def _keep(row: dict, label: str, run: dict) -> None:
    """The largest peaks and the fastest time over the repeats."""
    kept = row.setdefault(label, {"worker": 0.0, "whole": 0.0, "seconds": [], "workers": 0})
    kept["worker"] = max(kept["worker"], run["worker"])
    kept["whole"] = max(kept["whole"], run["whole"])
    kept["workers"] = max(kept["workers"], run["workers"])
    kept["seconds"].append(run["seconds"])


def sampled(src: Path, args: list[str]) -> dict:
    """`leanvla ARGS` of the package under `src` in a new process, its processes' private memory
    read as it runs: the largest worker's peak and the whole's (MB), how many workers were seen,
    and the wall seconds. A failure raises with the end of its stderr."""
    command = [sys.executable, "-c", "from leanvla.cli import main; main()", *args]
    environment = {**os.environ, "PYTHONPATH": str(src), "LEANVLA_CACHE": "off"}
    peaks = {"worker": 0, "whole": 0}
    workers: set[int] = set()
    start = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=errors)
        done = threading.Event()

        def watch() -> None:
            while not done.wait(POLL_S):
                main, below = private_bytes(process.pid), descendants(process.pid)
                held = {pid: private_bytes(pid) for pid in below}
                workers.update(
                    pid for pid, size in held.items() if size > 100 * MB
                )  # not the resource tracker
                peaks["worker"] = max([peaks["worker"], *held.values()])
                peaks["whole"] = max(peaks["whole"], main + sum(held.values()))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        code = process.wait()
        seconds = time.perf_counter() - start
        done.set()
        watcher.join()
        if code != 0:
            errors.seek(0)
            raise RuntimeError(f"`leanvla {args[0]}` failed:\n{errors.read().decode()[-3000:]}")
    return {
        "worker": peaks["worker"] / MB,
        "whole": peaks["whole"] / MB,
        "seconds": seconds,
        "workers": len(workers),
    }


def private_bytes(pid: int) -> int:
    """A process's pages no other process shares (0 once it has gone)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    fields = dict(line.split(":", 1) for line in text.splitlines()[1:])
    return sum(
        int(fields[key].split()[0]) * 1024 for key in ("Private_Clean", "Private_Dirty") if key in fields
    )


def descendants(pid: int) -> list[int]:
    """The processes under `pid`, found by their parents in /proc/*/stat."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(text.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def dataset_digest(root: Path) -> str:
    """One digest of every file of a dataset, by its path and bytes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def report(args, rows: dict[str, dict[str, dict]]) -> str:
    against = args.against
    tasks, successes = rows["eval"]["tasks"], rows["eval"]["successes"]
    lines = [
        "# Worker processes across many tasks: one env at a time",
        "",
        f"    {command_line()}",
        "",
        f"`{against}`: a worker kept an env (MuJoCo's model and a rendering context) for every task it ran "
        "episodes of, to the end. Now a worker holds one (`leanvla.data.metaworld_env.OneEnvAtATime`), the one "
        "before closed when the task changes. Both with "
        f"--workers {args.workers}; private memory (USS) read every {POLL_S} s, the largest of {args.repeats} "
        "runs each, the revisions in turn; the fastest run's wall time.",
        "",
        "| command | revision | workers seen | largest worker's peak | the whole command's peak | wall (fastest) | every run |",
        "|---|---|---|---|---|---|---|",
    ]
    described = {
        "record": f"`leanvla data metaworld --tasks {args.tasks} --episodes 1` (64 x 64)",
        "eval": f"`leanvla eval`, {tasks} tasks, 1 episode each, --max-steps {args.max_steps}",
    }
    for command in ("record", "eval"):
        for label in (against, "now"):
            run = rows[command][label]
            every = ", ".join(f"{s:.1f}" for s in run["seconds"])
            lines.append(
                f"| {described[command]} | {label} | {run['workers']} | {run['worker']:.0f} MB | {run['whole']:.0f} MB | "
                f"{min(run['seconds']):.1f} s | {every} |"
            )
    lines += [
        "",
        "Now / before: the largest worker "
        + ", ".join(
            f"{command} {rows[command]['now']['worker'] / rows[command][against]['worker']:.2f}x"
            for command in ("record", "eval")
        )
        + "; the whole command "
        + ", ".join(
            f"{command} {rows[command]['now']['whole'] / rows[command][against]['whole']:.2f}x"
            for command in ("record", "eval")
        )
        + ".",
        "",
        f"Both revisions recorded byte-identical datasets and evaluated to the same {tasks} episodes, seen in "
        "the same frames (each episode's saved rollout byte-identical) "
        f"({successes} succeeded; a tiny policy trained {args.train_steps} steps) (asserted).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
