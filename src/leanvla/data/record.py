"""`leanvla data metaworld`: record Meta-World scripted-expert demonstrations as a LeRobotDataset.

Each episode's object/goal positions follow its seed and are stored in the episodes metadata
(`metaworld/seed`, `metaworld/positions`), so evaluation can use only positions no demonstration
used. With `bad_fraction > 0` some episodes are deliberately bad; which ones, and how, goes to a
separate labels file and never into the dataset, so curation can be scored against the truth
without being able to read it.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Iterable
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from leanvla.atomic import (
    atomic_dir,
    require_creatable_file,
    require_new,
    require_output,
    write_json_atomic,
)
from leanvla.data.format import ENV_STATE, INFO_PATH, image_feature
from leanvla.data.metaworld_env import EPISODE_LIMIT, MetaWorldTask, OneEnvAtATime, check_max_steps
from leanvla.data.metaworld_tasks import INSTRUCTIONS, resolve_tasks
from leanvla.data.seeds import episode_seed
from leanvla.data.stats import image_histogram
from leanvla.data.writer import EncodedImages, LeRobotWriter, encode_png
from leanvla.errors import UserError, require
from leanvla.flags import set_flags
from leanvla.json_values import read_json
from leanvla.option_lists import listed
from leanvla.workers import map_in_workers, worker_count

BAD_KINDS = ("noisy", "failed", "truncated", "wrong_task")


@dataclass
class RecordConfig:
    """Record Meta-World v3 scripted-expert demonstrations as a LeRobotDataset v3.0."""

    out: Path
    """Directory of the new dataset (must not exist unless --overwrite)."""
    tasks: str = "DEMO5"
    """Comma-separated v3 task names and/or suites (MT10, MT50, ML45-train, ML45-test, DEMO5)."""
    episodes: int = 20
    """Episodes per task."""
    cameras: str = "corner2"
    """Comma-separated cameras (corner, corner2, corner3, corner4, topview, behindGripper, gripperPOV)."""
    image_size: int = 64
    """Image height in pixels; the width too, unless --image-width."""
    image_width: int | None = None
    """Image width in pixels (default: --image-size, square). A wider camera sees more of each side,
    as a robot's 480 x 640 camera does; a policy fits its frames to its square."""
    seed: int = 0
    """Base seed; every episode's positions follow (seed, task, episode)."""
    max_steps: int = 300
    """Longest episode; an expert that has not succeeded by then is retried on the next seed."""
    bad_fraction: float = 0.0
    """Fraction of each task's episodes recorded as bad demonstrations."""
    bad_kinds: str = ",".join(BAD_KINDS)
    """Kinds of bad demonstrations to draw from: noisy, failed, truncated, wrong_task."""
    labels_out: Path | None = None
    """Where to write which episodes are bad and how (required with --bad-fraction > 0)."""
    noise_std: float = 0.6
    """Std of the Gaussian noise added to the expert's actions in 'noisy' episodes."""
    workers: int | None = None
    """Recording processes (one rendering context each; 1 = in this process; default: one a core
    this process may use, fewer where the memory left would not hold them)."""
    overwrite: bool = False
    """Replace --out (and --labels-out) if they exist."""

    @property
    def image_shape(self) -> tuple[int, int]:
        """(height, width) of every camera's frames."""
        return self.image_size, self.image_size if self.image_width is None else self.image_width

    def check_options_used(self, typed: Iterable[str] = ()) -> None:
        """An option this recording would ignore is a mistake: say which. `typed` holds the command
        line's flags, so that one typed at its default value counts as set too."""
        flags = set_flags(self, typed)
        if self.bad_fraction == 0:
            for name in ("bad_kinds", "labels_out", "noise_std"):
                require(
                    name not in flags,
                    f"{flags.get(name)} shapes bad demonstrations, which --bad-fraction 0 (the default) leaves "
                    "out: set --bad-fraction too, or drop it",
                )
        require(
            "noise_std" not in flags or "noisy" in [kind.strip() for kind in self.bad_kinds.split(",")],
            f"{flags.get('noise_std')} sets the noise of 'noisy' episodes, which --bad-kinds leaves out: drop it",
        )


