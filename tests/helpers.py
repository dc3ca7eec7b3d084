"""Helpers several test modules share."""

from __future__ import annotations

import errno
import importlib.util
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch


def refused_by_the_filesystem(monkeypatch, path: Path) -> None:
    """Python's open of `path` refused, as a file another user wrote 0600 is: the tests may run as
    root, whom no mode refuses. leanvla opens a file a library could not read to learn why."""
    from leanvla import machine_errors

    def opening(file, *args, **kwargs):
        if Path(file) == Path(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return open(file, *args, **kwargs)

    monkeypatch.setattr(machine_errors, "open", opening, raising=False)


def cgroup_files(tmp_path: Path, lines: list[str], files: dict[str, str]) -> tuple[Path, Path]:
    """A /proc/self/cgroup of `lines` and a cgroup mount holding `files` (path -> contents)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    proc = tmp_path / "cgroup"
    proc.write_text("".join(line + "\n" for line in lines))
    mount = tmp_path / "sys"
    for name, text in files.items():
        (mount / name).parent.mkdir(parents=True, exist_ok=True)
        (mount / name).write_text(text + "\n")
    return proc, mount


def envs_made(monkeypatch) -> list[str]:
    """The tasks of the Meta-World envs made from here on, in order."""
    from leanvla.data.metaworld_env import MetaWorldTask

    made, make = [], MetaWorldTask.__init__

    def counted(self, name, *args, **kwargs):
        made.append(name)
        make(self, name, *args, **kwargs)

    monkeypatch.setattr(MetaWorldTask, "__init__", counted)
    return made


def record_in_process(out: Path, **options) -> Path:
    """A Meta-World recording by the real recorder, in this process (one worker, no progress bar)."""
    from leanvla.data.record import RecordConfig, record

    record(RecordConfig(out=out, workers=1, **options), progress=False)
    return out


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


def train_tiny_cnn(data: Path, out: Path) -> Path:
    """The CNN baseline trained for one step; returns its policy directory."""
    from leanvla.train.config import ModelOptions
    from leanvla.train.loop import train

    train(tiny_train_config(data, out, model=ModelOptions(type="cnn"), steps=1), progress=False)
    return out / "policy"


@contextmanager
def dispatched_ops() -> Iterator[list]:
    """Records every aten op run inside (its OpOverload), in order, for tests that name or count them."""
    from torch.utils._python_dispatch import TorchDispatchMode

    ops: list = []

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            ops.append(func)
            return func(*args, **(kwargs or {}))

    with Recorder():
        yield ops


@contextmanager
def host_reads() -> Iterator[list[str]]:
    """Records, by name, every op run inside that reads a tensor's value back to the host (`int(t)`,
    `t.item()`, `bool(t)`, `t.nonzero()`). On a GPU each one waits for every queued kernel; a CPU
    test sees the same ops, so it can check that a training step issues none. (Filled in when the
    block ends.)"""
    reads: list[str] = []
    with dispatched_ops() as ops:
        yield reads
    reads += [
        name for op in ops if (name := op.overloadpacket.__name__) in ("_local_scalar_dense", "nonzero")
    ]


needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device (the CPU tests check the same with host_reads)"
)


@contextmanager
def gpu_waits() -> Iterator[list[str]]:
    """On a CUDA device, where host_reads can only stand in: records, as 'file:line', every operation
    run inside that makes the host wait for the GPU (CUDA's sync debug mode reports read-backs and
    blocking copies alike)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        waits: list[str] = []
        try:
            yield waits
        finally:
            torch.cuda.set_sync_debug_mode("default")
    # Only CUDA's own report: the first call in a process also warns that the mode is a prototype.
    waits += [f"{w.filename}:{w.lineno}" for w in caught if "called a synchronizing" in str(w.message)]


@contextmanager
def loaded_tool(name: str):
    """tools/NAME.py as a module (tools/ is not a package), registered in sys.modules while in use:
    a dataclass looks its module up there."""
    path = Path(__file__).resolve().parents[1] / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"leanvla_tool_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def lerobot_python() -> Path:
    """LeRobot's Python (`make lerobot`'s venv): LEANVLA_LEROBOT_PYTHON, else the .venv-lerobot
    beside the venv running the tests; the test skips where there is none, and fails where the
    variable names one that does not exist."""
    named = os.environ.get("LEANVLA_LEROBOT_PYTHON")
    python = Path(named) if named else Path(sys.prefix).parent / ".venv-lerobot" / "bin" / "python"
    if not python.exists():
        if named:
            pytest.fail(f"LEANVLA_LEROBOT_PYTHON names {python}, which does not exist")
        pytest.skip(f"LeRobot is not installed at {python}: run `make lerobot` (`make test` does)")
    return python
