"""Helpers several test modules share."""

from __future__ import annotations

from pathlib import Path


def tiny_train_config(data: Path, out: Path, **overrides):
    """A TrainConfig for a tiny VLA on one thread; each test overrides what it examines."""
    from leanvla.train.config import ModelOptions, TrainConfig

    options = dict(
        data=data,
        out=out,
        model=ModelOptions(size="tiny"),
        steps=4,
        batch_size=8,
        log_every=1,
        chunk_size=4,
        n_action_steps=2,
        threads=1,
    )
    if overrides.get("init") is not None:
        del options["model"]  # a fine-tuned policy keeps its own architecture (--model.* is refused)
    return TrainConfig(**{**options, **overrides})


def train_tiny_vla(data: Path, out: Path, **model_overrides) -> Path:
    """A tiny VLA trained for a few steps (a real run: checkpoints, metrics, policy/)."""
    from leanvla.train.config import ModelOptions
    from leanvla.train.loop import train

    cfg = tiny_train_config(
        data,
        out,
        model=ModelOptions(size="tiny", **model_overrides),
        save_every=2,
        chunk_size=8,
        n_action_steps=4,
    )
    train(cfg, progress=False)
    return out