@dataclass
class EpisodeJob:
    task: str
    index: int
    kind: str  # "good" or one of BAD_KINDS
    recorded_task: str
    base_seed: int
    cameras: tuple[str, ...]
    image_shape: tuple[int, int]  # height, width
    max_steps: int
    noise_std: float


def validate(cfg: RecordConfig) -> tuple[list[str], tuple[str, ...], list[str]]:
    cfg.check_options_used()
    tasks = resolve_tasks(cfg.tasks)
    cameras = tuple(listed(cfg.cameras, "--cameras"))
    require(cameras, "--cameras is empty; name at least one camera, e.g. --cameras corner2")
    require(cfg.episodes >= 1, f"--episodes must be >= 1, got {cfg.episodes}")
    check_seed(cfg.seed)
    require(8 <= cfg.image_size <= 512, f"--image-size must be within 8..512 pixels, got {cfg.image_size}")
    require(
        cfg.image_width is None or 8 <= cfg.image_width <= 1024,
        f"--image-width must be within 8..1024 pixels, got {cfg.image_width}",
    )
    check_max_steps(cfg.max_steps)
    require(
        0 <= cfg.noise_std < math.inf, f"--noise-std must be finite and >= 0 (a std), got {cfg.noise_std}"
    )
    require(0.0 <= cfg.bad_fraction < 1.0, f"--bad-fraction must be in [0, 1), got {cfg.bad_fraction}")
    require(
        cfg.bad_fraction == 0 or bad_per_task(cfg) >= 1,
        f"--bad-fraction {cfg.bad_fraction} of {cfg.episodes} episodes per task rounds to no bad episode; "
        "raise it or --episodes",
    )
    kinds = listed(cfg.bad_kinds, "--bad-kinds")
    for kind in kinds:
        require(kind in BAD_KINDS, f"unknown --bad-kinds entry '{kind}'; choose from {', '.join(BAD_KINDS)}")
    if "wrong_task" in kinds and len(tasks) < 2 and cfg.bad_fraction > 0:
        kinds.remove("wrong_task")
    require(
        not (cfg.bad_fraction > 0 and not kinds), "--bad-kinds leaves no kind of bad demonstration to record"
    )
    require(
        cfg.bad_fraction == 0 or cfg.labels_out is not None,
        "--bad-fraction needs --labels-out FILE.json: the labels go to a separate file, never into the dataset",
    )
    require_output(cfg.out, "--out", cfg.overwrite, "a LeRobotDataset", INFO_PATH)
    if cfg.labels_out is not None:
        require_creatable_file(Path(cfg.labels_out), "--labels-out", "labels.json")
        require(
            Path(cfg.out).resolve() not in Path(cfg.labels_out).resolve().parents,
            f"--labels-out {cfg.labels_out} is inside --out {cfg.out}: the labels go beside the dataset, "
            "never into it (a reader would take them for its own); choose a place outside --out",
        )
        require_new(cfg.labels_out, "--labels-out", cfg.overwrite)  # another recording's labels, replaced
    require(cfg.workers is None or cfg.workers >= 1, f"--workers must be >= 1, got {cfg.workers}")
    return tasks, cameras, kinds


def check_seed(seed: int) -> None:
    require(seed >= 0, f"--seed must be >= 0 (it seeds numpy's recording draws), got {seed}")


def bad_per_task(cfg: RecordConfig) -> int:
    return int(round(cfg.bad_fraction * cfg.episodes))


def plan_jobs(
    cfg: RecordConfig, tasks: list[str], cameras: tuple[str, ...], kinds: list[str]
) -> list[EpisodeJob]:
    """Decide every episode up front (deterministic in cfg.seed): which are bad, of which kind."""
    rng = np.random.default_rng([cfg.seed, 7919])
    jobs = []
    n_bad = bad_per_task(cfg)
    for task in tasks:
        bad_idx = set(rng.choice(cfg.episodes, size=n_bad, replace=False).tolist()) if n_bad else set()
        for k in range(cfg.episodes):
            kind = "good"
            recorded = task
            if k in bad_idx:
                kind = kinds[int(rng.integers(len(kinds)))]
                if kind == "wrong_task":
                    others = [t for t in tasks if t != task]
                    recorded = others[int(rng.integers(len(others)))]
            jobs.append(
                EpisodeJob(
                    task, k, kind, recorded, cfg.seed, cameras, cfg.image_shape, cfg.max_steps, cfg.noise_std
                )
            )
    return jobs


