"""Helpers shared by the benchmark scripts: cached datasets, timed training, evaluation, tables.

Benchmarks run the method and its baseline side by side in one process, on the same data and
seed, and write their tables (with the command that produced them) into docs/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")
REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results"


def command_line() -> str:
    """The command that is running, as a user would type it from the repository root."""
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(REPO)
    except ValueError:
        pass
    return shlex.join(["python", str(script), *sys.argv[1:]])  # quoted: it pastes back into a shell


def module_at(revision: str, path: str):
    """The module at `path` (from the repository root) as it was at a git `revision`, or as a copy
    of that file at `revision` (a path ending in .py, for a machine whose checkout has no git
    history, such as a lent GPU), and the name the tables give it (the revision, or the copy's file
    name). A revision git cannot show that file at raises LookupError, saying so."""
    import subprocess
    import types

    if revision.endswith(".py") and Path(revision).is_file():
        source, origin, label = Path(revision).read_text(), revision, Path(revision).stem
    else:
        showing = subprocess.run(
            ["git", "show", f"{revision}:{path}"], cwd=REPO, capture_output=True, text=True
        )
        if showing.returncode != 0:
            raise LookupError(
                f"--against {revision}: {showing.stderr.strip().rstrip('.')}; pass a revision that has "
                f"{path}, or a copy of that file"
            )
        source, origin, label = showing.stdout, f"{revision}:{path}", revision
    module = types.ModuleType(f"{Path(path).stem}_at_{label}")
    exec(compile(source, origin, "exec"), module.__dict__)
    return module, label


@contextlib.contextmanager
def source_at(revision: str, parser: argparse.ArgumentParser) -> Iterator[Path]:
    """The src/ of a temporary git worktree at `revision` (removed afterwards), to run that
    revision's leanvla beside this checkout's; a revision git cannot check out is refused through
    `parser` (one line, exit code 2)."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        made = subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), revision],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        if made.returncode != 0:
            parser.error(f"--against {revision}: {made.stderr.strip()}")
        try:
            yield tree / "src"
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, capture_output=True)


class Run(NamedTuple):
    """One command's run in a process of its own."""

    seconds: float  # wall
    peak_mb: float  # the process's largest resident memory


def leanvla_at(src: Path, args: list[str], limit: Callable | None = None, **env: str) -> float:
    """`leanvla_run_at`'s wall seconds."""
    return leanvla_run_at(src, args, limit, **env).seconds


# `leanvla ARGS` that writes its peak resident memory (kB) to the file its first argument names as
# it exits: /proc/self/status's VmHWM, since getrusage's ru_maxrss of a process started by fork (or
# vfork) and exec counts its parent's peak too (a benchmark's, holding a dataset's frames).
_LEANVLA_WRITING_PEAK = """
import atexit, sys

def write_peak(path=sys.argv.pop(1)):
    with open("/proc/self/status") as status, open(path, "w") as out:
        out.write(next(line.split()[1] for line in status if line.startswith("VmHWM:")))

atexit.register(write_peak)
from leanvla.cli import main
main()
"""


def leanvla_run_at(src: Path, args: list[str], limit: Callable | None = None, **env: str) -> Run:
    """`leanvla ARGS` of the package under `src` (a revision's, not the installed one) in a new
    process, with `env` added to its environment and `limit` run in it before it starts (a CPU
    affinity, a cgroup). A failure raises with the end of its stderr."""
    import subprocess
    import tempfile

    environment = {**os.environ, "PYTHONPATH": str(src), **env}
    with tempfile.TemporaryDirectory() as tmp:
        peak = Path(tmp) / "peak_kb"
        command = [sys.executable, "-c", _LEANVLA_WRITING_PEAK, str(peak), *args]
        start = time.perf_counter()
        done = subprocess.run(command, env=environment, capture_output=True, text=True, preexec_fn=limit)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"`leanvla {args[0]}` failed:\n{done.stderr[-3000:]}")
        return Run(seconds, int(peak.read_text()) / 1024)


