"""A killed run, restarted, ends with exactly the weights of an uninterrupted run: plain, LoRA, LoRA-SP,
the discrete head, the auxiliary objective and the orthogonal penalty."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from leanvla.errors import UserError
from leanvla.train.loop import train
from leanvla.train.state import saved_step
from tests.helpers import tiny_train_config


def _cfg(data, out, **kw):
    options = dict(steps=12, save_every=4, log_every=2, warmup_steps=3, ema=0.9)
    return tiny_train_config(data, out, **{**options, **kw})


def _weights(run):
    return load_file(str(run / "policy" / "model.safetensors"))


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    return train(_cfg(data, tmp_path_factory.mktemp("r") / "full"), progress=False)


def test_stop_and_resume_equals_uninterrupted(data, uninterrupted, tmp_path):
    run = tmp_path / "resumed"
    train(_cfg(data, run), progress=False, stop_after=6)  # dies after step 6; last checkpoint is step 4
    assert saved_step(run) == 4 and not (run / "policy").exists()
    train(_cfg(data, run), progress=False)
    a, b = _weights(uninterrupted), _weights(run)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    steps = [
        int(line.split('"step": ')[1].split(",")[0])
        for line in (run / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == list(range(2, 13, 2))  # metrics of the redone steps are not duplicated
    starts = json.loads((run / "environment.json").read_text())
    assert [s["from_step"] for s in starts] == [0, 4]  # one record per start, each with its machine
    assert all(s["packages"]["torch"] and s["torch_threads"] >= 1 for s in starts)


def test_a_run_started_before_an_option_existed_resumes_at_its_default(data, uninterrupted, tmp_path):
    """train_config.json of an older leanvla lacks the options added since: they ran as their
    defaults, so the same command resumes the run (it was refused as `precision=None`)."""
    run = tmp_path / "older"
    train(_cfg(data, run), progress=False, stop_after=6)
    saved = json.loads((run / "train_config.json").read_text())
    del saved["precision"], saved["state_dropout"], saved["aux"]["pixels"], saved["lora"]["path"]
    (run / "train_config.json").write_text(json.dumps(saved))
    train(_cfg(data, run), progress=False)
    a, b = _weights(uninterrupted), _weights(run)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_metrics_line_cut_short_by_a_stop_is_dropped_and_the_run_resumes_exactly(
    data, uninterrupted, tmp_path
):
    run = tmp_path / "torn"
    train(_cfg(data, run), progress=False, stop_after=6)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 8, "loss": 1.2')  # stopped (or the disk filled) while this line was written
    train(_cfg(data, run), progress=False)
    a, b = _weights(uninterrupted), _weights(run)
    assert all(torch.equal(a[k], b[k]) for k in a)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(2, 13, 2))


def test_a_damaged_run_file_is_one_line_and_left_as_it_was(data, tmp_path):
    run = tmp_path / "damaged"
    train(_cfg(data, run), progress=False, stop_after=6)
    metrics = (run / "metrics.jsonl").read_text().splitlines()
    metrics[0] = metrics[0][:20]  # lines follow it: not a line cut short by a stop
    (run / "metrics.jsonl").write_text("".join(line + "\n" for line in metrics))
    with pytest.raises(
        UserError, match=r"metrics.jsonl: line 1 is not JSON \(.*\), yet lines follow it, so it "
    ):
        train(_cfg(data, run), progress=False)
    assert (run / "metrics.jsonl").read_text().splitlines() == metrics
    (run / "train_config.json").write_text('{"steps": ')
    with pytest.raises(UserError, match=r"cannot read .*train_config.json: .*; mend it, or pass --overwrite"):
        train(_cfg(data, run), progress=False)


def test_a_start_redone_replaces_its_environment_record(data, tmp_path):
    run = tmp_path / "redone"
    train(_cfg(data, run), progress=False, stop_after=2)  # dies before its first checkpoint
    train(_cfg(data, run), progress=False)
    assert [s["from_step"] for s in json.loads((run / "environment.json").read_text())] == [0]


@pytest.mark.parametrize("starts", [{"from_step": 0}, [{"step": 0}], [{"from_step": "0"}]])
def test_a_damaged_environment_record_is_one_line(data, tmp_path, starts):
    run = tmp_path / "edited"
    train(_cfg(data, run), progress=False, stop_after=6)
    (run / "environment.json").write_text(json.dumps(starts))  # each was a KeyError or a TypeError
    with pytest.raises(
        UserError, match=r"environment.json must hold a list of the run's starts, each with its from_"
    ):
        train(_cfg(data, run), progress=False)


def test_sigkill_mid_run_then_resume(data, tmp_path):
    """The real thing: `leanvla train` killed with SIGKILL after its first checkpoint, then rerun."""
    options = dict(steps=150, save_every=5)
    reference = train(_cfg(data, tmp_path / "reference", **options), progress=False)
    run = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "leanvla",
        "train",
        "--data",
        str(data),
        "--out",
        str(run),
        "--model.size",
        "tiny",
        "--steps",
        "150",
        "--batch-size",
        "8",
        "--save-every",
        "5",
        "--log-every",
        "2",
        "--chunk-size",
        "4",
        "--n-action-steps",
        "2",
        "--warmup-steps",
        "3",
        "--ema",
        "0.9",
        "--threads",
        "1",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while (saved_step(run) or 0) < 5 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 5 <= saved_step(run) < 150, "the kill should land mid-run"
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    a, b = _weights(reference), _weights(run)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resuming_with_different_options_is_refused(data, tmp_path):
    run = tmp_path / "r"
    train(_cfg(data, run), progress=False, stop_after=4)
    with pytest.raises(UserError, match="started with lr=0.0003, not 0.001"):
        train(_cfg(data, run, lr=1e-3), progress=False)


@pytest.mark.parametrize(
    "changed, named",
    [
        (
            dict(lengths=(6, 4, 9, 5, 7), tasks=("task a", "task b", "task a", "task c", "task a")),
            "its training episodes differ: 4 then, 5 now",
        ),
        (dict(tasks=("task a", "task b", "task a", "task d")), "its instructions differ: 3 then, 3 now"),
        (dict(seed=1), "its statistics of 'observation.images.cam' differ"),
    ],
)
def test_resuming_on_data_changed_in_place_is_refused(tmp_path, changed, named):
    """Episodes recorded into the dataset, or the dataset recorded again: the run went on with other
    normalisation statistics than its weights had learnt with, without a word."""
    import shutil

    from tests.data.helpers import synthetic_dataset

    data, run = tmp_path / "data", tmp_path / "r"
    synthetic_dataset(data)
    train(_cfg(data, run), progress=False, stop_after=4)
    shutil.rmtree(data)
    synthetic_dataset(data, **changed)
    with pytest.raises(UserError) as refused:
        train(_cfg(data, run), progress=False)
    assert str(refused.value) == (
        f"--data {data} is not the data {run} started on ({named}); restore it, pass --overwrite to start "
        f"again, or fine-tune from the run into another --out (--init {run / 'last'})"
    )
    shutil.rmtree(data)
    synthetic_dataset(data)  # as it was: the run goes on
    train(_cfg(data, run), progress=False)
    assert (run / "policy").is_dir()


def test_a_changed_option_in_a_group_is_named_alone(data, tmp_path):
    """The message held both whole groups of options (model: 14 of them) for the user to compare."""
    from dataclasses import replace

    run = tmp_path / "r"
    cfg = _cfg(data, run)
    train(cfg, progress=False, stop_after=4)
    with pytest.raises(UserError) as refused:
        train(replace(cfg, model=replace(cfg.model, flow_steps=3)), progress=False)
    assert str(refused.value) == (
        f"{run} holds a run started with model.flow_steps=None, not 3; resume it with the same options, "
        "choose another --out, or pass --overwrite"
    )


def test_a_moved_run_resumes_with_its_paths_spelt_another_way(data, uninterrupted, tmp_path, monkeypatch):
    from pathlib import Path

    train(_cfg(data, tmp_path / "r"), progress=False, stop_after=6)  # last checkpoint: step 4
    moved = (tmp_path / "r").rename(tmp_path / "moved")
    monkeypatch.chdir(data.parent)
    train(_cfg(Path(data.name), moved), progress=False)  # --data relative to the working directory now
    a, b = _weights(uninterrupted), _weights(moved)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_episodes_written_out_train_as_their_file_does_and_resume_from_elsewhere(data, tmp_path, monkeypatch):
    """`--episodes 0:2,3` trains on exactly the episodes a file of them selects, and the same
    command resumes the run moved, from another working directory."""
    from pathlib import Path

    selection = tmp_path / "selection.json"
    selection.write_text("[0, 1, 3]")
    from_file = train(_cfg(data, tmp_path / "file", episodes=selection), progress=False)
    train(_cfg(data, tmp_path / "r", episodes=Path("0:2,3")), progress=False, stop_after=6)
    moved = (tmp_path / "r").rename(tmp_path / "moved")
    monkeypatch.chdir(data.parent)
    train(_cfg(data, moved, episodes=Path("0:2,3")), progress=False)
    a, b = _weights(from_file), _weights(moved)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_runs_saved_before_train_io_existed_still_resume(data, uninterrupted, tmp_path):
    """Such a run trained without --lora.train-io: full fine-tuning ignores the adapter options, and
    an adapter run resumes with --lora.no-train-io (and only with it)."""
    import json

    from leanvla.adapt.config import LoRAOptions

    def started_before_train_io(run, **kw):
        train(_cfg(data, run, **kw), progress=False, stop_after=4)
        saved = json.loads((run / "train_config.json").read_text())
        del saved["lora"]["train_io"]
        (run / "train_config.json").write_text(json.dumps(saved))

    started_before_train_io(tmp_path / "full")
    train(_cfg(data, tmp_path / "full"), progress=False)
    assert (tmp_path / "full" / "policy").is_dir()

    adapt = dict(init=uninterrupted, adapter="lora", ema=0.0)
    started_before_train_io(tmp_path / "lora", lora=LoRAOptions(rank=4, train_io=False), **adapt)
    with pytest.raises(UserError, match="started with lora.train_io=False, not True;"):
        train(_cfg(data, tmp_path / "lora", lora=LoRAOptions(rank=4), **adapt), progress=False)
    train(_cfg(data, tmp_path / "lora", lora=LoRAOptions(rank=4, train_io=False), **adapt), progress=False)
    assert (tmp_path / "lora" / "policy").is_dir()


def test_finished_run_is_not_silently_redone(data, uninterrupted):
    with pytest.raises(UserError, match="already holds a finished run"):
        train(_cfg(data, uninterrupted), progress=False)


def _resumed_equals_whole(data, tmp_path, weights_file: str = "model.safetensors", **options):
    """Train once straight through and once killed after step 6 (last checkpoint: step 4) then
    restarted; the final `weights_file` must be equal bit for bit. Returns the restarted run and
    its final tensors."""
    whole = train(_cfg(data, tmp_path / "whole", **options), progress=False)
    run = tmp_path / "resumed"
    train(_cfg(data, run, **options), progress=False, stop_after=6)
    train(_cfg(data, run, **options), progress=False)
    a = load_file(str(whole / "policy" / weights_file))
    b = load_file(str(run / "policy" / weights_file))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    return run, b


def test_lora_sp_run_resumes_with_its_eta_schedule(data, uninterrupted, tmp_path):
    """Adapters resume too: the same adapter weights and the same step count behind eta."""
    from leanvla.adapt.config import LoRAOptions

    adapt = dict(init=uninterrupted, adapter="lora-sp", lora=LoRAOptions(rank=4, eta=0.5), ema=0.0)
    run, saved = _resumed_equals_whole(data, tmp_path, "adapter.safetensors", **adapt)
    assert int(next(v for k, v in saved.items() if k.endswith("forward_steps"))) == 12
    logged = [json.loads(line)["step"] for line in (run / "active_rank.jsonl").read_text().splitlines()]
    assert logged == list(range(2, 13, 2))  # the redone steps' ranks are not logged twice


def test_a_peft_lora_run_resumes_exactly(data, uninterrupted, tmp_path):
    from leanvla.adapt.config import LoRAOptions

    adapt = dict(init=uninterrupted, adapter="lora", lora=LoRAOptions(rank=4), ema=0.0)
    _, saved = _resumed_equals_whole(data, tmp_path, "adapter.safetensors", **adapt)
    assert any("lora_B" in k for k in saved)


def test_a_discrete_head_run_resumes_exactly(data, tmp_path):
    """Its action bins, fitted on the training actions, are the same after the restart."""
    _, saved = _resumed_equals_whole(data, tmp_path, head="discrete")
    assert any(k.startswith("expert.") and "bin" in k for k in saved)


def test_a_run_with_the_auxiliary_objective_resumes_exactly(data, tmp_path):
    """The auxiliary head (pixel decoder included) and its optimizer state are in last/ too."""
    from leanvla.train.config import AuxOptions

    run, saved = _resumed_equals_whole(data, tmp_path, aux=AuxOptions(horizon=2, pixels=True))
    assert any(k.startswith("aux_head.pixels.") for k in saved)
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == list(range(2, 13, 2)) and all("aux_pixels" in r for r in logged)


def test_a_run_with_the_orthogonal_penalty_resumes_exactly(data, uninterrupted, tmp_path):
    """The penalty measures updates from the --init weights, not from the resumed ones."""
    from safetensors.torch import save_file

    from leanvla.train.config import OrthOptions

    g = torch.Generator().manual_seed(0)
    vector = {
        k: torch.randn(v.shape, generator=g) for k, v in _weights(uninterrupted).items() if v.dim() == 2
    }
    save_file(vector, str(tmp_path / "tau.safetensors"))
    orth = OrthOptions(vector=tmp_path / "tau.safetensors", weight=10.0)
    run, _ = _resumed_equals_whole(data, tmp_path, init=uninterrupted, orth=orth, ema=0.0)
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(r["orth"] > 0 for r in logged)


def test_runs_saved_by_the_per_tensor_adamw_resume_exactly_with_it(data, tmp_path, monkeypatch):
    """Before the fused AdamW the CPU's was torch's per-tensor one: torch restores a saved
    optimizer's implementation with its state, so such a run ends as it would have without the cut."""
    from leanvla.train import optimizer

    monkeypatch.setattr(optimizer, "FUSED_ON", ())
    before = train(_cfg(data, tmp_path / "before"), progress=False)
    train(_cfg(data, tmp_path / "cut"), progress=False, stop_after=6)
    monkeypatch.undo()
    train(_cfg(data, tmp_path / "cut"), progress=False)
    a, b = _weights(before), _weights(tmp_path / "cut")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
