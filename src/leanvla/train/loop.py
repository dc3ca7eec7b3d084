"""The training loop: AdamW, warm-up + cosine, gradient clipping, optional EMA, metrics.jsonl,
atomic resumable checkpoints, and data parallelism under torchrun.

Every random draw of a step (frames, augmentation shifts and state noise, flow noise and time)
comes from one seeded generator over the *global* batch; each process then takes its slice. So a
resumed run equals an uninterrupted one, and N processes equal one process on the same global batch.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from leanvla.adapt.inject import active_ranks, lora_sp_layers, spectral_loss
from leanvla.adapt.report import (
    ACTIVE_RANK,
    ACTIVE_RANK_FIGURE,
    active_rank_summary,
    plot_active_rank,
    shut_stacks,
)
from leanvla.data.augment import random_shift, state_dropout, state_noise
from leanvla.data.normalize import Normalizer
from leanvla.data.samples import Batch
from leanvla.errors import require
from leanvla.models.auxiliary import future_rows, standardised_environment_state
from leanvla.models.checkpoint import build_model, save_checkpoint
from leanvla.models.policy import Observation
from leanvla.report import AUX_FIGURE, plot_aux_terms, read_metrics
from leanvla.train.build import build_run
from leanvla.train.config import TrainConfig, check_state_augmentation
from leanvla.train.distributed import barrier, init_world, shutdown
from leanvla.train.log_window import LogWindow
from leanvla.train.optimizer import adamw
from leanvla.train.schedule import EMA, lr_at
from leanvla.train.state import (
    config_json,
    diverged_run,
    interrupted_run,
    load_training_state,
    prepare_run_dir,
    record_environment,
    save_training_state,
    truncate_metrics,
)


class ActionError(nn.Module):
    """The model's per-step training error as a module's forward, so DDP can wrap it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, obs: Observation, actions, noise, t, future=None):
        """B x H action error; with `future` (the auxiliary targets) also the B auxiliary error."""
        if future is None:
            return self.model.action_error(obs, actions, noise, t)
        return self.model.action_and_aux_error(obs, actions, noise, t, *future)


def flow_time(u: torch.Tensor) -> torch.Tensor:
    """pi0's flow-time distribution, Beta(1.5, 1) mapped to [0.001, 1], by inverse CDF of uniforms."""
    return u.pow(1 / 1.5) * 0.999 + 0.001