def child_result(script: str, task: dict, cache: str | None) -> dict:
    """Run benchmarks/SCRIPT --child TASK (JSON) in a new process, as a command runs, with
    LEANVLA_CACHE=cache (off when None) and this checkout's src first on the path; the JSON object
    its last line prints."""
    import subprocess

    env = {**os.environ, "LEANVLA_CACHE": cache or "off", "PYTHONPATH": str(REPO / "src")}
    command = [sys.executable, str(REPO / "benchmarks" / script), "--child", json.dumps(task)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"a child process of {script} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def shown(path: Path) -> str:
    """A path as the tables show it: relative to the repository when inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def slug(name: str) -> str:
    """A variant's display name as a directory name: "LoRA-SP R16 eta 0.8" -> "lora-sp-r16-eta-0-8"."""
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


def benchmark_parser(doc: str, work: str, closed_loop: bool = True) -> argparse.ArgumentParser:
    """The options every benchmark takes (data size, seed, work directory, and the evaluation's
    size where it runs the closed loop); a script adds its own."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=50, help="demonstrations per task")
    if closed_loop:
        parser.add_argument("--eval-episodes", type=int, default=50, help="closed-loop episodes per task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path(work), help="runs and results.json (resumable)")
    return parser


def result_name(value: str) -> str:
    """--name: a file name for docs/results/, refused at once if it is a path (it would write elsewhere)."""
    if not value or Path(value).name != value or value in (".", ".."):
        raise argparse.ArgumentTypeError(
            f"'{value}' is a path; give a file name, written under {shown(RESULTS)}/"
        )
    return value


def finished_work_parser(doc: str, name: str, work_help: str) -> argparse.ArgumentParser:
    """The options of a script that reads a finished benchmark's work directory: --work, --name."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help=work_help)
    parser.add_argument("--name", type=result_name, default=name, help="result file name (without .md)")
    return parser


def recording(episodes: int, seed: int) -> dict:
    """The recording options every benchmark dataset shares (corner2 camera, 64 px)."""
    return dict(episodes=episodes, cameras="corner2", image_size=64, seed=seed)


class Results(dict):
    """A benchmark's finished measurements, kept in WORK/results.json so a rerun skips them."""

    def __init__(self, work: Path):
        self.path = work / "results.json"
        super().__init__(json.loads(self.path.read_text()) if self.path.is_file() else {})

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self, indent=2))


CACHE = REPO / "outputs" / "cache"  # shared with `leanvla demo`: same options, same recording


def cached_dataset(**options) -> Path:
    """Record (once) a Meta-World dataset with these recording options; every benchmark shares it."""
    from leanvla.data.record import record_cached

    return record_cached(CACHE, **options)


def measured_throughput(cfg, probe_steps: int = 40) -> float:
    """Training samples per second of `cfg`'s model on its data, measured by a short real run."""
    from leanvla.report import read_metrics
    from leanvla.train.loop import train

    probe = replace(
        cfg,
        out=Path(str(cfg.out) + "-probe"),
        steps=probe_steps,
        log_every=probe_steps // 2,
        save_every=10**9,
        overwrite=True,
    )
    train(probe, progress=False)
    rate = read_metrics(probe.out / "metrics.jsonl")[-1]["samples_per_s"]  # second window: warm
    shutil.rmtree(probe.out, ignore_errors=True)
    return rate