_WORKER_ENVS = OneEnvAtATime()  # the jobs come task after task


def _rollout(env: MetaWorldTask, seed: int, act, max_steps: int) -> dict:
    """Run `act(obs, t)` from a reset with `seed`, recording every frame until success or max_steps."""
    obs, positions = env.reset(seed)
    pngs: dict[str, list] = {c: [] for c in env.cameras}
    counts: dict[str, list] = {c: [] for c in env.cameras}  # each frame's pixel values, for statistics
    shapes: dict[str, tuple] = {}
    states, env_states, actions = [], [], []
    success = False
    for t in range(max_steps):
        for cam, image in env.render().items():
            pngs[cam].append(encode_png(image))
            counts[cam].append(image_histogram(image[None]))
            shapes[cam] = image.shape
        states.append(env.proprio(obs))
        env_states.append(obs.astype(np.float32))
        action = np.clip(act(obs, t), -1.0, 1.0).astype(np.float32)
        actions.append(action)
        result = env.step(action)
        obs = result.obs
        if result.success:
            success = True
            break
    return {
        "frames": {c: EncodedImages(pngs[c], np.stack(counts[c]), shapes[c]) for c in env.cameras},
        "state": np.stack(states),
        "env_state": np.stack(env_states),
        "action": np.stack(actions),
        "positions": positions,
        "success": success,
    }


def record_episode(job: EpisodeJob) -> dict:
    """Record one episode in a worker process; returns encoded frames and its label."""
    warnings.filterwarnings("ignore", module="metaworld")
    env = _WORKER_ENVS.get(job.task, job.cameras, job.image_shape, job.max_steps)
    expert = env.expert()
    rng = np.random.default_rng([job.base_seed, job.index, 104729])
    expert_act = lambda obs, t: expert.get_action(obs)  # noqa: E731
    for attempt in range(20):
        seed = episode_seed(job.base_seed, job.task, job.index, attempt=attempt)
        if job.kind == "noisy":
            noise = lambda obs, t: expert.get_action(obs) + rng.normal(0.0, job.noise_std, size=4)  # noqa: E731
            ep = _rollout(env, seed, noise, job.max_steps)
        elif job.kind == "failed":
            # The expert aims at object/goal positions shifted by 10-20 cm: a confident miss.
            offset = rng.uniform(0.10, 0.20, size=3) * rng.choice([-1.0, 1.0], size=3)
            offset[2] = abs(offset[2]) * 0.5

            def aim_wrong(obs, t, offset=offset):
                fake = obs.copy()
                fake[4:7] += offset
                fake[-3:] += offset
                return expert.get_action(fake)

            ep = _rollout(env, seed, aim_wrong, min(job.max_steps, 120))
        else:
            ep = _rollout(env, seed, expert_act, job.max_steps)
            if not ep["success"]:
                continue  # an expert failure is not a demonstration: try the next seed
            if job.kind == "truncated":
                length = len(ep["action"])
                keep = max(2, int(length * rng.uniform(0.3, 0.6)))
                ep = {
                    **ep,
                    "frames": {c: f[:keep] for c, f in ep["frames"].items()},
                    "state": ep["state"][:keep],
                    "env_state": ep["env_state"][:keep],
                    "action": ep["action"][:keep],
                    "success": False,
                }
        ep["seed"] = seed
        ep["job"] = job
        return ep
    # Most often the episodes were cut too short for the expert (a traceback once).
    remedy = (
        f"raise --max-steps (the default is {RecordConfig.max_steps})"
        if job.max_steps < EPISODE_LIMIT
        else "leave the task out of --tasks"
    )
    raise UserError(
        f"the scripted expert for {job.task} did not succeed within --max-steps {job.max_steps} from 20 "
        f"seeds in a row (episode {job.index}); {remedy}"
    )


