"""`leanvla merge` end to end on tiny checkpoints: SFT and auxiliary fine-tunes of one base, the
meta model equal to base + lambda tau, training with the orthogonal penalty, and bad input."""

from __future__ import annotations

import json
import re
import shutil
import stat

import pytest
import torch
from safetensors.torch import load_file, save_file

from leanvla.cli import main
from leanvla.errors import UserError
from leanvla.merge.run import undone_percent, update_along_vector
from leanvla.merge.vectors import along


def finetune(tiny_dataset, base, out, *extra) -> None:
    args = ["train", "--data", str(tiny_dataset), "--init", str(base), "--out", str(out), "--steps", "3"]
    assert main([*args, "--batch-size", "8", "--log-every", "1", "--threads", "1", *extra]) == 0


@pytest.fixture(scope="module")
def pair(tiny_run, tiny_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("merge")
    finetune(tiny_dataset, tiny_run, root / "sft")
    finetune(tiny_dataset, tiny_run, root / "aux", "--aux.horizon", "4")
    return root


def test_aux_training_adds_a_head_and_logs_its_loss_by_target(pair):
    aux = load_file(str(pair / "aux" / "policy" / "model.safetensors"))
    assert any(k.startswith("aux_head.") for k in aux)
    lines = [json.loads(s) for s in (pair / "aux" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["aux"] > 0 for r in lines)
    for r in lines:  # the sum and its terms; no environment-state or pixel term without their options
        assert {k for k in r if k.startswith("aux_")} == {"aux_features", "aux_state"}
        assert r["aux"] == pytest.approx(r["aux_features"] + r["aux_state"], rel=1e-12)
    assert (pair / "aux" / "aux_terms.png").stat().st_size > 1000
    assert not (pair / "sft" / "aux_terms.png").exists()
    assert json.loads((pair / "aux" / "policy" / "config.json").read_text())["model"]["aux_horizon"] == 4


def test_meta_model_is_base_plus_scaled_vector(pair, tiny_run, tmp_path):
    out = tmp_path / "meta"
    args = ["merge", "--base", str(tiny_run), "--sft", str(pair / "sft"), "--aux", str(pair / "aux")]
    assert main([*args, "--out", str(out), "--scale", "1.5", "--group-scale", "expert=0.5"]) == 0
    base = load_file(str(tiny_run / "policy" / "model.safetensors"))
    sft = load_file(str(pair / "sft" / "policy" / "model.safetensors"))
    aux = load_file(str(pair / "aux" / "policy" / "model.safetensors"))
    meta = load_file(str(out / "model.safetensors"))
    tau = load_file(str(out / "capability_vector.safetensors"))
    assert set(meta) == set(base) and not any(k.startswith("aux_head") for k in tau)
    for name in base:
        lam = 0.5 if name.startswith("expert.layers.") else 1.5
        # tau is computed in float64 and stored in the weights' dtype; the sum is float64 again
        assert torch.equal(tau[name], (aux[name].double() - sft[name].double()).float()), name
        assert torch.equal(meta[name], (base[name].double() + lam * tau[name].double()).float()), name
    report = json.loads((out / "merge_report.json").read_text())
    assert report["vector_norm"] > 0 and "sft - base vs tau = aux - sft" in report["cosines"]
    assert (out / "vector_norms.png").stat().st_size > 1000
    modes = {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}  # safetensors' own are 0600
    assert modes == {stat.S_IMODE((out / "merge_report.json").stat().st_mode)}


def test_training_with_orthogonal_penalty(pair, tiny_run, tiny_dataset, tmp_path):
    meta = tmp_path / "meta"
    args = ["merge", "--base", str(tiny_run), "--sft", str(pair / "sft"), "--aux", str(pair / "aux")]
    assert main([*args, "--out", str(meta), "--scale", "2", "--group-scale", "expert=0.5"]) == 0
    vector = str(meta / "capability_vector.safetensors")
    finetune(tiny_dataset, meta, tmp_path / "orth", "--orth.vector", vector, "--orth.weight", "1.0")
    lines = [json.loads(s) for s in (tmp_path / "orth" / "metrics.jsonl").read_text().splitlines()]
    assert all(0 <= r["orth"] <= 1 for r in lines)
    finetune(
        tiny_dataset,
        meta,
        tmp_path / "orth-lora",
        "--adapter",
        "lora",
        "--lora.rank",
        "4",
        "--orth.vector",
        str(meta),  # the merge's directory stands for the vector file in it
    )
    assert all(
        "orth" in json.loads(s) for s in (tmp_path / "orth-lora" / "metrics.jsonl").read_text().splitlines()
    )
    # what the fine-tune did to the merged vector (lambda_g tau), read from the checkpoints; adapters
    # must be folded first
    start = load_file(str(meta / "model.safetensors"))
    end = load_file(str(tmp_path / "orth" / "policy" / "model.safetensors"))
    merged = {k: (0.5 if k.startswith("expert.layers.") else 2.0) * t for k, t in load_file(vector).items()}
    assert update_along_vector(meta, tmp_path / "orth") == along(
        {k: end[k] - start[k] for k in start}, merged
    )
    with pytest.raises(UserError, match="holds adapters only; fold them with `leanvla export`"):
        update_along_vector(meta, tmp_path / "orth-lora")


def test_task_arithmetic_over_checkpoints(pair, tiny_run, tmp_path, monkeypatch):
    out = tmp_path / "ta"
    monkeypatch.setenv("HOME", str(pair))
    vectors = f"{pair / 'sft'},~/aux"  # the shell expands no `~` after the comma: leanvla does
    args = ["merge", "--base", str(tiny_run), "--vectors", vectors, "--weights", "0.5,0.5", "--out", str(out)]
    assert main(args) == 0
    base = load_file(str(tiny_run / "policy" / "model.safetensors"))
    sft = load_file(str(pair / "sft" / "policy" / "model.safetensors"))
    aux = load_file(str(pair / "aux" / "policy" / "model.safetensors"))
    merged = load_file(str(out / "model.safetensors"))
    name = "backbone.0.attn.q_proj.weight"
    torch.testing.assert_close(
        merged[name], (base[name] + 0.5 * (sft[name] - base[name]) + 0.5 * (aux[name] - base[name]))
    )
    assert main([*args[:-2], "--method", "ties", "--density", "0.3", "--out", str(tmp_path / "ties")]) == 0


@pytest.mark.parametrize(
    "options, message",
    [
        (
            ["--pair", "--method", "ties"],
            "--method applies to combining several --vectors; --sft and --aux make one",
        ),
        (
            ["--pair", "--density", "0.5"],
            "--density applies to combining several --vectors",
        ),  # at its default
        (["--pair", "--weights", "1,2"], "--weights applies to combining several --vectors"),
        (["--vectors", "--density", "0.3"], "--density applies to --method ties, dare-linear or dare-ties"),
        (["--vectors", "--method", "ties", "--seed", "0"], "--seed draws DARE's random drops"),
        # Scales that would write nan weights.
        (["--pair", "--scale", "nan"], "--scale must be a finite number, got nan"),
        (
            ["--pair", "--group-scale", "expert=inf"],
            "--group-scale expert=inf: a scale must be a finite number",
        ),
        (["--vectors", "--weights", "1,nan"], "--weights '1,nan' must be finite numbers"),
        (["--pair", "--group-scale", "expert="], "--group-scale value '' for 'expert' is not a float"),
        (["--pair", "--group-scale", "decoder=2"], "--group-scale names group 'decoder'; the groups are"),
        (["--vectors", "--weights", "1,x"], "--weights '1,x' must be comma-separated numbers"),
        (["--vectors", "--weights", "1"], "1 weights for 2 vectors; give one per vector"),
        (["--vectors", "--method", "ties", "--density", "1.5"], "--density must be in (0, 1], got 1.5"),
        (["--sft-only"], "--sft and --aux go together; give both"),
        (["--no-vectors"], "--vectors is empty"),
    ],
)
def test_an_option_the_merge_would_ignore_or_cannot_use_is_refused(
    pair, tiny_run, tmp_path, capsys, options, message
):
    sources = {
        "--pair": ["--sft", str(pair / "sft"), "--aux", str(pair / "aux")],
        "--vectors": ["--vectors", f"{pair / 'sft'},{pair / 'aux'}"],
        "--sft-only": ["--sft", str(pair / "sft")],
        "--no-vectors": ["--vectors", ","],
    }[options[0]]
    out = tmp_path / "refused"
    assert main(["merge", "--base", str(tiny_run), *sources, *options[1:], "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()


@pytest.mark.parametrize(
    "contents, message",
    [
        (b"not safetensors", "is not a readable safetensors file"),
        (
            {"backbone.0.attn.q_proj.weight": torch.zeros(3, 3)},
            "--orth.vector holds 'backbone.0.attn.q_proj.weight' of shape [3, 3]",
        ),
    ],
    ids=["unreadable", "another-shape"],
)
def test_a_vector_that_cannot_fit_is_one_line_before_training(
    tiny_run, tiny_dataset, tmp_path, capsys, contents, message
):
    from safetensors.torch import save_file

    vector = tmp_path / "tau.safetensors"
    if isinstance(contents, bytes):
        vector.write_bytes(contents)
    else:
        save_file(contents, str(vector))
    out = tmp_path / "run"
    args = ["train", "--data", str(tiny_dataset), "--init", str(tiny_run), "--orth.vector", str(vector)]
    assert main([*args, "--out", str(out), "--steps", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()


def test_fine_tunings_from_different_starts_are_refused(pair, tiny_run, tiny_dataset, tmp_path, capsys):
    finetune(tiny_dataset, pair / "sft", tmp_path / "sft-of-sft")  # started from the SFT run, not the base
    capsys.readouterr()
    out = tmp_path / "meta"
    args = [
        "merge",
        "--base",
        str(tiny_run),
        "--sft",
        str(tmp_path / "sft-of-sft"),
        "--aux",
        str(pair / "aux"),
    ]
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"started from {(pair / 'sft' / 'policy').resolve()} but --aux" in err[0], err
    assert not out.exists()


def test_mismatched_checkpoints_are_refused(pair, tiny_run, tiny_dataset, tmp_path, capsys):
    from tests.helpers import train_tiny_vla

    wider = train_tiny_vla(tiny_dataset, tmp_path / "wider", width=96)
    args = [
        "merge",
        "--base",
        str(tiny_run),
        "--sft",
        str(pair / "sft"),
        "--aux",
        str(wider),
        "--out",
        str(tmp_path / "x"),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(
        r"parameter '[\w.]+' has shape \[.*\] in SFT .* but \[.*\] in auxiliary", err[0]
    ), err
    assert not (tmp_path / "x").exists()
    assert main(["merge", "--base", str(tiny_run), "--out", str(tmp_path / "y")]) == 2
    assert "give either --sft and --aux" in capsys.readouterr().err


def test_a_checkpoint_without_its_statistics_is_one_line(pair, tiny_run, tmp_path, capsys):
    sft = tmp_path / "sft"
    shutil.copytree(pair / "sft" / "policy", sft)
    (sft / "stats.json").unlink()
    args = ["merge", "--base", str(tiny_run), "--sft", str(sft), "--aux", str(pair / "aux")]
    assert main([*args, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"leanvla merge: error: {sft / 'stats.json'} is missing; a checkpoint needs its normalisation statistics"
    ]
    assert not (tmp_path / "x").exists()


def test_inputs_holding_a_nan_are_refused_naming_the_tensor(pair, tiny_run, tmp_path, capsys):
    from safetensors.torch import save_file

    sft = tmp_path / "sft"
    shutil.copytree(pair / "sft" / "policy", sft)
    weights = load_file(str(sft / "model.safetensors"))
    name = next(k for k, v in weights.items() if v.is_floating_point())
    weights[name].view(-1)[0] = float("inf")
    save_file(weights, str(sft / "model.safetensors"))
    vector = tmp_path / "nan_vector.safetensors"
    save_file({name: torch.full_like(weights[name], float("nan"))}, str(vector))
    for source, given in (
        (sft / "model.safetensors", ["--sft", str(sft), "--aux", str(pair / "aux")]),
        (vector, ["--vectors", f"{vector},{pair / 'aux'}"]),
    ):
        assert main(["merge", "--base", str(tiny_run), *given, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        # the meta model was written with NaN weights, without a word
        assert err == [
            f"leanvla merge: error: {source}: '{name}' holds a NaN or an infinity; a merge of it would be NaN"
        ]
        assert not (tmp_path / "x").exists()


def test_environment_state_target_trains_a_wider_head_and_merges(pair, tiny_run, tiny_dataset, tmp_path):
    finetune(tiny_dataset, tiny_run, tmp_path / "env", "--aux.horizon", "4", "--aux.env-state")
    weights = load_file(str(tmp_path / "env" / "policy" / "model.safetensors"))
    assert weights["aux_head.env.weight"].shape[0] == 39  # Meta-World's full observation
    assert json.loads((tmp_path / "env" / "policy" / "config.json").read_text())["model"]["aux_env_dim"] == 39
    args = ["merge", "--base", str(tiny_run), "--sft", str(pair / "sft"), "--aux", str(tmp_path / "env")]
    assert main([*args, "--out", str(tmp_path / "meta")]) == 0


def test_pixel_target_trains_a_decoder_that_merging_leaves_out(pair, tiny_run, tiny_dataset, tmp_path):
    finetune(tiny_dataset, tiny_run, tmp_path / "pixels", "--aux.horizon", "4", "--aux.pixels")
    weights = load_file(str(tmp_path / "pixels" / "policy" / "model.safetensors"))
    decoder = sorted(k for k in weights if k.startswith("aux_head.pixels."))
    assert decoder and weights[decoder[-1]].shape[1] == 3  # the last transposed conv writes RGB
    assert json.loads((tmp_path / "pixels" / "policy" / "config.json").read_text())["model"]["aux_pixels"]
    args = ["merge", "--base", str(tiny_run), "--sft", str(pair / "sft"), "--aux", str(tmp_path / "pixels")]
    assert main([*args, "--out", str(tmp_path / "meta")]) == 0
    merged = load_file(str(tmp_path / "meta" / "model.safetensors"))
    assert not any(k.startswith("aux_head") for k in merged)


def test_environment_state_target_needs_a_horizon_and_a_dataset_that_recorded_it(
    tiny_run, tiny_dataset, tmp_path, capsys
):
    base = ["train", "--data", str(tiny_dataset), "--init", str(tiny_run), "--steps", "1"]
    assert main([*base, "--out", str(tmp_path / "a"), "--aux.env-state"]) == 2
    assert (
        "--aux.env-state adds to the auxiliary objective, which is off: set --aux.horizon too"
        in capsys.readouterr().err
    )

    stripped = tmp_path / "no_env_state"
    shutil.copytree(tiny_dataset, stripped)
    info = json.loads((stripped / "meta" / "info.json").read_text())
    del info["features"]["observation.environment_state"]
    (stripped / "meta" / "info.json").write_text(json.dumps(info))
    args = [
        "train",
        "--data",
        str(stripped),
        "--init",
        str(tiny_run),
        "--steps",
        "1",
        "--out",
        str(tmp_path / "b"),
    ]
    assert main([*args, "--aux.horizon", "4", "--aux.env-state"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no 'observation.environment_state'" in err[0]
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_the_share_undone_is_the_update_against_the_vector():
    g = torch.Generator().manual_seed(0)
    tau = {"w": torch.randn(6, 5, generator=g, dtype=torch.float64)}
    aside = torch.randn(6, 5, generator=g, dtype=torch.float64)
    aside -= (aside * tau["w"]).sum() / tau["w"].square().sum() * tau["w"]  # orthogonal to tau
    assert undone_percent(along({"w": -0.25 * tau["w"] + aside}, tau)) == 25.0  # a quarter taken back
    assert undone_percent(along({"w": 0.1 * tau["w"]}, tau)) == -10.0  # pushed further along it


def test_an_existing_out_is_kept_unless_told(pair, tiny_run, tmp_path, capsys):
    out = tmp_path / "merged"
    out.mkdir()
    args = ["merge", "--base", str(tiny_run), "--sft", str(pair / "sft"), "--aux", str(pair / "aux")]
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"leanvla merge: error: {out} already exists; choose another --out or pass --overwrite"]
    assert list(out.iterdir()) == []
    assert main([*args, "--out", str(out), "--overwrite"]) == 0


def test_one_checkpoint_as_both_sft_and_aux_is_refused(pair, tiny_run, tmp_path, capsys):
    """tau = aux - sft of one checkpoint is zero: the meta model was the base, written without a word."""
    out = tmp_path / "meta"
    sft = ["--sft", str(pair / "sft"), "--aux", str(pair / "sft" / "policy")]
    assert main(["merge", "--base", str(tiny_run), *sft, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"leanvla merge: error: --sft and --aux are both {pair / 'sft' / 'policy'}: tau = aux - sft would be "
        "zero; pass the checkpoint trained with the auxiliary objectives (`leanvla train --aux.horizon ...`) "
        "as --aux"
    ]
    assert not out.exists()


def test_a_zero_vector_is_warned_of_and_the_base_written_unchanged(pair, tiny_run, tmp_path, capsys):
    shutil.copytree(pair / "sft", tmp_path / "sft-copy")  # the same weights under another name
    base = load_file(str(tiny_run / "policy" / "model.safetensors"))
    runs = {
        "capability": (
            ["--sft", str(pair / "sft"), "--aux", str(tmp_path / "sft-copy")],
            "--sft and --aux hold the same weights",
        ),
        "combined": (["--vectors", str(pair / "aux"), "--weights", "0"], "each vector is zero or weighted 0"),
    }
    for kind, (options, why) in runs.items():
        out = tmp_path / kind
        assert main(["merge", "--base", str(tiny_run), *options, "--out", str(out)]) == 0
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [
            f"leanvla merge: warning: the {kind} vector is zero ({why}): {out} will be --base unchanged"
        ]
        merged = load_file(str(out / "model.safetensors"))
        assert merged.keys() == base.keys() and all(torch.equal(merged[k], base[k]) for k in base)


def test_a_merge_that_overflows_float32_is_refused(pair, tiny_run, tmp_path, capsys):
    """A meta model of infinities was written as is (its inputs were finite, their scaled sum not)."""
    base = load_file(str(tiny_run / "policy" / "model.safetensors"))
    save_file({k: torch.ones_like(v) for k, v in base.items()}, str(tmp_path / "ones.safetensors"))
    out = tmp_path / "meta"
    argv = [
        "merge",
        "--base",
        str(tiny_run),
        "--vectors",
        str(tmp_path / "ones.safetensors"),
        "--out",
        str(out),
    ]
    assert main([*argv, "--weights", "10", "--scale", "1e38"]) == 2  # 1e39 > float32's 3.4e38
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("leanvla merge: error: the merge: '"), err
    assert err[0].endswith(
        "' holds a NaN or an infinity; the scaled vector overflows float32: lower --scale, --group-scale or --weights"
    )
    assert not out.exists()


def test_a_group_scaled_twice_or_a_vector_given_twice_is_refused(pair, tiny_run, tmp_path, capsys):
    argv = ["merge", "--base", str(tiny_run), "--sft", str(pair / "sft"), "--aux", str(pair / "aux")]
    assert main([*argv, "--group-scale", "expert=1,expert=2", "--out", str(tmp_path / "meta")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["leanvla merge: error: --group-scale names 'expert' twice; give each once"]  # the last won
    vectors = f"{pair / 'aux'},{pair / 'aux'}"  # counted twice: --weights says that
    assert (
        main(["merge", "--base", str(tiny_run), "--vectors", vectors, "--out", str(tmp_path / "meta")]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"leanvla merge: error: --vectors names '{pair / 'aux'}' twice; give each once"]