def _probe_child(cfg, probe_steps: int, queue) -> None:
    import resource

    rate = measured_throughput(cfg, probe_steps)
    queue.put((rate, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def probe_speed_and_memory(cfg, probe_steps: int = 40) -> tuple[float, float]:
    """(training samples/s, peak resident memory in MiB) of a short real run in a fresh process.

    A fresh process per probe, so each peak belongs to its variant alone (CPU: peak RSS, which
    includes the decoded dataset every variant shares; differences between variants are the model's).
    """
    import multiprocessing
    import queue as queues

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_probe_child, args=(cfg, probe_steps, queue))
    child.start()
    while True:  # a child that dies would leave a plain queue.get() waiting forever
        try:
            result = queue.get(timeout=5)
            break
        except queues.Empty:
            if not child.is_alive():
                raise RuntimeError(f"the speed probe's process died (exit code {child.exitcode})") from None
    child.join()
    return result


def steps_for_budget(cfg, minutes: float, probe_steps: int = 200) -> int:
    """Optimizer steps that fill `minutes` of training for this model on this machine.

    The probe is long (its warm window is 100 steps) because 40-step probes misjudged the budget by
    up to a third, in both directions: a "40 min" budget gave the CNN 29 min and the VLA 44 min."""
    return max(50, int(minutes * 60 * measured_throughput(cfg, probe_steps) / cfg.batch_size))


def logged_training_seconds(metrics: list[dict], batch_size: int) -> float:
    """Seconds a run's training loop took, summed over its logged windows (each window's steps x
    batch / its samples per second): the same whether the run trains now or finished earlier."""
    seconds, previous = 0.0, 0
    for record in metrics:
        seconds += max(0, record["step"] - previous) * batch_size / record["samples_per_s"]
        previous = record["step"]
    return seconds


def train_timed(cfg) -> float:
    """Train (or resume) `cfg`; returns wall seconds spent in this call."""
    from leanvla.train.loop import train_once

    t = time.perf_counter()
    train_once(cfg)
    return time.perf_counter() - t


def inference_latency_ms(policy_dir: Path, threads: int = 2, repeats: int = 30, prepare=None) -> float:
    """Median ms to predict one action chunk from one random observation (batch 1) on this CPU.

    `prepare(model)` may adjust the loaded model first (e.g. switch a compute path)."""
    import torch

    torch.set_num_threads(threads)
    return median_ms(batch1_call(policy_dir, prepare), repeats)


def batch1_call(policy_dir: Path, prepare=None):
    """A call(i) predicting one action chunk at batch 1 from one random observation, for the
    timers below; `prepare(model)` may adjust the loaded model first."""
    import torch

    from leanvla.models.checkpoint import load_policy

    policy = load_policy(policy_dir)
    if prepare is not None:
        prepare(policy.model)
    size = policy.meta["model"]["image_size"]
    images = torch.randint(0, 256, (1, len(policy.cameras), 3, size, size), dtype=torch.uint8)
    state = torch.zeros(1, policy.meta["model"]["state_dim"])
    task = torch.zeros(1, dtype=torch.long)
    return lambda _: policy.act(images, state, task)


def median_ms(step, repeats: int, warmup: int = 5) -> float:
    """Median wall-clock ms of step(i) over i = 0 .. repeats - 1, after `warmup` untimed calls."""
    return round_robin_ms({"step": step}, repeats, warmup)["step"]


def round_robin_ms(calls: dict, repeats: int, warmup: int = 5) -> dict[str, float]:
    """Median wall-clock ms of each call(i), i = 0 .. repeats - 1, timed in turn (every call at i,
    then every call at i + 1, ...), so a drift in the machine's speed falls on all alike instead of
    on whichever ran during it. `warmup` untimed rounds first."""
    import statistics

    times = {name: [] for name in calls}
    for i in range(-warmup, repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call(i % repeats)
            if i >= 0:
                times[name].append(1000 * (time.perf_counter() - start))
    return {name: statistics.median(t) for name, t in times.items()}


def aten_ops(call) -> int:
    """How many aten ops (views excluded) `call()` dispatches. Where a step is too small to fill a
    GPU, each op waits its turn to launch and this count, not their size, sets the step's time; it
    is the same on any device, so this CPU can count what a GPU would launch."""
    from torch.utils._python_dispatch import TorchDispatchMode

    count = 0

    class Counter(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            nonlocal count
            count += not func.is_view
            return func(*args, **(kwargs or {}))

    with Counter():
        call()
    return count


def require_device(parser: argparse.ArgumentParser, device: str) -> None:
    """--device as a timing script takes it: CUDA asked for where there is none is one line, exit 2."""
    import torch

    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {device}: no CUDA device here; run on CPU (the default)")


def device_name(device: str, threads: int) -> str:
    """Where a timing ran, as the reports say it: the GPU's name, or this CPU and its threads."""
    import torch

    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"this CPU, {threads} threads"


def synchronised(call, device):
    """`call` made to wait for the GPU's queued work, so a wall-clock timer sees what it launched."""
    import torch

    if torch.device(device).type != "cuda":
        return call
    return lambda i: (call(i), torch.cuda.synchronize())


def real_observations(data: Path, policy, n: int) -> list[tuple]:
    """n evenly spaced frames of a dataset as batch-1 (images, state, task index) for `policy`."""
    from leanvla.data.reader import LeRobotDataset

    frames = LeRobotDataset(data).num_frames
    return observations_at(data, policy, np.linspace(0, frames - 1, n).round().astype(int))


def observations_at(data: Path, policy, frames) -> list[tuple]:
    """The dataset's frames at these (sorted, distinct) indices as batch-1 (images, state, task index)."""
    import torch

    from leanvla.data.reader import LeRobotDataset

    dataset = LeRobotDataset(data)
    rows = np.zeros(dataset.num_frames, dtype=bool)
    rows[frames] = True
    images = np.stack([dataset.read_images(cam, rows=rows) for cam in policy.cameras], 1)  # n x C x H x W x 3
    images = torch.from_numpy(images).permute(0, 1, 4, 2, 3)
    state = torch.from_numpy(dataset.read_array(policy.meta["state_key"])[rows]).float()
    # the dataset's task indices, read as the policy's own (another recording may order tasks differently)
    tasks = [policy.task_id(dataset.tasks[t]) for t in dataset.read_array("task_index")[rows]]
    return [(images[i : i + 1], state[i : i + 1], torch.tensor([tasks[i]])) for i in range(len(tasks))]


def demonstration_chunks(data: Path, policy, executed: int, every: int = 6) -> list[tuple]:
    """Every `every`-th frame of a dataset's demonstrations whose episode runs `executed` more steps, as
    batch-1 (images, state, task index, the demonstrator's next `executed` actions) for `policy`."""
    import torch

    from leanvla.data.reader import LeRobotDataset

    dataset = LeRobotDataset(data)
    actions, episode = dataset.read_array("action"), dataset.read_array("episode_index")
    starts = np.arange(0, dataset.num_frames - executed, every)
    starts = starts[episode[starts] == episode[starts + executed - 1]]
    return [
        (*observation, torch.tensor(actions[s : s + executed], dtype=torch.float32))
        for observation, s in zip(observations_at(data, policy, starts), starts, strict=True)
    ]


def action_errors(policy, chunks: list[tuple]) -> list[float]:
    """Per chunk, mean |predicted - demonstrated| over its demonstrated actions, in environment units,
    predicted at batch 1 as in closed loop (Fast-dVLA's pipeline state is shared across a batch)."""
    import torch

    generator = torch.Generator().manual_seed(0)  # the flow head's noise
    return [
        float((policy.act(images, state, task, generator)[0, : len(truth)] - truth).abs().mean())
        for images, state, task, truth in chunks
    ]


def mean_action_error(policy, chunks: list[tuple]) -> float:
    errors = action_errors(policy, chunks)
    return sum(errors) / len(errors)


def episodes_by_task(data: Path) -> dict[str, list[int]]:
    """task -> its episode indices in recording order."""
    from collections import defaultdict

    from leanvla.data.reader import LeRobotDataset

    by_task = defaultdict(list)
    for episode, task in enumerate(LeRobotDataset(data).episode_tasks()):
        by_task[task].append(episode)
    return dict(by_task)


def first_per_task(data: Path, out: Path, *, count: int | None = None, fraction: float | None = None) -> Path:
    """Write an --episodes file selecting each task's first `count` demonstrations (or the first
    `fraction` of them, at least one); returns its path."""
    take = lambda n: count if count is not None else max(1, round(fraction * n))  # noqa: E731
    chosen = sorted(e for eps in episodes_by_task(data).values() for e in eps[: take(len(eps))])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"episodes": chosen}))
    return out


