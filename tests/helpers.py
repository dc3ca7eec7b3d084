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


class HostReads:
    """Records every op that reads a tensor's value back to the host (`int(t)`, `t.item()`,
    `bool(t)`, `t.nonzero()`). On a GPU each one waits for every queued kernel; a CPU test sees the
    same ops, so it can check that a training step issues none."""

    READS = ("_local_scalar_dense", "nonzero")

    def __enter__(self) -> list[str]:
        from torch.utils._python_dispatch import TorchDispatchMode

        reads = self.reads = []

        class Recorder(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                if func.overloadpacket.__name__ in HostReads.READS:
                    reads.append(func.overloadpacket.__name__)
                return func(*args, **(kwargs or {}))

        self.mode = Recorder()
        self.mode.__enter__()
        return reads

    def __exit__(self, *exc) -> None:
        self.mode.__exit__(*exc)
