"""`leanvla prune` end to end on a tiny trained policy: the checkpoint, the report, the heatmaps,
a pruned model that trains and evaluates, and bad input as one line with exit code 2."""

from __future__ import annotations

import json

import pytest
import torch

from leanvla.cli import main
from tests.data.helpers import dataset_with
from tests.helpers import train_tiny_cnn, train_tiny_vla


@pytest.fixture(scope="module")
def deep_run(tiny_dataset, tmp_path_factory):
    """A tiny VLA with 4 backbone and 4 expert layers (enough to prune), trained a few steps."""
    return train_tiny_vla(tiny_dataset, tmp_path_factory.mktemp("runs") / "deep", layers=4, expert_layers=4)


@pytest.fixture(scope="module")
def pruned(deep_run, tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("pruned") / "half"
    args = ["prune", "--policy", str(deep_run), "--data", str(tiny_dataset), "--out", str(out)]
    assert main([*args, "--keep", "0.5", "--samples", "24", "--batch-size", "8"]) == 0
    return out


def test_report_and_checkpoint(pruned):
    from leanvla.models.checkpoint import load_policy

    report = json.loads((pruned / "prune_report.json").read_text())
    for name in ("backbone", "expert"):
        stack = report["stacks"][name]
        assert stack["layers_before"] == 4 and stack["layers_after"] == 2
        assert 0 not in stack["removed"] and 3 not in stack["removed"]  # first and last stay
        cka = torch.tensor(stack["cka_matrix"])
        assert cka.shape == (5, 5) and torch.allclose(cka.diagonal(), torch.ones(5, dtype=cka.dtype))
        # each layer's input against its output: the matrices' first off-diagonal
        cosine, adjacent = torch.tensor(stack["cosine_matrix"], dtype=torch.float64), stack["adjacent"]
        assert adjacent["cka"] == pytest.approx(cka.diagonal(1).tolist())
        assert adjacent["block_influence"] == pytest.approx((1 - cosine.diagonal(1)).tolist())
        assert (pruned / f"cka_{name}.png").stat().st_size > 1000
    assert report["parameters"]["after"] < report["parameters"]["before"]
    policy = load_policy(pruned)
    assert policy.meta["model"]["layers"] == 2 and policy.meta["model"]["expert_layers"] == 2
    assert len(policy.model.backbone) == 2 and len(policy.model.expert.layers) == 2
    assert (pruned / "provenance.json").is_file()  # evaluation still holds out the trained positions


def test_pruned_model_trains_and_evaluates(pruned, tiny_dataset, tmp_path):
    from leanvla.evaluate import EvalConfig, evaluate
    from leanvla.train.config import TrainConfig
    from leanvla.train.loop import train

    run = train(
        TrainConfig(data=tiny_dataset, out=tmp_path / "ft", init=pruned, steps=2, batch_size=8, threads=1),
        progress=False,
    )
    result = evaluate(EvalConfig(policy=run, episodes=1, max_steps=10, workers=1), progress=False)
    assert set(result["per_task"]) == {"reach-v3", "drawer-close-v3"}


def test_same_seed_same_removal(deep_run, tiny_dataset, tmp_path):
    from leanvla.prune.run import PruneConfig, prune

    reports = []
    for name in ("a", "b"):
        out = prune(
            PruneConfig(deep_run, tiny_dataset, tmp_path / name, samples=16, batch_size=8), progress=False
        )
        reports.append(json.loads((out / "prune_report.json").read_text())["stacks"])
    assert reports[0] == reports[1]


def test_criteria_and_contiguous_options(deep_run, tiny_dataset, tmp_path):
    base = ["prune", "--policy", str(deep_run), "--data", str(tiny_dataset), "--samples", "16"]
    assert main([*base, "--out", str(tmp_path / "last"), "--criterion", "drop-last", "--keep", "0.5"]) == 0
    report = json.loads((tmp_path / "last" / "prune_report.json").read_text())
    assert report["stacks"]["backbone"]["removed"] == [2, 3]
    assert main([*base, "--out", str(tmp_path / "bi"), "--criterion", "block-influence", "--contiguous"]) == 0
    removed = json.loads((tmp_path / "bi" / "prune_report.json").read_text())["stacks"]["expert"]["removed"]
    assert removed == [1, 2]  # the only block of 2 that spares the first and last of 4
    assert main([*base, "--out", str(tmp_path / "t"), "--keep", "backbone=0.75"]) == 0  # expert: all
    stacks = json.loads((tmp_path / "t" / "prune_report.json").read_text())["stacks"]
    assert stacks["backbone"]["layers_after"] == 3 and stacks["expert"]["removed"] == []
    # biased CKA is >= 0, so a tiny threshold removes every layer but the first and last
    assert main([*base, "--out", str(tmp_path / "thr"), "--threshold", "0.0001"]) == 0
    stacks = json.loads((tmp_path / "thr" / "prune_report.json").read_text())["stacks"]
    assert stacks["backbone"]["removed"] == [1, 2] and stacks["expert"]["removed"] == [1, 2]


@pytest.mark.parametrize("criterion", ["cka", "block-influence", "angular"])
def test_the_criterion_asked_for_decides_what_goes(criterion, deep_run, tiny_dataset, tmp_path, monkeypatch):
    import leanvla.prune.run

    favoured = {"cka": 1, "block-influence": 2, "angular": 2}  # each measure finds another layer redundant

    def similarity(accumulator, measure, unbiased):
        matrix = torch.full((5, 5), 0.5).fill_diagonal_(1.0)
        layer = favoured[measure]  # 0-based: its input is h_layer, its output h_(layer + 1)
        matrix[layer, layer + 1] = matrix[layer + 1, layer] = 0.9
        return matrix

    monkeypatch.setattr(leanvla.prune.run, "similarity_matrix", similarity)
    args = ["--policy", str(deep_run), "--data", str(tiny_dataset), "--out", str(tmp_path / "out")]
    assert main(["prune", *args, "--samples", "8", "--criterion", criterion, "--keep", "0.75"]) == 0
    stacks = json.loads((tmp_path / "out" / "prune_report.json").read_text())["stacks"]
    assert stacks["backbone"]["removed"] == stacks["expert"]["removed"] == [favoured[criterion]]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--keep", "0.2"], "would leave 1, but cka must keep at least 2"),
        (["--keep", "0"], "--keep must be in (0, 1]"),
        (["--keep", "half"], "is not a number"),
        (["--stacks", "decoder"], "the layout has no stack 'decoder'"),
        (["--stacks", ","], "--stacks is empty; name the stacks to prune"),  # it wrote the policy unpruned
        (["--stacks", "backbone,backbone"], "--stacks names 'backbone' twice; give each once"),
        (["--keep", "backbone=0.5,backbone=1"], "--keep names 'backbone' twice; give each once"),  # 1 won
        (["--stacks", "vision"], "stack 'vision'"),
        (["--threshold", "1.5"], "--threshold must be in (0, 1]"),
        (["--threshold", "0"], "--threshold must be in (0, 1]"),
        (["--threshold", "0.5", "--contiguous"], "--threshold works with greedy removal only"),
        (["--keep", "decoder=0.5"], "--keep names stack 'decoder', which is not in --stacks"),
        (["--samples", "2"], "--samples must be >= 4 and --batch-size >= 1"),
        # Options this pruning would ignore, the second typed at its default value.
        (["--threshold", "0.5", "--keep", "0.5"], "--keep and --threshold each decide how many layers go"),
        (
            ["--criterion", "drop-last", "--no-contiguous"],
            "--no-contiguous applies to the similarity criteria",
        ),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(capsys, deep_run, tiny_dataset, tmp_path, extra, message):
    out = tmp_path / "out"
    code = main(["prune", "--policy", str(deep_run), "--data", str(tiny_dataset), "--out", str(out), *extra])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and message in lines[0], err
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_a_layout_naming_modules_the_model_lacks(deep_run):
    from leanvla.errors import UserError
    from leanvla.models.checkpoint import load_model
    from leanvla.models.layout import Layout, Stack

    model = load_model(deep_run)[0]
    bad_path = Layout((Stack("backbone", "decoder.layers", ("mlp.up_proj",)),))
    with pytest.raises(UserError, match="layout names 'decoder.layers'.*no such module"):
        bad_path.check(model)
    bad_linear = Layout((Stack("backbone", "backbone", ("self_attn.q_proj",)),))
    with pytest.raises(UserError, match=r"layout names 'backbone.0.self_attn.q_proj'"):
        bad_linear.check(model)


def test_an_existing_out_and_a_cnn_policy_are_refused(capsys, deep_run, data, tiny_dataset, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert main(["prune", "--policy", str(deep_run), "--data", str(tiny_dataset), "--out", str(out)]) == 2
    assert f"{out} already exists; choose another --out or pass --overwrite" in capsys.readouterr().err
    cnn = train_tiny_cnn(data, tmp_path / "cnn")
    assert main(["prune", "--policy", str(cnn), "--data", str(data), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"leanvla prune: error: {cnn} is a 'cnn' policy; prune acts on layer stacks of a VLA"]
    assert not (tmp_path / "p").exists()


def test_data_of_another_image_size_is_pruned_at_the_policys_own(capsys, deep_run, tmp_path):
    wide = dataset_with(tmp_path / "wide", {"corner2": (48, 64), "corner3": (48, 64)})
    args = ["prune", "--policy", str(deep_run), "--data", str(wide), "--out", str(tmp_path / "out")]
    assert main([*args, "--samples", "8", "--keep", "0.75"]) == 0
    assert "observation.images.corner3: 48x64 images scaled and padded to 32x32" in capsys.readouterr().err
