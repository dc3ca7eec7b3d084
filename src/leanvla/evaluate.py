"""`leanvla eval`: closed-loop success of a policy in Meta-World, on held-out positions.

Protocol (written into every result file): the tasks, episodes per task, the evaluation seed, the
step limit and the receding horizon. Episode k of task T resets from a seed of the evaluation
stream (disjoint from recording's) and skips any seed whose positions a training demonstration
used. Each camera renders at the shape the training frames had, and the policy fits it to its
square as training did. Success per task comes with a 95% Wilson interval.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tyro.conf import OmitArgPrefixes

from leanvla.atomic import require_creatable_file, write_json_atomic
from leanvla.cores import check_threads
from leanvla.data.metaworld_env import OneEnvAtATime, check_max_steps
from leanvla.data.metaworld_tasks import resolve_tasks, task_for_instruction
from leanvla.decode.options import DecodingOptions, apply_overrides, decoding_summary
from leanvla.environment import software_environment
from leanvla.errors import InputWarning, UserError, require
from leanvla.flags import set_flags
from leanvla.workers import WORKER_MEMORY, map_in_workers, worker_count


@dataclass
class EvalConfig:
    """Closed-loop evaluation of a policy in Meta-World on held-out object/goal positions."""

    policy: Path
    """Checkpoint directory, or a training run directory (uses its policy/, else last/)."""
    tasks: str | None = None
    """Comma-separated tasks or suites (default: every task the policy was trained on)."""
    episodes: int = 20
    """Episodes per task."""
    seed: int = 0
    """Base of the evaluation seed stream."""
    max_steps: int = 200
    """Step limit per episode (the scripted experts need 45-110)."""
    n_action_steps: int | None = None
    """Actions executed per predicted chunk (default: the policy's)."""
    out: Path | None = None
    """Write the results JSON here (replaced), and rollout strips/GIFs beside it (results.json:
    results_rollouts/, replaced whole)."""
    save_rollouts: int = 1
    """Rollouts per task saved as an image strip and a GIF (0 = none)."""
    workers: int | None = None
    """Evaluation processes (one rendering context each; 1 = in this process; default: one for
    each --threads of the cores this process may use, fewer where the memory left would not hold
    them)."""
    threads: int = 1
    """Torch threads per evaluation process."""
    decoding: OmitArgPrefixes[DecodingOptions] = field(default_factory=DecodingOptions)
    """How the policy decodes its chunks: --decoder and its thresholds, --flow-noise."""

    def check_ranges(self) -> None:
        """A count outside what it means fails before the policy is read (--n-action-steps is checked
        against the policy's chunk once it is)."""
        for flag, value in (
            ("--episodes", self.episodes),
            ("--workers", self.workers),
            ("--threads", self.threads),
        ):
            require(value is None or value >= 1, f"{flag} must be >= 1, got {value}")
        check_threads(self.threads)
        require(self.save_rollouts >= 0, f"--save-rollouts must be >= 0 (0 = none), got {self.save_rollouts}")
        check_max_steps(self.max_steps)

    def check_options_used(self, typed: Iterable[str] = ()) -> None:
        """Rollouts to save need a place to go. `typed` holds the command line's flags, so that
        `--save-rollouts 1` typed at its default value counts as asked for too."""
        flags = set_flags(self, typed)
        require(
            "save_rollouts" not in flags or self.save_rollouts == 0 or self.out is not None,
            "--save-rollouts saves strips and GIFs beside --out, which is unset: pass --out results.json, "
            "or drop --save-rollouts",
        )


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def render_shape(meta: dict, provenance: dict) -> tuple[int, int]:
    """(height, width) to render the policy's cameras at: the shape its training frames had, when
    provenance records one shared by all of them (a policy fits other shapes as it was trained to);
    otherwise its own square."""
    size = meta["model"]["image_size"]
    recorded = provenance.get("camera_shapes", {})
    shapes = {tuple(recorded.get(key, (size, size))) for key in meta["model"]["cameras"]}
    return shapes.pop() if len(shapes) == 1 else (size, size)


def check_trained_on(tasks: list[str], meta: dict, checkpoint: Path) -> None:
    """Every task evaluated must be one whose instruction the policy was trained on."""
    from leanvla.data.metaworld_tasks import INSTRUCTIONS

    known = policy_tasks(meta["instructions"])
    for task in tasks:
        if INSTRUCTIONS[task] not in meta["instructions"]:
            raise UserError(
                f"the policy in {checkpoint} was not trained on {task} ('{INSTRUCTIONS[task]}'); it knows {known}"
            )


def task_summary(rows: list[dict]) -> dict:
    """One task's episodes summed up: success rate with its 95% Wilson interval, mean lengths."""
    wins = sum(e["success"] for e in rows)
    return {
        "success_rate": wins / len(rows),
        "successes": wins,
        "episodes": len(rows),
        "ci95": wilson(wins, len(rows)),
        "mean_steps": float(np.mean([e["steps"] for e in rows])),
        "mean_steps_success": float(np.mean([e["steps"] for e in rows if e["success"]])) if wins else None,
    }


def policy_tasks(instructions: list[str]) -> list[str]:
    """The Meta-World tasks among a policy's instructions; none is an error (a robot's policy)."""
    tasks = [task_for_instruction(i) for i in instructions]
    known = [t for t in tasks if t is not None]
    shown = ", ".join(repr(i) for i in instructions[:3]) + (
        f", ... ({len(instructions)} in all)" if len(instructions) > 3 else ""
    )
    require(
        known,
        f"the policy's instructions ({shown}) name no Meta-World task, and `leanvla eval` runs the "
        "Meta-World tasks a policy was trained on: measure it on recordings with `leanvla probe --policy P "
        "--data DATA`",
    )
    return known


# ---- worker side ------------------------------------------------------------------------------
_WORKER: dict = {}
_ENVS = OneEnvAtATime()  # the jobs come task after task


def _init_worker(policy_path: str, threads: int, decode: dict) -> None:
    import os

    os.environ.setdefault("MUJOCO_GL", "egl")
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(threads)
    from leanvla.models.checkpoint import load_policy, read_provenance
    from leanvla.rollout import TrainingPositions

    _WORKER["policy"] = load_policy(policy_path)
    apply_overrides(_WORKER["policy"], decode)
    _WORKER["train"] = TrainingPositions(read_provenance(policy_path).get("positions"))


def _run_job(job: tuple) -> dict:
    from leanvla.rollout import run_episode

    task, episode, seed, max_steps, n_action_steps, keep, shape = job
    policy = _WORKER["policy"]
    cameras = tuple(c.removeprefix("observation.images.") for c in policy.cameras)
    env = _ENVS.get(task, cameras, shape, max_steps)
    return asdict(run_episode(policy, env, episode, seed, _WORKER["train"], n_action_steps, keep))


def _run_all(jobs: list[tuple], policy_path: Path, workers: int, threads: int, decode: dict, progress: bool):
    from tqdm import tqdm

    done = 0
    try:
        with tqdm(total=len(jobs), desc="eval", unit="ep", disable=not progress) as bar:
            if workers <= 1:
                _init_worker(str(policy_path), threads, decode)
                try:
                    for job in jobs:
                        yield _run_job(job)
                        done += 1
                        bar.update(1)
                finally:  # a library caller's process goes on: its env and policy are not kept
                    _ENVS.close()
                    _WORKER.clear()
            else:
                initargs = (str(policy_path), threads, decode)
                # closed here, whatever stops this loop, not whenever the collector finds it
                with closing(map_in_workers(_run_job, jobs, workers, _init_worker, initargs)) as results:
                    for result in results:
                        yield result
                        done += 1
                        bar.update(1)
    except KeyboardInterrupt:  # Ctrl-C: how far it got; a partial result is not written
        raise KeyboardInterrupt(f"after {done} of {len(jobs)} episodes; nothing was written") from None


# ---- orchestration ----------------------------------------------------------------------------
def _worker_processes(cfg: EvalConfig, checkpoint: Path, jobs: int) -> int:
    """--workers as asked, else as many as the cores and the memory left hold, each holding the
    policy's weights too (`leanvla.workers.worker_count`); never more than the jobs. Where that is
    more than one, the policy is loaded here first: a checkpoint that cannot load fails in one
    line, not in every worker."""
    from leanvla.models.checkpoint import load_policy

    workers = min(worker_count(cfg.workers, cfg.threads), jobs)
    if workers > 1:
        weights = sum(
            t.numel() * t.element_size() for t in load_policy(checkpoint).model.state_dict().values()
        )
        workers = min(workers, worker_count(cfg.workers, cfg.threads, WORKER_MEMORY + weights))
    return workers


def evaluate(cfg: EvalConfig, progress: bool = True) -> dict:
    """Closed-loop episodes of the policy on each task, at positions its training did not use (where
    the checkpoint records them); returns (and with --out writes) the protocol, per-task success
    with 95% intervals, timing and every episode's record."""
    from leanvla.models.checkpoint import read_meta, read_provenance, resolve_checkpoint
    from leanvla.report import check_rollouts_directory, rollouts_directory, save_rollout_media

    cfg.check_ranges()
    cfg.check_options_used()
    if cfg.out is not None:
        require_creatable_file(Path(cfg.out), "--out", "eval.json")
        if cfg.save_rollouts:
            check_rollouts_directory(Path(cfg.out), "--out")
    checkpoint = resolve_checkpoint(cfg.policy)
    meta = read_meta(checkpoint)
    decode = cfg.decoding.overrides(meta, checkpoint)
    provenance = read_provenance(checkpoint)
    # By default, the tasks the policy's training episodes showed (not every task its dataset had).
    tasks = (
        resolve_tasks(cfg.tasks)
        if cfg.tasks is not None
        else policy_tasks(provenance.get("instructions", meta["instructions"]))
    )
    check_trained_on(tasks, meta, checkpoint)
    horizon = meta["model"]["n_action_steps"] if cfg.n_action_steps is None else cfg.n_action_steps
    require(
        1 <= horizon <= meta["model"]["chunk_size"],
        f"--n-action-steps must be within 1..{meta['model']['chunk_size']}, got {horizon}",
    )
    positions = provenance.get("positions")
    unknown = positions.count(None) if positions is not None else 0  # episodes another recorder added
    held_out_known = positions is not None and not unknown
    if not held_out_known:
        which = (
            "no training positions" if positions is None else f"no positions of {unknown} training episodes"
        )
        warnings.warn(
            f"{checkpoint} records {which}; evaluation seeds are disjoint from recording seeds but "
            "positions cannot be checked",
            InputWarning,
            stacklevel=2,
        )
    shape = render_shape(meta, provenance)
    jobs = [
        (task, k, cfg.seed, cfg.max_steps, horizon, cfg.out is not None and k < cfg.save_rollouts, shape)
        for task in tasks
        for k in range(cfg.episodes)
    ]
    workers = _worker_processes(cfg, checkpoint, len(jobs))
    episodes = list(_run_all(jobs, checkpoint, workers, cfg.threads, decode, progress))

    per_task = {task: task_summary([e for e in episodes if e["task"] == task]) for task in tasks}
    total = sum(v["successes"] for v in per_task.values())
    n = sum(v["episodes"] for v in per_task.values())
    chunks = sum(e["chunks"] for e in episodes)
    result = {
        "policy": str(checkpoint),
        "protocol": {
            "tasks": tasks,
            "episodes_per_task": cfg.episodes,
            "eval_seed": cfg.seed,
            "max_steps": cfg.max_steps,
            "n_action_steps": horizon,
            "observation": meta["model"]["cameras"] + [meta["state_key"]],
            "camera_shape": list(shape),
            "image_size": meta["model"]["image_size"],
            "image_fit": meta["model"]["image_fit"],
            "held_out_positions_checked": held_out_known,
            "seeds_skipped_for_training_positions": int(sum(e["skipped_seeds"] for e in episodes)),
        },
        "mean_success": float(np.mean([v["success_rate"] for v in per_task.values()])),
        "mean_ci95": wilson(total, n),
        "per_task": per_task,
        "inference_ms_per_chunk": 1000.0 * sum(e["inference_s"] for e in episodes) / max(1, chunks),
        **decoding_summary(meta, decode, chunks, sum(e["forward_passes"] for e in episodes)),
        "episodes": [{k: v for k, v in e.items() if k != "frames"} for e in episodes],
        # Policies run in the workers, each with its own thread count: that is the count that matters.
        "environment": {**software_environment(), "torch_threads": cfg.threads, "workers": workers},
    }
    if cfg.out is not None:
        media = save_rollout_media([e for e in episodes if e["frames"]], rollouts_directory(cfg.out))
        result["rollout_media"] = media
        write_json_atomic(Path(cfg.out), result)
    return result
