"""The run directory and its resumable state.

    RUN/train_config.json   the options the run was started with
    RUN/metrics.jsonl       one line per logged step
    RUN/environment.json    the software and machine of each start (a resumed run adds one)
    RUN/last/               checkpoint + training_state.pt (optimizer, EMA, RNG, step), atomic
    RUN/policy/             the final checkpoint (EMA weights when EMA is on)

A killed run restarted with the same command resumes from last/ and ends with the same weights as
an uninterrupted run: every random draw comes from one generator whose state is checkpointed.
"""

from __future__ import annotations

import json
import typing
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path

import numpy as np
import torch

from leanvla.atomic import (
    atomic_dir,
    empty_directory,
    require_creatable,
    require_own,
    write_bytes_atomic,
    write_json_atomic,
)
from leanvla.environment import software_environment
from leanvla.errors import UserError, require
from leanvla.json_values import fits, is_whole, read_json
from leanvla.models.checkpoint import checkpoint_inputs, write_checkpoint_files
from leanvla.run_lock import DirectoryLock
from leanvla.train.config import TrainConfig

TRAINING_STATE = "training_state.pt"
ENVIRONMENT = "environment.json"
CONFIG_FILE = "train_config.json"
# Options that may change between a run and its resumption without changing what it computes
# (`out` included: a run directory moved, or spelt another way, resumes where it now is).
_RESUMABLE_CHANGES = {
    "out",
    "steps",
    "save_every",
    "log_every",
    "threads",
    "overwrite",
    "val_episodes",
    "val_every",
    "val_samples",
}


def config_json(cfg: TrainConfig) -> dict:
    def plain(v):
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(asdict(cfg))


def config_from_json(saved: dict, where: str = "train_config.json") -> TrainConfig:
    """The inverse of config_json: the TrainConfig a run was started with (to rerun it exactly, or
    with one option changed). Options the run predates take today's defaults, as resuming reads them."""
    from leanvla.adapt.config import LoRAOptions

    def build(cls, d: dict, prefix: str):
        hints = typing.get_type_hints(cls)
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise UserError(
                f"{where}: unknown option {prefix}{unknown[0]} (written by a newer leanvla?); "
                "remove it or upgrade leanvla"
            )
        values, declared = {}, {f.name: f.type for f in fields(cls)}
        for name, value in d.items():
            kind = hints[name]
            if kind is LoRAOptions:
                values[name] = LoRAOptions.from_dict(value, where)
            elif is_dataclass(kind):
                values[name] = build(kind, value, f"{prefix}{name}.")
            elif Path in (kind, *typing.get_args(kind)):
                require(
                    isinstance(value, str) or (value is None and kind is not Path),
                    f"{where}: {prefix}{name} must be a path, got {json.dumps(value)}",
                )
                values[name] = None if value is None else Path(value)
            else:
                require(
                    fits(value, kind),
                    f"{where}: {prefix}{name} must be {declared[name]}, got {json.dumps(value)}",
                )
                values[name] = value
        return cls(**values)

    cfg = build(TrainConfig, saved, "")
    if cfg.adapter == "full":  # runs from before check_used_by could carry --lora.* options they ignored
        cfg.lora = LoRAOptions()
    return cfg


def saved_step(run: Path) -> int | None:
    path = run / "last" / TRAINING_STATE
    if not path.is_file():
        return None
    return int(torch.load(path, map_location="cpu", weights_only=False)["step"])


def diverged_run(run: Path, step: int, saved: int | None, found: str) -> str:
    """Why a run whose loss or weights went NaN or infinite stopped, and what to do."""
    kept = (
        f"{run / 'last'} holds step {saved}, from before" if saved is not None else "no checkpoint was saved"
    )
    return (
        f"{found} at step {step}: training diverged ({kept}); start over (--overwrite) with a lower --lr "
        "or more --warmup-steps"
    )


def interrupted_run(run: Path, step: int, steps: int, saved: int | None) -> str:
    """Where a run stopped by Ctrl-C stands, and what the same command does next."""
    if saved is None:
        return (
            f"at step {step} of {steps}, before its first checkpoint (--save-every): the same command "
            "starts over"
        )
    return f"at step {step} of {steps}; the same command resumes from {run / 'last'} (step {saved})"