def features_for(cameras: tuple[str, ...], image_shape: tuple[int, int]) -> dict[str, dict]:
    features = {f"observation.images.{cam}": image_feature(*image_shape) for cam in cameras}
    features["observation.state"] = {"dtype": "float32", "shape": [4], "names": ["x", "y", "z", "gripper"]}
    features[ENV_STATE] = {"dtype": "float32", "shape": [39], "names": None}
    features["action"] = {"dtype": "float32", "shape": [4], "names": ["dx", "dy", "dz", "grip"]}
    return features


def record(cfg: RecordConfig, progress: bool = True) -> dict:
    """Record the dataset described by `cfg`; returns a summary (episodes, frames, bad counts)."""
    from tqdm import tqdm

    tasks, cameras, kinds = validate(cfg)
    jobs = plan_jobs(cfg, tasks, cameras, kinds)
    labels = []
    out = Path(cfg.out)
    with atomic_dir(out, replace=cfg.overwrite) as tmp:
        writer = LeRobotWriter(
            tmp, fps=80, features=features_for(cameras, cfg.image_shape), robot_type="sawyer"
        )
        for task in tasks:  # task_index follows --tasks order, whatever the bad episodes say
            writer.task_index(INSTRUCTIONS[task])
        bar = tqdm(total=len(jobs), desc="record", unit="ep", disable=not progress)
        # the workers stopped here, whatever stops this loop, not whenever the collector finds them
        with bar, closing(_run_jobs(jobs, min(worker_count(cfg.workers), len(jobs)))) as episodes:
            for ep in episodes:
                job: EpisodeJob = ep["job"]
                frames = {f"observation.images.{c}": ep["frames"][c] for c in cameras}
                frames.update(
                    {
                        "observation.state": ep["state"],
                        ENV_STATE: ep["env_state"],
                        "action": ep["action"],
                    }
                )
                extra = {"metaworld/seed": int(ep["seed"]), "metaworld/positions": ep["positions"].tolist()}
                index = writer.add_episode(INSTRUCTIONS[job.recorded_task], frames, extra)
                if job.kind != "good":
                    labels.append(
                        {
                            "episode_index": index,
                            "kind": job.kind,
                            "task": job.task,
                            "recorded_task": job.recorded_task,
                            "success": ep["success"],
                            "length": len(ep["action"]),
                        }
                    )
                bar.update(1)
        writer.finalize()
    if cfg.labels_out is not None:
        cfg_json = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
        write_json_atomic(
            Path(cfg.labels_out),
            {"dataset": str(out), "config": cfg_json, "bad": labels, "num_episodes": len(jobs)},
        )
    return {
        "out": str(out),
        "episodes": len(jobs),
        "frames": writer.total_frames,
        "tasks": tasks,
        "bad": len(labels),
    }


def record_cached(cache: Path, *, workers: int | None = None, **options) -> Path:
    """The dataset recorded with these RecordConfig `options`, recorded into `cache` the first time.

    The directory name is a hash of the options, so a different recording never reuses it; a
    half-written or unreadable one is recorded again.
    """
    from leanvla.data.reader import LeRobotDataset

    key = hashlib.sha1(json.dumps(options, sort_keys=True).encode()).hexdigest()[:10]
    path = Path(cache) / f"metaworld-{key}"
    try:
        LeRobotDataset(path)
        return path
    except UserError:
        # the cache's own entry, and its labels file (--labels-out), replaced
        record(RecordConfig(out=path, workers=workers, overwrite=True, **options))
        return path


def _run_jobs(jobs: list[EpisodeJob], workers: int):
    if workers <= 1:
        try:
            for job in jobs:
                yield record_episode(job)
        finally:  # a library caller's process goes on: the last task's env is not kept
            _WORKER_ENVS.close()
        return
    yield from map_in_workers(record_episode, jobs, workers, _quiet_worker)


def _quiet_worker() -> None:
    import os

    os.environ.setdefault("MUJOCO_GL", "egl")
    warnings.filterwarnings("ignore")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def read_labels(path: Path) -> dict:
    """The labels file written by `record` (benchmarks read it; curation never does)."""
    return read_json(path, "labels file")