def split_per_task(data: Path, out_dir: Path, held_out: int, keep: int | None = None) -> tuple[Path, Path]:
    """--episodes and --val-episodes files: each task's last `held_out` demonstrations held out, and
    of the rest its first `keep` (all by default) trained on."""
    by_task = episodes_by_task(data)
    train = sorted(e for eps in by_task.values() for e in eps[:-held_out][:keep])
    val = sorted(e for eps in by_task.values() for e in eps[-held_out:])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "train_episodes.json").write_text(json.dumps({"episodes": train}))
    (out_dir / "val_episodes.json").write_text(json.dumps({"episodes": val}))
    return out_dir / "train_episodes.json", out_dir / "val_episodes.json"


PRETRAIN_TASKS = "push-v3,pick-place-v3,drawer-open-v3,peg-insert-side-v3,window-close-v3"


def pretrained_base(
    steps: int = 3000, seed: int = 0, episodes: int = 50, head: str = "flow", vision_layers: int = 0
) -> Path:
    """The reference VLA (`small`) pretrained on five MT10 tasks that no method benchmark targets;
    shared by the adapt, merge and curate benchmarks (trained once per setting, reused). `small` has
    no vision transformer layers; `vision_layers` adds that many after its conv stem."""
    from leanvla.train.config import ModelOptions, TrainConfig

    data = cached_dataset(tasks=PRETRAIN_TASKS, **recording(episodes, seed))
    name = f"small-{steps}-seed{seed}" + ("" if head == "flow" else f"-{head}")
    name += f"-vision{vision_layers}" if vision_layers else ""
    cfg = TrainConfig(
        data=data,
        out=REPO / "outputs" / "bench" / "pretrained" / name,
        model=ModelOptions(size="small", vision_layers=vision_layers or None),
        head=head,
        steps=steps,
        seed=seed,
    )
    train_timed(cfg)
    return cfg.out / "policy"


