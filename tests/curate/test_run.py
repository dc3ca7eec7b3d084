"""`leanvla curate` end to end on a tiny trained policy: outputs, the selection's use by train,
resuming from stored gradients, one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from leanvla.cli import main
from leanvla.curate.run import read_scores

FAST = ["--k-in", "4", "--k-out", "4", "--frames", "6", "--val-per-task", "1", "--fraction", "0.5"]


def curate_args(policy, data, out) -> list[str]:
    return ["curate", "--policy", str(policy), "--data", str(data), "--out", str(out)]


@pytest.fixture(scope="module")
def curated(tiny_run, tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("curate") / "out"
    assert main([*curate_args(tiny_run, tiny_dataset, out), *FAST]) == 0
    return out


def test_outputs(curated, tiny_dataset):
    from leanvla.data.episode_selection import read_episode_selection
    from leanvla.data.reader import LeRobotDataset

    rows = read_scores(curated / "scores.csv")
    selection = json.loads((curated / "selection.json").read_text())
    assert len(rows) == 4 and len(selection["validation_episodes"]) == 2  # 2 tasks x (3 - 1 held out)
    assert {r["episode_index"] for r in rows}.isdisjoint(selection["validation_episodes"])
    assert sorted(selection["episodes"]) == sorted(r["episode_index"] for r in rows if r["selected"])
    assert len(selection["episodes"]) == 2
    tasks = LeRobotDataset(tiny_dataset).tasks
    assert {r["task"] for r in rows} == set(tasks)
    for task in tasks:  # the floor: every task keeps one of its two
        assert sum(r["selected"] for r in rows if r["task"] == task) >= 1
    assert read_episode_selection(curated / "selection.json", 6) == sorted(selection["episodes"])
    timing = json.loads((curated / "timing.json").read_text())
    assert timing["dim"] == 4 * 4 * 7 * 4  # 7 Linears per layer, 2 backbone + 2 expert layers
    assert timing["curvature"] == "exact" and timing["resumed_rows"] == 0
    report = (curated / "report.md").read_text()
    assert "| collect" in report and "Worst demonstrations" in report
    for png in ("scores_per_task.png", "kept_per_task.png", "best_and_worst.png"):
        assert (curated / png).stat().st_size > 1000


def test_rescoring_reuses_stored_gradients(curated, tiny_run, tiny_dataset):
    first = read_scores(curated / "scores.csv")
    args = [*curate_args(tiny_run, tiny_dataset, curated), *FAST]
    assert main([*args, "--curvature", "rta", "--rank", "4", "--damping", "1.0"]) == 0
    timing = json.loads((curated / "timing.json").read_text())
    assert timing["resumed_rows"] == 6 and timing["curvature"] == "rta (rank 4)"
    assert main(args) == 0  # the original settings again: the very same scores
    assert read_scores(curated / "scores.csv") == first


def test_collecting_again_with_another_projection_names_the_setting_that_changed(
    curated, tiny_run, tiny_dataset, capsys
):
    args = [*curate_args(tiny_run, tiny_dataset, curated), *FAST]
    capsys.readouterr()
    assert main([*args, "--k-in", "2"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"leanvla curate: error: {curated / 'gradients'} holds gradients collected with k_in=4, not 2; "
        "pass --overwrite to collect them again, or choose another --out"
    )


@pytest.mark.parametrize("changed", ["--policy", "--data"])
def test_gradients_from_files_changed_since_are_not_resumed_and_the_input_is_named(
    changed, tiny_run, tiny_dataset, tmp_path, capsys
):
    """A policy trained again into its run, or a dataset recorded again in place: a resumed
    collection mixed gradients of the old files with the new, and its scores with them."""
    import pyarrow.parquet as pq
    from safetensors.torch import load_file, save_file

    policy, data = tmp_path / "policy", tmp_path / "data"
    shutil.copytree(tiny_run / "policy", policy)
    shutil.copytree(tiny_dataset, data)
    args = [*curate_args(policy, data, tmp_path / "out"), *FAST]
    assert main(args) == 0
    assert main(args) == 0  # the same files: resumed, and every gradient reused
    assert json.loads((tmp_path / "out" / "timing.json").read_text())["resumed_rows"] == 6
    if changed == "--policy":  # the same architecture, other weights
        weights = load_file(str(policy / "model.safetensors"))
        save_file({k: v + 1e-3 for k, v in weights.items()}, str(policy / "model.safetensors"))
        why = "trained again?"
    else:  # one action of one frame, edited in place
        (first, *_) = sorted(data.rglob("data/**/*.parquet"))
        table = pq.read_table(first)
        actions = table.column("action").to_pylist()
        actions[0][0] += 0.5
        pq.write_table(table.set_column(table.column_names.index("action"), "action", [actions]), first)
        why = "recorded or edited again?"
    capsys.readouterr()
    assert main(args) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"leanvla curate: error: {tmp_path / 'out' / 'gradients'} holds gradients collected with {changed} as "
        f"it was then: its files have changed since ({why}); pass --overwrite to collect them again, or "
        "choose another --out"
    )


def test_the_inputs_digests_follow_what_the_gradients_are_computed_from(tiny_run, tiny_dataset, tmp_path):
    """A state-only policy reads no camera, yet its gradients come from the data files; the
    dataset's statistics are not read (the policy's are), so refreshing them resumes."""
    import pyarrow.parquet as pq

    from leanvla.curate.run import input_digests
    from leanvla.data.reader import LeRobotDataset

    shutil.copytree(tiny_dataset, tmp_path / "data")

    def digests():
        return input_digests(tiny_run / "policy", [(LeRobotDataset(tmp_path / "data"), None)], [], False)

    first = digests()
    assert set(first) == {"policy_files", "data_files"}
    stats = tmp_path / "data" / "meta" / "stats.json"
    stats.write_text(stats.read_text().replace("\n", "\n\n"))
    assert digests() == first
    (data_file, *_) = sorted((tmp_path / "data" / "data").rglob("*.parquet"))
    table = pq.read_table(data_file)
    pq.write_table(table.replace_schema_metadata({**table.schema.metadata, b"edited": b"1"}), data_file)
    edited = digests()
    assert edited["policy_files"] == first["policy_files"] and edited["data_files"] != first["data_files"]


def test_an_interrupted_collection_says_what_it_kept_and_goes_on_to_the_same_scores(
    curated, tiny_run, tiny_dataset, tmp_path, monkeypatch, capsys
):
    from leanvla.curate.store import GradientStore

    write = GradientStore.write
    written = []

    def ctrl_c_at_the_third(store, position, phi):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(position)
        write(store, position, phi)

    out = tmp_path / "out"
    args = [*curate_args(tiny_run, tiny_dataset, out), *FAST]
    monkeypatch.setattr(GradientStore, "write", ctrl_c_at_the_third)
    assert main(args) == 130
    message = capsys.readouterr().err.split("\n")[-2].rsplit("\r", 1)[-1]
    assert message == (
        f"leanvla curate: interrupted with 2 of 6 demonstrations' gradients in {out / 'gradients'}; "
        "the same command goes on from there"
    )
    monkeypatch.setattr(GradientStore, "write", write)
    assert main(args) == 0
    assert json.loads((out / "timing.json").read_text())["resumed_rows"] == 2
    assert read_scores(out / "scores.csv") == read_scores(curated / "scores.csv")


def test_select_by_typicality_keeps_each_tasks_most_typical(curated, tiny_run, tiny_dataset, tmp_path):
    out = tmp_path / "typical"
    shutil.copytree(curated / "gradients", out / "gradients")  # rescoring: no collection
    assert main([*curate_args(tiny_run, tiny_dataset, out), *FAST, "--select-by", "typicality"]) == 0
    rows = read_scores(out / "scores.csv")
    assert [r["self_influence"] for r in rows] == [
        r["self_influence"] for r in read_scores(curated / "scores.csv")
    ]
    for task in {r["task"] for r in rows}:  # 2 per task, half kept: the floor keeps the more typical one
        mine = [r for r in rows if r["task"] == task]
        kept = [r for r in mine if r["selected"]]
        assert len(kept) == 1 and kept[0]["typicality"] == max(r["typicality"] for r in mine)
        assert kept[0]["self_influence"] == min(r["self_influence"] for r in mine)
    assert json.loads((out / "selection.json").read_text())["select_by"] == "typicality"
    best = (out / "report.md").read_text().split("Best demonstrations:")[1].split("Worst")[0]
    table = [line for line in best.splitlines() if line.startswith("| ")][1:]  # below its header
    typicality = [float(line.split("|")[-2]) for line in table]
    assert len(typicality) == 4 and typicality == sorted(typicality, reverse=True)  # ranked as selected
    # typicality's task mean is 0 by construction: the task table shows the mean self-influence instead
    report = (out / "report.md").read_text()
    assert "| mean self-influence |" in report and "| mean score |" not in report
    for task in {r["task"] for r in rows}:
        mean = sum(r["self_influence"] for r in rows if r["task"] == task) / 2
        assert f"| {task} | 2 | 1 | 50% | {mean:.3g} |" in report


def test_label_free_typicality_scores_every_demonstration(tiny_run, tiny_dataset, tmp_path):
    import math

    import torch

    from leanvla.curate.scores import select

    out = tmp_path / "label-free"
    label_free = ["--k-in", "4", "--k-out", "4", "--frames", "6", "--fraction", "0.5", "--val-per-task", "0"]
    assert main([*curate_args(tiny_run, tiny_dataset, out), *label_free, "--select-by", "typicality"]) == 0
    rows = read_scores(out / "scores.csv")
    selection = json.loads((out / "selection.json").read_text())
    assert sorted(r["episode_index"] for r in rows) == list(range(6))  # nothing held out
    assert selection["validation_episodes"] == [] and len(selection["episodes"]) == 3
    assert all(math.isnan(r[c]) for r in rows for c in ("local", "global", "score"))
    typicality = torch.tensor([r["typicality"] for r in rows], dtype=torch.float64)
    tasks = [sorted({r["task"] for r in rows}).index(r["task"]) for r in rows]
    assert [r["selected"] for r in rows] == select(typicality, tasks, 0.5, 0.25).tolist()
    assert "without validation demonstrations" in (out / "report.md").read_text()


def test_selection_trains(curated, tiny_dataset, tmp_path):
    from leanvla.train.loop import train
    from tests.helpers import tiny_train_config

    run = train(
        tiny_train_config(tiny_dataset, tmp_path / "run", episodes=curated / "selection.json"), progress=False
    )
    assert (run / "policy" / "model.safetensors").is_file()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--fraction", "0"], "--fraction must be in (0, 1]"),
        (["--fraction", "0.5", "--task-floor", "0.7"], "--task-floor must be in"),
        (["--val-per-task", "3"], "would leave none to score"),
        (["--val-per-task", "0"], "--val-per-task must be >= 1 without --val-data"),
        (["--stacks", "decoder"], "the layout has no stack 'decoder'"),
        (["--stacks", ","], "--stacks is empty; name the stacks to project"),
        (["--stacks", "backbone,backbone"], "--stacks names 'backbone' twice; give each once"),
        (["--select-by", "loss"], "--select-by"),
        (["--alpha", "1.5"], "--alpha must be in [0, 1], got 1.5"),
        (["--damping", "0"], "--damping must be finite and > 0, got 0.0"),
        (["--damping", "inf"], "--damping must be finite and > 0, got inf"),
        (["--val-per-task", "-1"], "--val-per-task must be >= 0, got -1"),
        (["--frames", "-1"], "--frames must be >= 0 and --batch-size >= 1"),
        (["--batch-size", "0"], "--frames must be >= 0 and --batch-size >= 1"),
        (["--rank", "-1"], "--rank must be >= 0 (0: automatic), got -1"),
        (["--val-per-task", "1", "--rank", "999"], "--rank 999 exceeds min(demonstrations, P) = 4"),
        # Options this curation would ignore, typed (the first two at their default values).
        (["--val-data", "v", "--val-per-task", "5"], "--val-per-task holds validation demonstrations out of"),
        (["--k-dense", "256"], "--k-dense sizes the projection of --other dense"),
        (
            ["--curvature", "exact", "--rank", "8"],
            "--rank sizes RTA's sketch, which --curvature exact does not use",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(extra, message, tiny_run, tiny_dataset, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*curate_args(tiny_run, tiny_dataset, out), "--frames", "4", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (out / "scores.csv").exists()


def test_a_policy_that_does_not_fit_the_data_is_one_line(tiny_run, lerobot_fixture, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*curate_args(tiny_run, lerobot_fixture, out), *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        f"checkpoint {tiny_run}" in err
        and "observes 'observation.images.corner3'" in err
        and err.endswith("use data recorded with that camera")
        and len(err.splitlines()) == 1
    )
    assert not out.exists()


def test_a_task_without_validation_demonstrations_is_one_line(tiny_run, tiny_dataset, tmp_path, capsys):
    from tests.helpers import record_in_process

    # --data has reach and drawer-close
    reach_only = record_in_process(
        tmp_path / "val", tasks="reach-v3", episodes=1, cameras="corner2,corner3", image_size=32
    )
    out = tmp_path / "out"
    args = [*curate_args(tiny_run, tiny_dataset, out), "--frames", "4", "--val-data", str(reach_only)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "--val-data has no demonstrations of" in err and len(err.splitlines()) == 1
    assert not (out / "scores.csv").exists()


def test_validation_demonstrations_of_a_task_the_data_lacks_are_one_line(
    tiny_run, tiny_dataset, tmp_path, capsys
):
    from tests.data.helpers import shaped_like

    data = shaped_like(tmp_path / "val", tiny_dataset)  # the policy reads it, but its task is "task a"
    out = tmp_path / "out"
    assert main([*curate_args(tiny_run, tiny_dataset, out), "--frames", "4", "--val-data", str(data)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        "--val-data task 'task a' is not a task of --data; validation demonstrations must share tasks" in err
    )
    assert len(err.splitlines()) == 1 and not (out / "scores.csv").exists()


def test_validation_demonstrations_the_policy_cannot_read_are_one_line_before_decoding(
    tiny_run, tiny_dataset, tmp_path, capsys
):
    from leanvla.data.reader import LeRobotDataset
    from tests.data.helpers import shaped_like

    (state_dim,) = LeRobotDataset(tiny_dataset).features["observation.state"]["shape"]
    val = shaped_like(tmp_path / "val", tiny_dataset, extra_state=3)
    out = tmp_path / "out"
    assert main([*curate_args(tiny_run, tiny_dataset, out), "--frames", "4", "--val-data", str(val)]) == 2
    err = capsys.readouterr().err
    assert (
        err.strip()
        .splitlines()[-1]
        .endswith(f"expects 'observation.state' of shape [{state_dim}] but {val} has [{state_dim + 3}]")
    )
    assert "decode" not in err and not out.exists()  # refused before the images of --data decoded


def test_two_processes_collect_what_one_does(curated, tiny_run, tiny_dataset, tmp_path):
    """torchrun with two processes (gloo): each collects its shard of the store; same scores."""
    out = tmp_path / "two"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone"]
    args = ["-m", "leanvla", *curate_args(tiny_run, tiny_dataset, out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([*torchrun, *args, *FAST], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((out / "timing.json").read_text())["world_size"] == 2
    one, two = read_scores(curated / "scores.csv"), read_scores(out / "scores.csv")
    assert [r["episode_index"] for r in one] == [r["episode_index"] for r in two]
    for a, b in zip(one, two):
        assert a["score"] == pytest.approx(b["score"], rel=1e-4, abs=1e-5)
        assert a["selected"] == b["selected"]


def test_data_of_another_image_size_is_scored_at_the_policys_own(tiny_run, tmp_path, capsys):
    from tests.data.helpers import dataset_with

    wide = dataset_with(tmp_path / "wide", {"corner2": (48, 64), "corner3": (48, 64)})
    assert main([*curate_args(tiny_run, wide, tmp_path / "out"), *FAST]) == 0
    assert "observation.images.corner2: 48x64 images scaled and padded to 32x32" in capsys.readouterr().err


def edited_copy(dataset, root, emptied: list[int]):
    """A copy of `dataset` with `emptied` episodes left without frames."""
    from tests.data.helpers import without_frames

    shutil.copytree(dataset, root)
    return without_frames(root, emptied)


def test_a_demonstration_of_no_frames_is_left_out_with_a_warning(
    curated, tiny_run, tiny_dataset, tmp_path, capsys
):
    """Even one the seeded split would have held out for validation: its task keeps a query."""
    held = json.loads((curated / "selection.json").read_text())["validation_episodes"]
    edited = edited_copy(tiny_dataset, tmp_path / "edited", [held[0]])
    out = tmp_path / "out"
    assert main([*curate_args(tiny_run, edited, out), *FAST]) == 0
    assert (
        f"leanvla curate: warning: {edited}: episode {held[0]} has no frames (length 0 in the metadata): "
        "not scored, so not selected"
    ) in capsys.readouterr().err
    scored = [r["episode_index"] for r in read_scores(out / "scores.csv")]
    validation = json.loads((out / "selection.json").read_text())["validation_episodes"]
    assert held[0] not in validation and len(validation) == len(held)  # one per task still
    assert sorted(scored + validation) == sorted(set(range(6)) - {held[0]})


def test_validation_demonstrations_of_no_frames_do_not_count(tiny_run, tiny_dataset, tmp_path, capsys):
    from leanvla.data.reader import LeRobotDataset

    tasks = LeRobotDataset(tiny_dataset).episode_tasks()
    drawer = [e for e, task in enumerate(tasks) if task == tasks[-1]]
    val = edited_copy(tiny_dataset, tmp_path / "val", drawer)
    out = tmp_path / "out"
    assert main([*curate_args(tiny_run, tiny_dataset, out), "--frames", "4", "--val-data", str(val)]) == 2
    warning, error = capsys.readouterr().err.strip().splitlines()
    assert warning.endswith("have no frames (length 0 in the metadata): not used as validation")
    assert error == (
        f"leanvla curate: error: --val-data has no demonstrations of ['{tasks[-1]}']; every scored task "
        "needs validation demonstrations"
    )
    assert not out.exists()