def _inputs(cfg: TrainConfig) -> list[tuple[str, Path | None]]:
    """What a run reads, which an --out replaced (--overwrite) must not hold."""
    return [
        ("--data", cfg.data),
        *checkpoint_inputs("--init", cfg.init),
        ("--episodes", cfg.episodes),
        ("--val-episodes", cfg.val_episodes),
        ("--orth.vector", cfg.orth.vector),
        *checkpoint_inputs("--distill.teacher", cfg.distill.teacher),
    ]


def prepare_run_dir(cfg: TrainConfig, is_main: bool, lock: DirectoryLock) -> bool:
    """Check --out, taking its `lock` where it exists (the main process); returns True when the run
    resumes from RUN/last."""
    run = Path(cfg.out)
    require_creatable(run, "--out", _inputs(cfg) if cfg.overwrite else ())
    require_own(run, "--out", "a training run", CONFIG_FILE, cfg.overwrite)
    if is_main and run.is_dir():
        lock.take()  # before anything is read or deleted: another process may be training there
    if cfg.overwrite and run.exists():
        if is_main:
            empty_directory(run)
        return False
    step = saved_step(run)
    if step is None:
        return False
    # Read back as a TrainConfig: options added since the run started take their defaults, as it ran.
    path = run / CONFIG_FILE
    saved = config_json(config_from_json(_read_json(path), str(path))) if path.is_file() else {}
    saved, now = _paths_resolved(saved), _paths_resolved(config_json(cfg))
    for key in now:
        changed = None if key in _RESUMABLE_CHANGES else _first_change(key, saved.get(key), now[key])
        if changed is not None:
            name, before, after = changed
            raise UserError(
                f"{run} holds a run started with {name}={before!r}, not {after!r}; "
                f"resume it with the same options, choose another --out, or pass --overwrite"
            )
    if step >= cfg.steps and (run / "policy").is_dir():
        raise UserError(
            f"{run} already holds a finished run of {step} steps; choose another --out, pass --overwrite, "
            "or raise --steps to continue it"
        )
    return True


def check_same_data(cfg: TrainConfig, stats: dict, provenance: dict) -> None:
    """A run resumes on the data it started on: its weights learnt with that data's normalisation
    (RUN/last keeps it), and its random stream indexes that data's frames. Resumed on a dataset
    changed in place (episodes recorded into it, or recorded again), it went on without a word,
    normalising with other statistics than its weights had learnt with; a dataset whose shapes
    changed was a traceback. `stats` and `provenance` are what the data at --data gives now."""
    from leanvla.models.checkpoint import read_provenance, read_stats

    last = Path(cfg.out) / "last"
    then = read_provenance(last)
    changed = None
    for key, what in (("instructions", "instructions"), ("episodes", "training episodes")):
        if then.get(key) is not None and then[key] != provenance.get(key):
            changed = f"its {what} differ: {len(then[key])} then, {len(provenance.get(key) or [])} now"
            break
    else:
        saved = read_stats(last)
        feature = next((k for k in sorted({*saved, *stats}) if not _close(saved.get(k), stats.get(k))), None)
        if feature is not None:
            changed = f"its statistics of '{feature}' differ"
    if changed is not None:
        raise UserError(
            f"--data {cfg.data} is not the data {cfg.out} started on ({changed}); restore it, pass "
            f"--overwrite to start again, or fine-tune from the run into another --out (--init {last})"
        )


def _close(saved: dict | None, now: dict | None) -> bool:
    """Two features' statistics agree, up to the rounding of another machine's arithmetic (a run
    may resume elsewhere)."""
    if not isinstance(saved, dict) or not isinstance(now, dict) or set(saved) != set(now):
        return False
    for name in saved:
        a, b = np.asarray(saved[name], dtype=np.float64), np.asarray(now[name], dtype=np.float64)
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-4, atol=1e-6):
            return False
    return True