def train(cfg: TrainConfig, *, progress: bool = True, stop_after: int | None = None) -> Path:
    """Run (or resume) training; returns the run directory. `stop_after` simulates a kill (tests)."""
    cfg.check_ranges()
    check_state_augmentation(cfg.state_noise, cfg.state_dropout)
    cfg.check_options_used()
    cfg.check_adapter()
    cfg.check_aux()
    cfg.check_orth()
    cfg.check_distill()
    world = init_world()
    require(
        cfg.batch_size % world.size == 0,
        f"--batch-size {cfg.batch_size} is not divisible by the {world.size} processes",
    )
    torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // world.size))
    run = Path(cfg.out)
    resuming = prepare_run_dir(cfg, world.is_main)
    barrier(world)

    torch.manual_seed(cfg.seed)  # identical initial weights in every process
    parts = build_run(cfg, progress=progress and world.is_main)
    data, model = parts.data, parts.model.to(world.device)
    normalizer = Normalizer(parts.stats, data.state_key, data.action_key, data.cameras)
    tokens, token_mask = model.tokenizer.batch(data.instructions)
    optimizer = adamw(model, cfg.lr, cfg.weight_decay, world.device)
    ema = EMA(model, cfg.ema) if cfg.ema > 0 else None
    generator = torch.Generator().manual_seed(cfg.seed)
    validation = held_out(cfg, data, normalizer, tokens, token_mask) if cfg.val_episodes else None
    orth = None
    if cfg.orth.vector is not None:  # before resuming: updates count from the --init weights
        from leanvla.merge.orthogonal import OrthogonalPenalty
        from leanvla.models.checkpoint import read_weights

        start = {k: v.detach().clone() for k, v in model.state_dict().items()}
        orth = OrthogonalPenalty(model, read_weights(cfg.orth.vector_file()), start)
    step = 0
    if resuming:
        from leanvla.models.checkpoint import load_model

        model.load_state_dict(load_model(run / "last")[0].state_dict())
        state = load_training_state(run)
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        if ema is not None and state["ema"] is not None:
            ema.shadow = state["ema"]
        step = state["step"]
    if world.is_main:
        run.mkdir(parents=True, exist_ok=True)
        (run / "train_config.json").write_text(json.dumps(config_json(cfg), indent=2) + "\n")
        truncate_metrics(run, step)
        truncate_metrics(run, step, ACTIVE_RANK)
        record_environment(run, step)
    spectral_on = any(m.spectral_weight > 0 for m in lora_sp_layers(model).values())
    step_fn: nn.Module = ActionError(model)
    if parts.teacher is not None:
        from leanvla.decode.distill import DistilledError

        step_fn = DistilledError(model, parts.teacher.to(world.device), cfg.distill.weight)
    if world.size > 1:
        step_fn = DistributedDataParallel(step_fn)

    def checkpoint() -> None:
        finite = torch.stack([p.detach().isfinite().all() for p in model.parameters()]).all()
        require(bool(finite), diverged_run(run, step, saved, "a weight is not finite"))  # one sync
        if world.is_main:
            save_training_state(
                run, model, parts.meta, parts.stats, parts.provenance, optimizer, ema, generator, step
            )
        barrier(world)

    from tqdm import tqdm

    lo, hi = world.shard(cfg.batch_size)
    env_targets = standardised_environment_state(data.env_state) if data.env_state is not None else None
    window, window_start = LogWindow(), time.perf_counter()
    model.train()
    saved = step if resuming else None  # the step RUN/last holds
    bar = tqdm(
        total=cfg.steps,
        initial=step,
        desc="train",
        unit="step",
        disable=not (progress and world.is_main),
        mininterval=2.0,
    )
    try:
        with bar:  # ended before an interruption's message, which then has its own line
            while step < cfg.steps:
                draw = draw_step(cfg, data, normalizer, generator)  # the global batch, alike in every process
                # ---- this process's slice ----
                batch, rows = draw.batch, draw.rows[lo:hi]
                task = batch.task_index[lo:hi]
                obs = Observation(draw.images[lo:hi], draw.state[lo:hi], tokens[task], token_mask[task], task)
                obs = obs.map(lambda x: x.to(world.device))
                actions = normalizer.action(batch.actions[lo:hi]).to(world.device)
                mask = batch.action_mask[lo:hi].to(world.device)
                future = None
                if cfg.aux.horizon > 0:
                    future = auxiliary_targets(
                        data, normalizer, env_targets, rows, cfg.aux.horizon, world.device
                    )
                noise, t = draw.noise[lo:hi].to(world.device), draw.t[lo:hi].to(world.device)
                err = step_fn(obs, actions, noise, t, future)
                aux_loss = None
                if future is not None:
                    err, aux_terms = err
                    aux_loss = sum(aux_terms.values()).sum() / cfg.batch_size * world.size
                    for name, term in aux_terms.items():  # logged by target: which of them the head learns
                        window.add(f"aux_{name}", term.mean())
                # Normalised by the global count of real actions, times the world size because DDP averages:
                # the gradient equals that of the single-process mean over the global batch.
                loss = (err * mask).sum() / batch.action_mask.sum().clamp(min=1) * world.size
                objective = loss
                if aux_loss is not None:
                    objective = objective + cfg.aux.weight * aux_loss
                spectral = spectral_loss(model) if spectral_on else None  # (logged mean, weighted term)
                if spectral is not None:  # LoRA-SP's energy concentration (each process's own mean)
                    objective = objective + spectral[1]
                penalty = orth() if orth is not None else None
                if penalty is not None:  # CapVector: updates orthogonal to the capability vector
                    objective = objective + cfg.orth.weight * penalty
                optimizer.zero_grad(set_to_none=True)
                objective.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(
                    model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else float("inf")
                )
                lr = lr_at(step, cfg.lr, cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                optimizer.step()
                if ema is not None:
                    ema.update(model)
                step += 1
                window.add("loss", loss)
                window.step()
                bar.update(1)
                if step % cfg.log_every == 0 or step == cfg.steps:
                    window_steps = window.steps
                    means = window.means(
                        world.size
                    )  # the first read-back: waits for the window's queued work
                    elapsed = time.perf_counter() - window_start
                    record = {
                        "step": step,
                        "loss": means.pop("loss"),
                        "lr": lr,
                        "grad_norm": float(grad_norm),
                        "samples_per_s": window_steps * cfg.batch_size / elapsed,
                    }
                    # NaN weights stay NaN: stop before they reach a checkpoint
                    loss_is = f"the training loss is {record['loss']}"
                    require(math.isfinite(record["loss"]), diverged_run(run, step, saved, loss_is))
                    if validation is not None and (step % cfg.val_every == 0 or step == cfg.steps):
                        record["val_loss"] = validation.loss(model)  # after the timing window closed
                    if penalty is not None:
                        record["orth"] = float(penalty.detach())
                    if means:  # the window's mean of each auxiliary target's error, and their sum
                        record |= means
                        record["aux"] = sum(means.values())
                    ranks = active_ranks(model)  # empty without LoRA-SP layers
                    if ranks:
                        record["spectral"] = float(spectral[0].detach()) if spectral is not None else None
                        record["eta"] = next(iter(lora_sp_layers(model).values())).current_eta()
                        record["active_rank"] = sum(ranks.values()) / len(ranks)
                    bar.set_postfix(loss=f"{record['loss']:.4f}")
                    if world.is_main:
                        with open(run / "metrics.jsonl", "a") as f:
                            f.write(json.dumps(record) + "\n")
                        if ranks:
                            with open(run / ACTIVE_RANK, "a") as f:
                                f.write(json.dumps({"step": step, "layers": ranks}) + "\n")
                    window_start = time.perf_counter()
                if step % cfg.save_every == 0 or step == cfg.steps:
                    checkpoint()
                    saved = step
                if stop_after is not None and step >= stop_after:
                    shutdown(world)
                    return run
    except KeyboardInterrupt:  # Ctrl-C: say where the run stands and how it goes on
        raise KeyboardInterrupt(interrupted_run(run, step, cfg.steps, saved)) from None
    if world.is_main:
        finish(run, model, ema, parts, cfg)
    barrier(world)
    shutdown(world)
    return run


@dataclass
class StepDraw:
    """A step's global batch and every random draw it needs, made identically in every process."""

    rows: torch.Tensor  # B rows of the ChunkDataset
    batch: Batch
    images: torch.Tensor  # normalised and randomly shifted
    state: torch.Tensor  # normalised, with --state-noise and --state-dropout applied
    noise: torch.Tensor  # flow noise, B x H x A (B x K x H x A with K > 1 flow samples)
    t: torch.Tensor  # flow times, B (B x K)


def draw_step(cfg: TrainConfig, data, normalizer: Normalizer, generator: torch.Generator) -> StepDraw:
    """One step's draws from `generator`, in a fixed order: a resumed run and every process of a
    data-parallel one draw the same numbers."""
    rows = data.sample_indices(cfg.batch_size, generator, cfg.balanced)
    batch = data.batch(rows)
    images = random_shift(normalizer.images(batch.images), cfg.augment_shift, generator)
    k = cfg.flow_samples
    noise = torch.randn(cfg.batch_size, k, *batch.actions.shape[1:], generator=generator)
    t = flow_time(torch.rand(cfg.batch_size, k, generator=generator))
    if k == 1:
        noise, t = noise[:, 0], t[:, 0]
    state = state_noise(normalizer.state(batch.state), cfg.state_noise, generator)
    state = state_dropout(state, cfg.state_dropout, generator)
    return StepDraw(rows, batch, images, state, noise, t)


def auxiliary_targets(
    data, normalizer: Normalizer, env_targets: torch.Tensor | None, rows: torch.Tensor, horizon: int, device
) -> tuple[torch.Tensor, ...]:
    """What the auxiliary head predicts for `rows`: the images and state `horizon` frames ahead
    (targets only: no augmentation, no draws), and the present environment state when asked."""
    ahead = future_rows(rows, data.episode_end, horizon)
    future = (
        normalizer.images(data.images[ahead]).to(device),
        normalizer.state(data.state[ahead]).to(device),
    )
    if env_targets is not None:  # the present frame's: where things are now
        future += (env_targets[rows].to(device),)
    return future


def finish(run: Path, model: nn.Module, ema: EMA | None, parts, cfg: TrainConfig) -> None:
    """Write the final policy (the EMA weights when averaging) and the run's figures."""
    final = model
    if ema is not None:
        final = build_model(parts.meta)
        final.load_state_dict(ema.state_dict_for(model))
    save_checkpoint(run / "policy", final, parts.meta, parts.stats, parts.provenance)
    if cfg.aux.horizon > 0:
        plot_aux_terms(read_metrics(run / "metrics.jsonl"), run / AUX_FIGURE)
    if (run / ACTIVE_RANK).is_file():
        plot_active_rank(run / ACTIVE_RANK, run / ACTIVE_RANK_FIGURE)
        print(active_rank_summary(model, run / ACTIVE_RANK))
        for warning in shut_stacks(model, run / ACTIVE_RANK):
            print(f"warning: {warning}", file=sys.stderr)


def held_out(cfg: TrainConfig, data, normalizer, tokens, token_mask):
    """The validation set of --val-episodes, which must not overlap the training episodes."""
    from leanvla.data.reader import LeRobotDataset
    from leanvla.data.samples import read_episode_selection
    from leanvla.train.validation import ValidationSet

    dataset = LeRobotDataset(cfg.data)
    episodes = read_episode_selection(cfg.val_episodes, dataset.num_episodes)
    shared = sorted(set(episodes) & set(data.episodes))
    require(
        not shared,
        f"--val-episodes {cfg.val_episodes} shares episodes {shared[:5]} with the training episodes; "
        "hold them out with --episodes",
    )
    return ValidationSet(
        data.like(dataset, episodes), normalizer, tokens, token_mask, cfg.val_samples, cfg.seed
    )


def train_once(cfg: TrainConfig, *, progress: bool = True) -> Path:
    """Train (or resume) unless the run already finished with these steps, so reruns reuse it."""
    from leanvla.train.state import saved_step

    run = Path(cfg.out)
    if not ((run / "policy").is_dir() and saved_step(run) == cfg.steps):
        train(cfg, progress=progress)
    return run
