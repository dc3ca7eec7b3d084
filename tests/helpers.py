"""Helpers several test modules share."""

from __future__ import annotations

from pathlib import Path


def train_tiny_vla(data: Path, out: Path, **model_overrides) -> Path:
    """A tiny VLA trained for a few steps (a real run: checkpoints, metrics, policy/)."""
    from leanvla.train.config import ModelOptions, TrainConfig
    from leanvla.train.loop import train

    cfg = TrainConfig(
        data=data,
        out=out,
        model=ModelOptions(size="tiny", **model_overrides),
        steps=4,
        batch_size=8,
        save_every=2,
        log_every=1,
        chunk_size=8,
        n_action_steps=4,
        threads=1,
    )
    train(cfg, progress=False)
    return out
