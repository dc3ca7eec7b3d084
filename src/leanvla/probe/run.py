"""`leanvla probe`: a policy's action chunks against a dataset's demonstrations, without a simulator.

For your own robot, where `leanvla eval`'s Meta-World is not the world: every `--every`-th frame of
the selected demonstrations goes through `Policy.act` as in closed loop, and its chunk is compared
with what the demonstrator did next, per task, per chunk step and per action dimension. The same
frames are probed again with the images, then the state, of the frame at the same point of the next
demonstration of the task: an error that barely moves says the policy does not read that input
(docs/RESULTS.md found, with swaps like these, the reference VLA reading its state and hardly its
images). The demonstrations the policy was trained on are reported apart from the rest
(`training_episodes`). `eval`'s decoding options (`--decoder` and its thresholds, `--flow-noise`)
decode the policy otherwise than saved, so a setting's cost in action error can be read offline
(docs/RESULTS.md found that cost does not choose the setting: it ranked seven decodings as the
closed loop did on one seed and not on another).

Writes OUT/probe.json, OUT/report.md and OUT/probe.png.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tyro.conf import OmitArgPrefixes

from leanvla.atomic import atomic_dir, require_output, write_json_atomic
from leanvla.data.lerobot_home import DatasetDir
from leanvla.decode.options import DecodingOptions, apply_overrides, decoding_summary
from leanvla.errors import require

RESULT = "probe.json"


@dataclass
class ProbeConfig:
    """Compare a policy's action chunks with a dataset's demonstrations, and probe what it reads."""

    policy: Path
    """Checkpoint directory, or a training run directory (uses its policy/, else last/)."""
    data: DatasetDir
    """LeRobotDataset whose demonstrations the policy's chunks are compared with (a directory, or a
    repo id in LeRobot's home)."""
    out: Path
    """Output directory: probe.json, report.md, probe.png."""
    episodes: Path | None = None
    """Probe these episodes only (as for train: a selection JSON, or e.g. 0:40,45)."""
    every: int = 1
    """Probe every N-th frame of each episode (1 = all)."""
    n_action_steps: int | None = None
    """Chunk steps counted as executed (default: the policy's)."""
    batch_size: int = 64
    """Frames per batch (the fast decoder runs one at a time: it moves a batch in step)."""
    seed: int = 0
    """Seed of the flow head's noise and of mask-predict's random order (one draw per frame, the
    same in every probe of it)."""
    overwrite: bool = False
    """Replace --out if it exists."""
    decoding: OmitArgPrefixes[DecodingOptions] = field(default_factory=DecodingOptions)
    """How the policy decodes its chunks, as `leanvla eval` takes it: a setting's cost in action
    error, measured on recordings."""


def couples_samples(policy) -> bool:
    """Whether a sample's chunk depends on the others in its batch: the fast decoder starts a block
    once every sample has committed enough of the one before."""
    cfg = getattr(policy.model, "cfg", None)
    return getattr(cfg, "head", None) == "discrete" and cfg.resolved_decoder() != "bidirectional"


def training_episodes(provenance: dict, dataset) -> set[int]:
    """The dataset's episodes the policy was trained on. In a Meta-World recording: those whose
    object/goal positions a training demonstration used, wherever either dataset now lies (the
    policy has seen that scene). Otherwise the episodes its provenance names, when `dataset` is
    the directory it was trained on."""
    from leanvla.rollout import TrainingPositions

    if provenance.get("positions") is not None and "metaworld/positions" in dataset.episodes.column_names:
        seen = TrainingPositions(provenance["positions"])
        positions = dataset.episode_column("metaworld/positions")
        return {e for e, p in enumerate(positions) if seen.used(np.asarray(p, dtype=np.float64))}
    if provenance.get("dataset") != str(Path(dataset.root).resolve()):
        return set()
    return set(provenance.get("episodes", []))


def check_tasks(dataset, episodes: list[int] | None, policy) -> None:
    """Every probed episode's task must be one the policy was trained on (in whatever case and
    punctuation: Policy.instruction_index): say which is not, and where."""
    tasks = dataset.episode_tasks()
    for episode in range(dataset.num_episodes) if episodes is None else episodes:
        require(
            policy.instruction_index(tasks[episode]) is not None,
            f"episode {episode} of {dataset.root} is '{tasks[episode]}', a task the policy was not trained "
            f"on (it knows {policy.instructions}); select other episodes with --episodes",
        )


