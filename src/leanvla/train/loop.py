"""The training loop: AdamW, warm-up + cosine, gradient clipping, optional EMA, metrics.jsonl,
atomic resumable checkpoints, and data parallelism under torchrun.

Every random draw of a step (frames, augmentation shifts and state noise, flow noise and time)
comes from one seeded generator over the *global* batch; each process then takes its slice. So a
resumed run equals an uninterrupted one, and N processes equal one process on the same global batch.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
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
from leanvla.atomic import naming_a_full_disk, write_json_atomic
from leanvla.cores import cores_per_process
from leanvla.data.augment import random_shift, state_dropout, state_noise
from leanvla.data.normalize import Normalizer
from leanvla.data.samples import Batch
from leanvla.errors import InputWarning, require
from leanvla.models.auxiliary import future_rows, standardised_environment_state
from leanvla.models.checkpoint import build_model, save_checkpoint
from leanvla.models.policy import Observation
from leanvla.report import AUX_FIGURE, plot_aux_terms, read_metrics
from leanvla.run_lock import DirectoryLock
from leanvla.train.build import build_run
from leanvla.train.config import TrainConfig, check_state_augmentation
from leanvla.train.distributed import World, barrier, init_world, shutdown
from leanvla.train.log_window import LogWindow
from leanvla.train.optimizer import adamw
from leanvla.train.schedule import EMA, lr_at
from leanvla.train.state import (
    CONFIG_FILE,
    check_same_data,
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
    check_config(cfg)
    world = init_world()
    require(
        cfg.batch_size % world.size == 0,
        f"--batch-size {cfg.batch_size} is not divisible by the {world.size} processes",
    )
    torch.set_num_threads(cfg.threads or cores_per_process())  # not os.cpu_count(): see leanvla.cores
    if cfg.precision == "bf16" and world.device.type == "cpu":
        warnings.warn(
            "--precision bf16 on the CPU: bfloat16 autocast pays on GPUs (and CPUs with bfloat16 matrix "
            "units); elsewhere a step takes longer than at fp32 (benchmarks/precision.py measures both)",
            InputWarning,
            stacklevel=2,
        )
    run = Path(cfg.out)
    lock = DirectoryLock(run, "--out")  # held by the main process, from when the directory exists
    try:
        resuming = prepare_run_dir(cfg, world.is_main, lock)
        barrier(world)
        trainer = Trainer(cfg, world, resuming, progress=progress and world.is_main)
        if world.is_main:
            run.mkdir(parents=True, exist_ok=True)
            lock.take()
            write_json_atomic(run / CONFIG_FILE, config_json(cfg))  # whole, even if stopped here
            truncate_metrics(run, trainer.step)
            truncate_metrics(run, trainer.step, ACTIVE_RANK)
            record_environment(run, trainer.step)

        from tqdm import tqdm

        window, window_start = LogWindow(), time.perf_counter()
        bar = tqdm(
            total=cfg.steps,
            initial=trainer.step,
            desc="train",
            unit="step",
            disable=not (progress and world.is_main),
            mininterval=2.0,
        )
        try:
            with bar:  # ended before an interruption's message, which then has its own line
                while trainer.step < cfg.steps:
                    taken = trainer.take_step(window)
                    bar.update(1)
                    step = trainer.step
                    if step % cfg.log_every == 0 or step == cfg.steps:
                        record = trainer.log(taken, window, window_start)
                        bar.set_postfix(loss=f"{record['loss']:.4f}")
                        window_start = time.perf_counter()  # validation and writing are not timed
                    if step % cfg.save_every == 0 or step == cfg.steps:
                        trainer.checkpoint()
                    if stop_after is not None and step >= stop_after:
                        shutdown(world)
                        return run
        except KeyboardInterrupt:  # Ctrl-C: say where the run stands and how it goes on
            raise KeyboardInterrupt(interrupted_run(run, trainer.step, cfg.steps, trainer.saved)) from None
        if world.is_main:
            finish(run, trainer.model, trainer.ema, trainer.parts, cfg)
        barrier(world)
        shutdown(world)
        return run
    finally:
        lock.release()


def check_config(cfg: TrainConfig) -> None:
    """Every check of the options alone, before any data is read."""
    cfg.check_ranges()
    check_state_augmentation(cfg.state_noise, cfg.state_dropout)
    cfg.check_options_used()
    cfg.check_adapter()
    cfg.check_aux()
    cfg.check_orth()
    cfg.check_distill()


@dataclass
class TakenStep:
    """What an optimisation step leaves for the log."""

    loss: torch.Tensor  # the action loss, this process's share of the global-batch mean
    spectral: tuple[torch.Tensor, torch.Tensor] | None  # LoRA-SP's (logged mean, weighted term)
    penalty: torch.Tensor | None  # CapVector's orthogonal penalty, before its weight
    grad_norm: torch.Tensor  # before clipping
    lr: float


class Trainer:
    """A run's model, optimiser, EMA and random stream, built alike in every process (one seed), and
    the step that trains them. `train` drives it: `take_step`, then `log` and `checkpoint` at their
    intervals."""

    def __init__(self, cfg: TrainConfig, world: World, resuming: bool, progress: bool):
        self.cfg, self.world, self.run = cfg, world, Path(cfg.out)
        torch.manual_seed(cfg.seed)  # identical initial weights in every process
        self.parts = parts = build_run(cfg, progress=progress)
        if resuming:
            check_same_data(cfg, parts.stats, parts.provenance)  # before its weights are loaded
        data, model = parts.data, parts.model.to(world.device)
        self.data, self.model = data, model
        self.normalizer = Normalizer(parts.stats, data.state_key, data.action_key, data.cameras)
        self.tokens, self.token_mask = model.tokenizer.batch(data.instructions)
        self.optimizer = adamw(model, cfg.lr, cfg.weight_decay, world.device)
        self.ema = EMA(model, cfg.ema) if cfg.ema > 0 else None
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.validation = (
            held_out(cfg, data, self.normalizer, self.tokens, self.token_mask) if cfg.val_episodes else None
        )
        self.orth = self._orthogonal_penalty()  # before resuming: updates count from the --init weights
        self.step = 0
        self.saved: int | None = None  # the step RUN/last holds
        if resuming:
            self._resume()
        self.spectral_on = any(m.spectral_weight > 0 for m in lora_sp_layers(model).values())
        self.step_fn = self._step_fn()
        self.env_targets = (
            standardised_environment_state(data.env_state) if data.env_state is not None else None
        )
        self.shard = slice(*world.shard(cfg.batch_size))  # this process's rows of the global batch
        model.train()

    def _orthogonal_penalty(self):
        """CapVector's penalty on the update's alignment with --orth.vector (None without it)."""
        if self.cfg.orth.vector is None:
            return None
        from leanvla.merge.orthogonal import OrthogonalPenalty
        from leanvla.models.checkpoint import read_weights

        start = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        return OrthogonalPenalty(self.model, read_weights(self.cfg.orth.vector_file()), start)

    def _resume(self) -> None:
        """Weights, optimiser, EMA, random stream and step from RUN/last."""
        from leanvla.models.checkpoint import load_model

        self.model.load_state_dict(load_model(self.run / "last")[0].state_dict())
        state = load_training_state(self.run)
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.shadow = state["ema"]
        self.step = self.saved = state["step"]

    def _step_fn(self) -> nn.Module:
        """The per-step error as a module: the flow/token error, or distillation's; DDP-wrapped
        under torchrun."""
        step_fn: nn.Module = ActionError(self.model)
        if self.parts.teacher is not None:
            from leanvla.decode.distill import DistilledError

            teacher = self.parts.teacher.to(self.world.device)
            step_fn = DistilledError(self.model, teacher, self.cfg.distill.weight)
        if self.world.size > 1:
            step_fn = DistributedDataParallel(step_fn)
        return step_fn

    def take_step(self, window: LogWindow) -> TakenStep:
        """One optimisation step on the next global batch; its logged terms go into `window`."""
        cfg = self.cfg
        draw = draw_step(cfg, self.data, self.normalizer, self.generator)  # alike in every process
        loss, objective, spectral, penalty = self._objective(draw, window)
        self.optimizer.zero_grad(set_to_none=True)
        objective.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(
            self.model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else float("inf")
        )
        lr = lr_at(self.step, cfg.lr, cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        window.add("loss", loss)
        window.step()
        return TakenStep(loss, spectral, penalty, grad_norm, lr)

    def _objective(self, draw: StepDraw, window: LogWindow):
        """(the action loss, the objective differentiated, LoRA-SP's spectral terms, the orthogonal
        penalty) on this process's rows of `draw`; the auxiliary terms go into `window`."""
        cfg, world, model = self.cfg, self.world, self.model
        mine = self.shard
        batch, rows = draw.batch, draw.rows[mine]
        task = batch.task_index[mine]
        obs = Observation(draw.images[mine], draw.state[mine], self.tokens[task], self.token_mask[task], task)
        obs = obs.map(lambda x: x.to(world.device))
        actions = self.normalizer.action(batch.actions[mine]).to(world.device)
        mask = batch.action_mask[mine].to(world.device)
        future = None
        if cfg.aux.horizon > 0:
            future = auxiliary_targets(
                self.data, self.normalizer, self.env_targets, rows, cfg.aux.horizon, world.device
            )
        noise, t = draw.noise[mine].to(world.device), draw.t[mine].to(world.device)
        with torch.autocast(world.device.type, torch.bfloat16, enabled=cfg.precision == "bf16"):
            err = self.step_fn(obs, actions, noise, t, future)
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
        spectral = spectral_loss(model) if self.spectral_on else None  # (logged mean, weighted term)
        if spectral is not None:  # LoRA-SP's energy concentration (each process's own mean)
            objective = objective + spectral[1]
        penalty = self.orth() if self.orth is not None else None
        if penalty is not None:  # CapVector: updates orthogonal to the capability vector
            objective = objective + cfg.orth.weight * penalty
        return loss, objective, spectral, penalty

    def log(self, taken: TakenStep, window: LogWindow, window_start: float) -> dict:
        """The window's metrics record, appended to RUN/metrics.jsonl (and LoRA-SP's per-layer active
        ranks to RUN/active_rank.jsonl); a NaN or infinite loss stops the run here."""
        cfg, model, step = self.cfg, self.model, self.step
        window_steps = window.steps
        means = window.means(self.world.size)  # the first read-back: waits for the window's queued work
        elapsed = time.perf_counter() - window_start
        record = {
            "step": step,
            "loss": means.pop("loss"),
            "lr": taken.lr,
            "grad_norm": float(taken.grad_norm),
            "samples_per_s": window_steps * cfg.batch_size / elapsed,
        }
        # NaN weights stay NaN: stop before they reach a checkpoint
        loss_is = f"the training loss is {record['loss']}"
        require(math.isfinite(record["loss"]), diverged_run(self.run, step, self.saved, loss_is))
        if self.validation is not None and (step % cfg.val_every == 0 or step == cfg.steps):
            record["val_loss"] = self.validation.loss(model)  # after the timing window closed
        if taken.penalty is not None:
            record["orth"] = float(taken.penalty.detach())
        if means:  # the window's mean of each auxiliary target's error, and their sum
            record |= means
            record["aux"] = sum(means.values())
        ranks = active_ranks(model)  # empty without LoRA-SP layers
        if ranks:
            record["spectral"] = float(taken.spectral[0].detach()) if taken.spectral is not None else None
            record["eta"] = next(iter(lora_sp_layers(model).values())).current_eta()
            record["active_rank"] = sum(ranks.values()) / len(ranks)
        if self.world.is_main:
            _append_json_line(self.run / "metrics.jsonl", record)
            if ranks:
                _append_json_line(self.run / ACTIVE_RANK, {"step": step, "layers": ranks})
        return record

    def checkpoint(self) -> None:
        """Save RUN/last (atomic), unless a weight went NaN or infinite: then the run stops."""
        finite = torch.stack([p.detach().isfinite().all() for p in self.model.parameters()]).all()
        weight_is = "a weight is not finite"
        require(bool(finite), diverged_run(self.run, self.step, self.saved, weight_is))  # one sync
        if self.world.is_main:
            parts = self.parts
            save_training_state(
                self.run,
                self.model,
                parts.meta,
                parts.stats,
                parts.provenance,
                self.optimizer,
                self.ema,
                self.generator,
                self.step,
            )
        barrier(self.world)
        self.saved = self.step


def _append_json_line(path: Path, record: dict) -> None:
    """One line of a run's log (metrics.jsonl, active_rank.jsonl); a full disk names the log."""
    with naming_a_full_disk(path), open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


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
        normalizer.images(data.images(ahead)).to(device),
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
    from leanvla.data.episode_selection import read_episode_selection
    from leanvla.data.reader import LeRobotDataset
    from leanvla.train.validation import ValidationSet

    dataset = LeRobotDataset(cfg.data)
    episodes = read_episode_selection(cfg.val_episodes, dataset.num_episodes, "--val-episodes")
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
