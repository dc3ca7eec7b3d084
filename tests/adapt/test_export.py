"""Folding adapters into plain weights: exact for LoRA, mean routing for LoRA-SP; and a changed
base is refused."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch

from leanvla.adapt.config import LoRAOptions
from leanvla.adapt.export import fold_adapters
from leanvla.adapt.inject import inject_adapters, is_adapted
from leanvla.cli import main
from leanvla.errors import UserError
from leanvla.models.checkpoint import load_model
from tests.adapt.test_inject import fixed_error


def test_lora_folds_exactly(tiny_run):
    model, *_ = load_model(tiny_run)
    inject_adapters(model, "lora", LoRAOptions(rank=4))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.05)
    expected = fixed_error(model)
    fold_adapters(model)
    assert not is_adapted(model)
    assert "backbone.0.attn.q_proj.weight" in model.state_dict()  # the base model's own names again
    torch.testing.assert_close(fixed_error(model), expected, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def adapter_run(tiny_run, tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("adapter") / "sp"
    args = ["train", "--data", str(tiny_dataset), "--out", str(out), "--init", str(tiny_run)]
    opts = ["--adapter", "lora-sp", "--lora.rank", "8", "--lora.eta", "0.6", "--steps", "6"]
    assert (
        main([*args, *opts, "--batch-size", "8", "--log-every", "2", "--save-every", "3", "--threads", "1"])
        == 0
    )
    return out


def test_train_with_lora_sp_keeps_base_frozen_and_logs_active_rank(adapter_run, tiny_run):
    import json

    from leanvla.models.layout import VLA_LAYOUT

    base, *_ = load_model(tiny_run)
    adapted, meta, *_ = load_model(adapter_run)
    assert meta["adapter"]["kind"] == "lora-sp" and meta["adapter"]["eta_decay_steps"] == 3
    own = adapted.state_dict()
    io = tuple(f"{name}." for name in VLA_LAYOUT.io)
    for name, tensor in base.state_dict().items():
        parts = name.rsplit(".", 1)
        key = f"{parts[0]}.base_layer.{parts[1]}" if f"{parts[0]}.base_layer.{parts[1]}" in own else name
        # The stacks' weights stay frozen; the input and output modules train in full (--lora.train-io).
        assert torch.equal(own[key], tensor) != name.startswith(io), name
    lines = [json.loads(s) for s in (adapter_run / "metrics.jsonl").read_text().splitlines()]
    assert all(0 < r["active_rank"] <= 8 for r in lines) and lines[-1]["eta"] == 0.6
    ranks = (adapter_run / "active_rank.jsonl").read_text().splitlines()
    assert len(ranks) == 3 and (adapter_run / "active_rank.png").stat().st_size > 1000
    assert not (adapter_run / "policy" / "model.safetensors").exists()


def test_lora_sp_export_runs_and_evaluates(adapter_run, tiny_run, tiny_dataset, tmp_path):
    from leanvla.evaluate import EvalConfig, evaluate

    out = tmp_path / "folded"
    args = ["export", "--policy", str(adapter_run), "--out", str(out), "--samples", "16", "--batch-size", "8"]
    assert main(args) == 0
    model, meta, *_ = load_model(out)
    assert "adapter" not in meta and meta["exported_from"]["adapter"]["kind"] == "lora-sp"
    assert not is_adapted(model)
    # The calibration runs in eval mode, where routing is recorded only on request: the fold must
    # still have a mean gate to apply, so the adapted weights moved.
    folded, base = model.state_dict(), load_model(tiny_run)[0].state_dict()
    assert not torch.equal(folded["backbone.0.attn.q_proj.weight"], base["backbone.0.attn.q_proj.weight"])
    result = evaluate(EvalConfig(policy=out, episodes=1, max_steps=5, workers=1), progress=False)
    assert set(result["per_task"]) == {"reach-v3", "drawer-close-v3"}


def test_calibration_options_are_refused_for_lora_which_folds_exactly(adapter_run, tmp_path, capsys):
    from leanvla.adapt.export import ExportConfig

    lora = tmp_path / "lora"  # a LoRA adapter record: the kind is all the check reads
    shutil.copytree(adapter_run / "policy", lora)
    meta = json.loads((lora / "config.json").read_text())
    meta["adapter"]["kind"] = "lora"
    (lora / "config.json").write_text(json.dumps(meta))
    ExportConfig(policy=adapter_run, out=tmp_path / "o", samples=16).check_options_used(["--samples"])
    with pytest.raises(
        UserError, match=f"--samples calibrates LoRA-SP's routing, but {lora} holds lora adapters"
    ):
        ExportConfig(policy=lora, out=tmp_path / "o", samples=16).check_options_used()
    out = tmp_path / "folded"
    assert (
        main(["export", "--policy", str(lora), "--out", str(out), "--batch-size", "64"]) == 2
    )  # its default
    assert capsys.readouterr().err.strip().splitlines() == [
        f"leanvla export: error: --batch-size calibrates LoRA-SP's routing, but {lora} holds lora adapters, "
        "which fold exactly: drop it"
    ]
    assert not out.exists()


@pytest.mark.parametrize("flag", ["--samples", "--batch-size"])
def test_an_empty_calibration_is_refused_in_one_line(adapter_run, tmp_path, capsys, flag):
    out = tmp_path / "folded"
    assert main(["export", "--policy", str(adapter_run), "--out", str(out), flag, "0"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"leanvla export: error: {flag} must be >= 1, got 0"
    ]
    assert not out.exists()


def test_a_plain_checkpoint_an_existing_out_and_missing_calibration_data_are_refused(
    adapter_run, tiny_run, tmp_path, capsys
):
    def refused(*argv: str) -> str:
        assert main(["export", *argv]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1, lines
        return lines[0]

    out = tmp_path / "folded"
    plain = refused("--policy", str(tiny_run), "--out", str(out))
    assert plain.endswith("has no adapters to fold; it is already a plain checkpoint")
    out.mkdir()
    taken = refused("--policy", str(adapter_run), "--out", str(out))
    assert taken.endswith(f"{out} already exists; choose another --out or pass --overwrite")
    missing = refused(
        "--policy", str(adapter_run), "--out", str(tmp_path / "f2"), "--data", str(tmp_path / "gone")
    )
    assert missing.endswith(f"calibration data {tmp_path / 'gone'} does not exist; pass --data DIR")
    assert list(out.iterdir()) == [] and not (tmp_path / "f2").exists()


def test_calibration_data_the_policy_cannot_read_is_one_line_before_decoding(
    adapter_run, tiny_dataset, tmp_path, capsys
):
    from leanvla.data.reader import LeRobotDataset
    from tests.data.helpers import shaped_like

    (state_dim,) = LeRobotDataset(tiny_dataset).features["observation.state"]["shape"]
    other = shaped_like(tmp_path / "other", tiny_dataset, extra_state=5)
    out = tmp_path / "folded"
    assert main(["export", "--policy", str(adapter_run), "--out", str(out), "--data", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].endswith(f"but {other} has [{state_dim + 5}]")
    assert "expects 'observation.state' of shape" in err and "decode" not in err and not out.exists()


def test_an_adapter_checkpoint_is_no_base_for_training_or_new_adapters(
    adapter_run, tiny_dataset, tmp_path, capsys
):
    from leanvla.models.checkpoint import adapter_record, resolve_checkpoint

    directory = resolve_checkpoint(adapter_run)
    with pytest.raises(
        UserError, match=f"{directory} is itself an adapter checkpoint; fold it into plain weights"
    ):
        adapter_record("lora", LoRAOptions(), 0, adapter_run)
    out = tmp_path / "ft"
    args = [
        "train",
        "--data",
        str(tiny_dataset),
        "--init",
        str(adapter_run),
        "--out",
        str(out),
        "--steps",
        "1",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--init {directory} holds adapters; fold them into plain weights" in err[0], err
    assert not out.exists()


def test_adapters_whose_base_is_gone_are_one_clear_error(adapter_run, tmp_path):
    from leanvla.models.checkpoint import resolve_checkpoint

    moved = tmp_path / "adapted"
    shutil.copytree(resolve_checkpoint(adapter_run), moved)
    meta = json.loads((moved / "config.json").read_text())
    meta["adapter"]["base"] = str(tmp_path / "deleted_base")
    (moved / "config.json").write_text(json.dumps(meta))
    with pytest.raises(
        UserError, match=f"adapts the base checkpoint {tmp_path / 'deleted_base'}, which is gone"
    ):
        load_model(moved)


def test_changed_base_is_refused(adapter_run, tiny_run, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    from leanvla.models.checkpoint import resolve_checkpoint

    base_copy = tmp_path / "base"
    shutil.copytree(resolve_checkpoint(tiny_run), base_copy)
    run_copy = tmp_path / "run"
    shutil.copytree(adapter_run / "policy", run_copy)
    config = run_copy / "config.json"
    config.write_text(config.read_text().replace(str(resolve_checkpoint(tiny_run).resolve()), str(base_copy)))
    weights = load_file(str(base_copy / "model.safetensors"))
    weights["backbone_norm.weight"] += 1
    save_file(weights, str(base_copy / "model.safetensors"))
    assert main(["export", "--policy", str(run_copy), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "changed since" in err[0]
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("base", 3, "'base' must be str, got 3"),
        ("eta_decay_steps", "1", "'eta_decay_steps' must be int, got \"1\""),
        ("base_sha256", None, "'base_sha256' must be str, got null"),
    ],
)
def test_an_adapter_record_of_the_wrong_kind_is_one_line_on_load(adapter_run, tmp_path, key, value, message):
    run_copy = tmp_path / "run"
    shutil.copytree(adapter_run / "policy", run_copy)
    meta = json.loads((run_copy / "config.json").read_text())
    meta["adapter"][key] = value
    (run_copy / "config.json").write_text(json.dumps(meta))
    where = f"{run_copy / 'config.json'}, 'adapter'"
    with pytest.raises(UserError, match=f"^{re.escape(f'{where}: {message}')}$"):
        load_model(run_copy)


def test_an_adapter_option_this_version_lacks_is_refused_on_load(adapter_run, tmp_path, capsys):
    run_copy = tmp_path / "run"
    shutil.copytree(adapter_run / "policy", run_copy)
    config = run_copy / "config.json"
    meta = json.loads(config.read_text())
    meta["adapter"]["future_option"] = 1
    config.write_text(json.dumps(meta))
    assert main(["export", "--policy", str(run_copy), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config.json, 'adapter': unknown adapter option 'future_option'" in err[0]
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "options, message",
    [
        (["--adapter", "lora-sp", "--lora.eta", "1.5"], "--lora.eta must be in (0, 1]"),
        (["--adapter", "lora", "--lora.regex", "nothing_here"], "matches no nn.Linear"),
        (["--adapter", "lora", "--lora.rank", "999"], "rank 999 is larger than"),
        # An option the adapter would ignore: without --adapter, training would touch every weight.
        (["--lora.rank", "8"], "--lora.rank sets an adapter, but --adapter is full (the default)"),
        (["--adapter", "full", "--lora.no-train-io"], "--lora.no-train-io sets an adapter"),
        # Typed at its default value: only the command line tells it from an untouched option.
        (["--lora.rank", "32"], "--lora.rank sets an adapter, but --adapter is full"),
        (["--lora.train-io"], "--lora.train-io sets an adapter, but --adapter is full"),
        (["--adapter", "lora", "--lora.eta_start=1.0"], "--lora.eta_start applies to --adapter lora-sp only"),
        (["--adapter", "lora", "--lora.eta", "0.8"], "--lora.eta applies to --adapter lora-sp only"),
        (
            ["--adapter", "lora", "--lora.group-spectral-weight", "vision=0"],
            "--lora.group-spectral-weight applies to --adapter lora-sp only",
        ),
    ],
)
def test_train_bad_adapter_options(tiny_run, tiny_dataset, tmp_path, capsys, options, message):
    out = tmp_path / "bad"
    args = ["train", "--data", str(tiny_dataset), "--out", str(out), "--init", str(tiny_run), "--steps", "2"]
    assert main([*args, *options]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and message in errors[0]
    assert not (out / "policy").exists()


def test_adapter_without_init(tiny_dataset, tmp_path, capsys):
    assert (
        main(["train", "--data", str(tiny_dataset), "--out", str(tmp_path / "r"), "--adapter", "lora"]) == 2
    )
    assert "pass --init" in capsys.readouterr().err


def test_calibration_data_of_another_image_size_is_read_at_the_policys_own(
    adapter_run, tmp_path, monkeypatch
):
    from leanvla.data.samples import ChunkDataset
    from tests.data.helpers import dataset_with

    sizes = []
    real = ChunkDataset.__init__

    def recording(self, *args, **kwargs):  # however the export builds its calibration frames
        real(self, *args, **kwargs)
        sizes.append(self.image_size)

    monkeypatch.setattr(ChunkDataset, "__init__", recording)
    wide = dataset_with(tmp_path / "wide", {"corner2": (48, 64), "corner3": (48, 64)})
    out = tmp_path / "folded"
    assert main(["export", "--policy", str(adapter_run), "--out", str(out), "--data", str(wide)]) == 0
    assert sizes == [(32, 32)]


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_an_export_another_process_wrote_meanwhile_is_kept_unless_told_to_replace_it(
    adapter_run, tmp_path, monkeypatch, capsys, overwrite
):
    """Two exports into one new --out at once: the last to finish replaced the first's silently."""
    from leanvla.adapt import export

    out, folding = tmp_path / "folded", export.fold_adapters

    def another_export_finishes_first(model):
        out.mkdir()
        (out / "config.json").write_text("{}")
        return folding(model)

    monkeypatch.setattr(export, "fold_adapters", another_export_finishes_first)
    code = main(["export", "--policy", str(adapter_run), "--out", str(out), *overwrite])
    if overwrite:  # asked for: replaced
        assert code == 0 and "adapter" in json.loads((out / "config.json").read_text())["exported_from"]
    else:
        assert code == 2 and capsys.readouterr().err.strip().splitlines()[-1] == (
            f"leanvla export: error: {out} was written by another process while this command ran; that "
            "output is kept and this one's discarded: write elsewhere, or pass --overwrite to replace it"
        )
        assert [p.name for p in out.iterdir()] == ["config.json"] and (
            out / "config.json"
        ).read_text() == "{}"