def action_names(dataset, key: str, dim: int) -> list[str]:
    """The action's dimension names as info.json gives them (a list, or one list under a key)."""
    names = dataset.features[key].get("names")
    if isinstance(names, dict) and len(names) == 1:
        names = next(iter(names.values()))
    if isinstance(names, list) and len(names) == dim and all(isinstance(n, str) for n in names):
        return names
    return [f"{key}[{i}]" for i in range(dim)]


def probe(cfg: ProbeConfig, progress: bool = True) -> Path:
    from leanvla.data.episode_selection import read_episode_selection
    from leanvla.data.reader import LeRobotDataset
    from leanvla.data.samples import ChunkDataset
    from leanvla.models.checkpoint import (
        checkpoint_inputs,
        load_policy,
        read_meta,
        read_provenance,
        resolve_checkpoint,
    )
    from leanvla.probe.measure import counterpart_rows, probe_errors, probed_rows
    from leanvla.probe.report import write_report
    from leanvla.probe.summary import per_task
    from leanvla.train.build import check_contract

    out = Path(cfg.out)
    inputs = [("--data", cfg.data), ("--episodes", cfg.episodes), *checkpoint_inputs("--policy", cfg.policy)]
    require_output(out, "--out", cfg.overwrite, "a probe's output", RESULT, inputs)
    for flag, value in (("--every", cfg.every), ("--batch-size", cfg.batch_size)):
        require(value >= 1, f"{flag} must be >= 1, got {value}")
    checkpoint = resolve_checkpoint(cfg.policy)
    meta = read_meta(checkpoint)
    decode = cfg.decoding.overrides(meta, checkpoint)
    policy = load_policy(checkpoint)
    apply_overrides(policy, decode)
    executed = policy.n_action_steps if cfg.n_action_steps is None else cfg.n_action_steps
    require(
        1 <= executed <= policy.chunk_size,
        f"--n-action-steps must be within 1..{policy.chunk_size} (the policy's chunk), got {executed}",
    )
    dataset = LeRobotDataset(cfg.data)
    check_contract(meta["model"], dataset, f"policy {checkpoint}", meta.get("fps"))
    episodes = read_episode_selection(cfg.episodes, dataset.num_episodes) if cfg.episodes else None
    check_tasks(dataset, episodes, policy)

    started = time.perf_counter()
    data = ChunkDataset.for_policy(
        dataset, meta["model"], episodes, meta["state_key"], meta["action_key"], progress
    )
    rows = probed_rows(data, cfg.every)
    counterparts = counterpart_rows(data, rows)
    tasks = torch.tensor(  # -1: a task of the dataset no probed episode has (check_tasks)
        [-1 if (i := policy.instruction_index(t)) is None else i for t in data.instructions]
    )
    noise = torch.randn(
        len(rows), policy.chunk_size, policy.action_dim, generator=torch.Generator().manual_seed(cfg.seed)
    )
    batch_size = 1 if couples_samples(policy) else cfg.batch_size

    measured, swapped, passes = probe_errors(
        policy, data, rows, counterparts, noise, tasks, batch_size, progress
    )
    seconds = time.perf_counter() - started

    trained_on = training_episodes(read_provenance(checkpoint), dataset)
    episode_of = data.episode_index[rows]
    in_training = torch.isin(episode_of, torch.tensor(sorted(trained_on), dtype=episode_of.dtype))
    groups = {}
    for group, members in (("held_out", ~in_training), ("training", in_training)):
        if members.any():
            groups[group] = {
                "episodes": sorted(set(episode_of[members].tolist())),
                "summary": per_task(measured, swapped, counterparts >= 0, members, data, rows, executed),
            }

    result = {
        "policy": str(checkpoint.resolve()),
        "data": str(Path(dataset.root).resolve()),
        "protocol": {
            "every": cfg.every,
            "frames": len(rows),
            "episodes": len(data.episodes),
            "executed_steps": executed,
            "chunk_size": policy.chunk_size,
            "batch_size": batch_size,
            "seed": cfg.seed,
            "action_key": meta["action_key"],
            "action_names": action_names(dataset, meta["action_key"], policy.action_dim),
            "action_std": [float(s) for s in policy.normalizer.stats[meta["action_key"]]["std"]],
            **decoding_summary(meta, decode, len(passes), sum(passes)),
        },
        "groups": groups,
        "seconds": seconds,
    }
    with atomic_dir(out, replace=cfg.overwrite) as tmp:
        write_json_atomic(tmp / RESULT, result)
        write_report(tmp, result)
    return out