def _first_change(name: str, before, after) -> tuple[str, object, object] | None:
    """(the dotted option, its value then, its value now) for the first option that differs, down
    into option groups (`model.size`, not the whole of `model`); None when nothing does."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in [*after, *(k for k in before if k not in after)]:
            changed = _first_change(f"{name}.{key}", before.get(key), after.get(key))
            if changed is not None:
                return changed
        return None
    return None if before == after else (name, before, after)


def _paths_resolved(config: dict) -> dict:
    """A run's options with each file or directory option as the absolute path it names, so that
    `data/x`, `./data/x` and `/home/me/data/x` compare equal when resuming."""
    resolved = dict(config)
    for key in ("data", "episodes", "init"):
        if resolved.get(key) is not None:
            resolved[key] = str(Path(resolved[key]).resolve())
    for group, key in (("orth", "vector"), ("distill", "teacher")):
        if isinstance(resolved.get(group), dict) and resolved[group].get(key) is not None:
            resolved[group] = {**resolved[group], key: str(Path(resolved[group][key]).resolve())}
    return resolved


def save_training_state(
    run: Path,
    model,
    meta: dict,
    stats: dict,
    provenance: dict,
    optimizer,
    ema,
    generator: torch.Generator,
    step: int,
) -> None:
    with atomic_dir(run / "last", replace=True) as tmp:
        write_checkpoint_files(tmp, model, meta, stats, provenance)
        state = {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(),
            "ema": ema.shadow if ema is not None else None,
        }
        save_torch(state, tmp / TRAINING_STATE)


def save_torch(obj, path: Path) -> None:
    """torch.save, its I/O errors the OSError they are, naming the file: given a path, PyTorch's
    writer reported a full disk as "RuntimeError: ... unexpected pos 129088 vs 128980", a
    traceback; through a file of ours, the file's OSError is what that RuntimeError was handling,
    or what closing the file raises."""
    try:
        with open(path, "wb") as f:
            torch.save(obj, f)
    except (RuntimeError, OSError) as exc:
        failed = exc if isinstance(exc, OSError) else exc.__context__
        if not isinstance(failed, OSError) or failed.errno is None:
            raise
        raise OSError(failed.errno, failed.strerror, str(path)) from exc


def load_training_state(run: Path) -> dict:
    return torch.load(run / "last" / TRAINING_STATE, map_location="cpu", weights_only=False)


def truncate_metrics(run: Path, step: int, name: str = "metrics.jsonl") -> None:
    """Drop lines of RUN/name logged after `step` (they belong to the part of the run being redone),
    and a last line cut short (the run stopped, or the disk filled, while it was written)."""
    path = run / name
    if not path.is_file():
        return
    lines = [
        (number, line)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if line.strip()
    ]
    kept = []
    for number, line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == lines[-1][0]:
                break
            raise UserError(
                f"{path}: line {number} is not JSON ({exc}), yet lines follow it, so it was not cut "
                "short by a stop; mend or delete it to resume"
            ) from exc
        if record.get("step", 0) <= step:
            kept.append(line)
    write_bytes_atomic(path, "".join(line + "\n" for line in kept).encode())


def _read_json(path: Path):
    """A run's JSON file, in one line if it does not parse (edited by hand)."""
    return read_json(path, remedy="mend it, or pass --overwrite to start the run again")


def record_environment(run: Path, step: int) -> None:
    """Add this start's software and machine to RUN/environment.json, as starting at `step`.

    A run resumed elsewhere has taken part of its steps on each machine; entries from a part being
    redone (started at or after `step`) are dropped, as truncate_metrics drops their metrics.
    """
    path = run / ENVIRONMENT
    starts = _read_json(path) if path.is_file() else []
    require(
        isinstance(starts, list)
        and all(isinstance(s, dict) and is_whole(s.get("from_step"), 0) for s in starts),
        f"{path} must hold a list of the run's starts, each with its from_step; mend it, or pass --overwrite "
        "to start the run again",
    )
    starts = [s for s in starts if s["from_step"] < step]
    write_json_atomic(path, [*starts, {"from_step": step, **software_environment()}])