def result_record(result: dict, train_s: float, **extra) -> dict:
    """What a benchmark keeps of one trained-and-evaluated variant (JSON-serialisable)."""
    from leanvla.report import protocol_line

    return {
        "train_s": train_s,
        "mean": result["mean_success"],
        "ci": result["mean_ci95"],
        "per_task": {t: r["success_rate"] for t, r in result["per_task"].items()},
        "protocol": protocol_line(result),
        **extra,
    }


def signed_points(fraction: float) -> str:
    """A success gap (a fraction) in points with its sign, as the reports show it: "+2.4", "+0.0" for a
    tie (never "-0.0"), and a second decimal where one would hide the sign: "-0.01"."""
    points = 100 * fraction
    if 0.005 <= abs(points) < 0.05:
        return f"{points:+.2f}"
    return f"{round(points, 1) + 0.0:+.1f}"


def success_with_errors(records: list[dict]) -> tuple[list[float], list[list[float]]]:
    """Mean success in % of each result_record, and its 95% interval as matplotlib's asymmetric yerr."""
    y = [100 * r["mean"] for r in records]
    below = [y_ - 100 * r["ci"][0] for y_, r in zip(y, records)]
    above = [100 * r["ci"][1] - y_ for y_, r in zip(y, records)]
    return y, [below, above]


def variants_table(lead: list[str], rows: list[tuple[list[str], dict]]) -> list[str]:
    """Markdown lines: the `lead` columns of each row, then per-task success and the mean [95% CI]."""
    from leanvla.report import pct

    tasks = list(rows[0][1]["per_task"])
    lines = [
        "| "
        + " | ".join(lead)
        + " | "
        + " | ".join(t.removesuffix("-v3") for t in tasks)
        + " | mean [95% CI] |",
        "|" + "---|" * (len(lead) + len(tasks) + 1),
    ]
    for cells, r in rows:
        lo, hi = r["ci"]
        per_task = " | ".join(pct(r["per_task"][t]) for t in tasks)
        lines.append(f"| {' | '.join(cells)} | {per_task} | **{pct(r['mean'])}** [{pct(lo)}, {pct(hi)}] |")
    return lines


def ranks(values: list[float]) -> np.ndarray:
    """Each value's rank from 0, ties sharing their mean rank."""
    values = np.asarray(values, dtype=float)
    out = np.empty(len(values))
    out[values.argsort(kind="stable")] = np.arange(len(values))
    for value in np.unique(values):
        out[values == value] = out[values == value].mean()
    return out


def rank_agreement(xs: list[float], ys: list[float]) -> float:
    """Spearman's rank correlation: Pearson's of the ranks."""
    return float(np.corrcoef(ranks(xs), ranks(ys))[0, 1])


def write_result(name: str, text: str) -> Path:
    """Write docs/results/NAME, ending with the machine and software that wrote it: float rounding
    and library versions move trained policies, so a reader comparing numbers needs both."""
    from leanvla.environment import describe, software_environment

    if name.endswith(".md"):
        text = (
            text.rstrip("\n")
            + f"\n\nWritten on: {describe(software_environment())}. Each run records its own in its"
            " directory: environment.json (training) and eval.json (evaluation).\n"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(text)
    print(f"wrote {path}")
    return path
