"""One closed-loop Meta-World episode driven by a policy (receding horizon over action chunks).

The policy observes camera images and the 4-d proprio state (never the privileged 39-d state),
predicts a chunk of H actions, and the first `n_action_steps` of them are executed before it
observes again. Positions come from the evaluation seed stream and are checked against every
position a training demonstration used.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from leanvla.data.metaworld_env import MetaWorldTask
from leanvla.data.seeds import episode_seed
from leanvla.models.policy import Policy


@dataclass
class EpisodeResult:
    task: str
    episode: int
    seed: int
    success: bool
    steps: int
    chunks: int
    positions: list[float]
    skipped_seeds: int = 0
    frames: list[np.ndarray] = field(default_factory=list)  # only for saved rollouts
    inference_s: float = 0.0
    forward_passes: int = 0  # discrete head: action-expert passes over all chunks (0 for flow)


class TrainingPositions:
    """Object/goal positions of the training demonstrations; evaluation must not reuse any."""

    def __init__(self, positions: list[list[float]] | None):
        self.known = positions is not None
        self._rows = [np.asarray(p, dtype=np.float64) for p in (positions or []) if p is not None]

    def used(self, positions: np.ndarray) -> bool:
        return any(
            r.shape == positions.shape and np.allclose(r, positions, rtol=0, atol=1e-9) for r in self._rows
        )


def held_out_reset(
    env: MetaWorldTask, base_seed: int, episode: int, train: TrainingPositions
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Reset on the first evaluation seed whose positions no training demo used: obs, positions, seed, skips."""
    for attempt in range(100):
        seed = episode_seed(base_seed, env.name, episode, attempt=attempt, split="eval")
        obs, positions = env.reset(seed)
        if not train.used(positions):
            return obs, positions, seed, attempt
    raise RuntimeError(f"100 evaluation seeds of {env.name} all reproduce training positions")


def run_episode(
    policy: Policy,
    env: MetaWorldTask,
    episode: int,
    base_seed: int,
    train: TrainingPositions,
    n_action_steps: int,
    keep_frames: bool = False,
    on_chunk: Callable[[np.ndarray, np.ndarray], None] | None = None,
) -> EpisodeResult:
    """`on_chunk(obs, chunk)`, if given, sees the privileged 39-d observation each chunk was predicted
    from, with the chunk (H x A): a diagnostic can ask the scripted expert what it would have done."""
    obs, positions, seed, skipped = held_out_reset(env, base_seed, episode, train)
    task_id = torch.tensor([policy.task_id(env.instruction)])
    generator = torch.Generator().manual_seed(seed)  # the policy's noise is part of the episode's seed
    cams = [c.removeprefix("observation.images.") for c in policy.cameras]
    frames, steps, chunks, success, infer, passes = [], 0, 0, False, 0.0, 0
    while not env.done and not success:
        views = env.render()
        if keep_frames:
            frames.append(np.concatenate([views[c] for c in cams], axis=1))
        images = torch.from_numpy(np.stack([views[c] for c in cams])).permute(0, 3, 1, 2)[
            None
        ]  # 1 x N x 3 x H x W
        state = torch.from_numpy(env.proprio(obs))[None]
        t0 = time.perf_counter()
        chunk = policy.act(images, state, task_id, generator)[0].numpy()  # H x A
        infer += time.perf_counter() - t0
        chunks += 1
        if on_chunk is not None:
            on_chunk(obs, chunk)
        decoded = getattr(policy.model, "last_decode", None)
        passes += decoded.forward_passes if decoded is not None else 0
        for k, action in enumerate(chunk[:n_action_steps]):
            result = env.step(action)
            obs, steps, success = result.obs, steps + 1, result.success
            ended = success or env.done
            # One frame per state: the next chunk's render shows the state after its last action.
            if keep_frames and (ended or k < n_action_steps - 1):
                views = env.render()
                frames.append(np.concatenate([views[c] for c in cams], axis=1))
            if ended:
                break
    return EpisodeResult(
        env.name, episode, seed, success, steps, chunks, positions.tolist(), skipped, frames, infer, passes
    )
