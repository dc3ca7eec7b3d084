"""The training loop's bookkeeping: the last step is always logged and saved, each step trains at
the schedule's learning rate, a run with --ema ends with the averaged weights as its policy,
`train_once` reuses a finished run, and a run that diverges stops before a NaN weight is saved."""

from __future__ import annotations

import re

import pytest
import torch
from safetensors.torch import load_file

from leanvla.report import read_metrics
from leanvla.train.loop import train, train_once
from leanvla.train.schedule import lr_at
from leanvla.train.state import load_training_state, saved_step
from tests.helpers import tiny_train_config

SCHEDULE = dict(lr=1e-3, warmup_steps=2, min_lr_ratio=0.1)


def _cfg(data, out, steps: int = 7):
    # logged and saved every 3 steps: the last of 7 is a multiple of neither
    return tiny_train_config(data, out, steps=steps, log_every=3, save_every=3, ema=0.5, **SCHEDULE)


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    return train(_cfg(data, tmp_path_factory.mktemp("r") / "run"), progress=False)


def test_the_last_step_is_logged_and_saved_whatever_the_intervals(run):
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")] == [3, 6, 7]
    assert saved_step(run) == 7


def test_each_step_trains_at_the_schedules_learning_rate(run):
    logged = {r["step"]: r["lr"] for r in read_metrics(run / "metrics.jsonl")}
    peak, warmup, ratio = SCHEDULE["lr"], SCHEDULE["warmup_steps"], SCHEDULE["min_lr_ratio"]
    # the record of step s (1-based, after the update) holds the rate of optimizer step s - 1
    assert logged == {s: pytest.approx(lr_at(s - 1, peak, warmup, 7, ratio), rel=1e-12) for s in (3, 6, 7)}


def test_the_policy_a_run_with_ema_ends_with_holds_the_averaged_weights(run):
    policy = load_file(str(run / "policy" / "model.safetensors"))
    live = load_file(str(run / "last" / "model.safetensors"))
    average = load_training_state(run)["ema"]
    assert average.keys() <= policy.keys()
    assert all(torch.equal(policy[k], v) for k, v in average.items())
    assert any(not torch.equal(live[k], v) for k, v in average.items())  # not the live weights


def test_train_once_reuses_a_finished_run_and_continues_one_given_more_steps(data, tmp_path):
    run = train_once(_cfg(data, tmp_path / "run"), progress=False)
    before = (run / "metrics.jsonl").read_text()
    train_once(_cfg(data, run), progress=False)
    assert (run / "metrics.jsonl").read_text() == before  # done already: nothing trained
    train_once(_cfg(data, run, steps=9), progress=False)
    assert saved_step(run) == 9 and read_metrics(run / "metrics.jsonl")[-1]["step"] == 9


def test_a_batch_the_processes_cannot_share_is_refused_before_anything_is_written(
    data, tmp_path, monkeypatch
):
    from leanvla.errors import UserError
    from leanvla.train import loop
    from leanvla.train.distributed import World

    monkeypatch.setattr(loop, "init_world", lambda: World(rank=0, size=3))
    out = tmp_path / "run"
    with pytest.raises(UserError, match="--batch-size 8 is not divisible by the 3 processes"):
        loop.train(tiny_train_config(data, out), progress=False)
    assert not out.exists()


@pytest.mark.parametrize(
    "save_every, says",
    [
        # the 4th update makes every weight NaN; the save after it finds them
        (2, "a weight is not finite at step 4: training diverged ({out}/last holds step 2, from before)"),
        # no save: the next step's loss is the first NaN logged
        (10, "the training loss is nan at step 5: training diverged (no checkpoint was saved)"),
    ],
)
def test_a_run_that_diverges_stops_and_keeps_no_nan_checkpoint(data, tmp_path, monkeypatch, save_every, says):
    import leanvla.train.loop
    from leanvla.errors import UserError

    monkeypatch.setattr(leanvla.train.loop, "lr_at", lambda step, *a: float("nan") if step == 3 else 1e-3)
    out = tmp_path / "run"
    message = says.format(out=out) + "; start over (--overwrite) with a lower --lr or more --warmup-steps"
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        train(tiny_train_config(data, out, steps=12, save_every=save_every), progress=False)
    assert saved_step(out) == (2 if save_every == 2 else None)
    assert not (out / "policy").exists()
    if save_every == 2:
        weights = load_file(str(out / "last" / "model.safetensors"))
        assert all(torch.isfinite(w).all() for w in weights.values())


def test_threads_0_trains_on_the_cores_the_process_may_use_not_the_machines(data, tmp_path, monkeypatch):
    """Three cores by affinity but a CPU quota of one: one thread (os.cpu_count() is the machine's)."""
    import json

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    monkeypatch.setattr("leanvla.cores.cgroup_quota", lambda: 1.0)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(4)  # what torch would start on 4 cores: not kept
        run = train(tiny_train_config(data, tmp_path / "run", steps=1, threads=0), progress=False)
    finally:
        torch.set_num_threads(before)
    assert [start["torch_threads"] for start in json.loads((run / "environment.json").read_text())] == [1]
