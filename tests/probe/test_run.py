"""`leanvla probe` end to end: its outputs, which demonstrations count as training, its refusals."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest

from leanvla.cli import main
from leanvla.models.config import vla_config
from leanvla.probe.run import RESULT, couples_samples
from tests.helpers import tiny_train_config


def probe_args(policy, data, out, *extra) -> list[str]:
    return ["probe", "--policy", str(policy), "--data", str(data), "--out", str(out), *extra]


def probe_json(out) -> dict:
    return json.loads((out / RESULT).read_text())


def test_probe_writes_its_result_report_and_figure(capsys, tiny_run, tiny_dataset, tmp_path):
    out = tmp_path / "probe"
    assert main(probe_args(tiny_run, tiny_dataset, out, "--every", "3")) == 0
    printed = json.loads(capsys.readouterr().out)
    assert sorted(p.name for p in out.iterdir()) == ["probe.json", "probe.png", "report.md"]
    result = probe_json(out)
    assert list(result["groups"]) == ["training"]  # every episode of the recording trained the policy
    summary = result["groups"]["training"]["summary"]
    assert list(summary) == ["all", "reach the goal position", "close the drawer"]
    assert (
        summary["all"]["frames"]
        == result["protocol"]["frames"]
        == sum(s["frames"] for task, s in summary.items() if task != "all")
    )
    assert summary["all"]["swapped"]["frames"] == summary["all"]["frames"]  # three demonstrations per task
    assert len(summary["all"]["by_step"]) == result["protocol"]["chunk_size"] == 8
    assert result["protocol"]["executed_steps"] == 4 and result["protocol"]["action_names"] == [
        "dx",
        "dy",
        "dz",
        "grip",
    ]
    assert printed["training"]["executed"] == summary["all"]["executed"]
    report = (out / "report.md").read_text()
    assert "## The policy's training demonstrations: fit, not generalisation; 6 episodes" in report
    assert "| **all** |" in report and "What it reads:" in report and "![" in report


def numbers(found) -> list:
    """Every number of a probe.json but its time and batch size, in order."""
    if isinstance(found, dict):
        return [n for key, v in found.items() if key not in ("seconds", "batch_size") for n in numbers(v)]
    if isinstance(found, list):
        return [n for v in found for n in numbers(v)]
    return [found] if isinstance(found, float | int) else []


def test_the_same_probe_gives_the_same_numbers_at_any_batch_size(tiny_run, tiny_dataset, tmp_path):
    for name, batch in (("a", "64"), ("b", "64"), ("c", "3")):
        args = probe_args(tiny_run, tiny_dataset, tmp_path / name, "--every", "4", "--batch-size", batch)
        assert main(args) == 0
    a, b, c = (numbers(probe_json(tmp_path / name)) for name in "abc")
    assert a == b and len(a) > 50
    assert c == pytest.approx(a, rel=0, abs=1e-5)  # each frame keeps its noise whatever its batch


@pytest.fixture(scope="module")
def partial_run(data, tmp_path_factory):
    """A tiny policy trained on episodes 0, 1 and 3 of the synthetic dataset (tasks a, b and c)."""
    from leanvla.train.loop import train

    root = tmp_path_factory.mktemp("partial")
    (root / "selection.json").write_text(json.dumps([0, 1, 3]))
    train(tiny_train_config(data, root / "run", episodes=root / "selection.json", steps=2), progress=False)
    return root / "run"


def held_out_and_training(out) -> tuple[list[int], list[int]]:
    groups = probe_json(out)["groups"]
    return groups["held_out"]["episodes"], groups["training"]["episodes"]


def test_demonstrations_the_policy_was_not_trained_on_are_reported_apart(partial_run, data, tmp_path):
    assert main(probe_args(partial_run, data, tmp_path / "p")) == 0
    assert held_out_and_training(tmp_path / "p") == ([2], [0, 1, 3])
    moved = shutil.copytree(data, tmp_path / "moved")  # positions still say which scenes it has seen
    assert main(probe_args(partial_run, moved, tmp_path / "m")) == 0
    assert held_out_and_training(tmp_path / "m") == ([2], [0, 1, 3])


def test_without_positions_the_training_dataset_is_known_by_its_directory(partial_run, data, tmp_path):
    policy = shutil.copytree(partial_run / "policy", tmp_path / "policy")
    provenance = json.loads((policy / "provenance.json").read_text())
    del provenance["positions"]
    (policy / "provenance.json").write_text(json.dumps(provenance))
    assert main(probe_args(policy, data, tmp_path / "p")) == 0
    assert held_out_and_training(tmp_path / "p") == ([2], [0, 1, 3])
    moved = shutil.copytree(data, tmp_path / "moved")
    assert main(probe_args(policy, moved, tmp_path / "m")) == 0
    assert list(probe_json(tmp_path / "m")["groups"]) == ["held_out"]


def test_lerobots_own_dataset_is_probed_with_the_held_out_episodes_apart(lerobot_fixture, tmp_path):
    from leanvla.train.loop import train

    (tmp_path / "two_per_task.json").write_text("[0, 1, 3, 4, 6, 7]")  # 3 tasks x 3 episodes
    selection = tmp_path / "two_per_task.json"
    train(tiny_train_config(lerobot_fixture, tmp_path / "run", episodes=selection, steps=1), progress=False)
    out = tmp_path / "probe"
    assert main(probe_args(tmp_path / "run", lerobot_fixture, out, "--every", "5")) == 0
    groups = probe_json(out)["groups"]  # no positions in LeRobot's recording: its directory decides
    assert groups["held_out"]["episodes"] == [2, 5, 8] and groups["training"]["episodes"] == [
        0,
        1,
        3,
        4,
        6,
        7,
    ]
    for group in groups.values():
        assert group["summary"]["all"]["swapped"]["frames"] == group["summary"]["all"]["frames"]


def test_the_cnn_baseline_is_probed_like_the_vla(data, tmp_path):
    from tests.helpers import train_tiny_cnn

    out = tmp_path / "probe"
    assert main(probe_args(train_tiny_cnn(data, tmp_path / "cnn"), data, out)) == 0
    result = probe_json(out)
    assert (
        result["protocol"]["batch_size"] == 64
        and result["groups"]["training"]["summary"]["all"]["frames"] == 24
    )


@pytest.mark.parametrize(
    "head, decoder, block, couples",
    [
        ("flow", "auto", 0, False),
        ("discrete", "bidirectional", 4, False),
        ("discrete", "fast", 4, True),
        ("discrete", "fast-nocache", 4, True),
        ("discrete", "auto", 4, True),
        ("discrete", "auto", 0, False),
    ],
)
def test_only_the_fast_decoder_probes_one_frame_at_a_time(head, decoder, block, couples):
    cfg = vla_config("tiny", head=head, decoder=decoder, token_block=block, chunk_size=4)
    assert couples_samples(SimpleNamespace(model=SimpleNamespace(cfg=cfg))) is couples
    assert not couples_samples(SimpleNamespace(model=object()))  # the CNN has no decoder


def test_a_fast_decoding_policy_is_probed_one_frame_at_a_time(discrete_run, data, tmp_path):
    out = tmp_path / "probe"
    assert main(probe_args(discrete_run, data, out)) == 0
    protocol = probe_json(out)["protocol"]
    assert protocol["batch_size"] == 1 and protocol["decode"]["decoder"] == "fast"
    assert 2 <= protocol["decode"]["forward_passes_per_chunk"] <= 16  # 2 blocks of 8 tokens
    report = (out / "report.md").read_text()
    assert "The discrete head decoded with Fast-dVLA (fast), blocks of 8 tokens" in report
    assert "; one frame per batch." in report


def saved_with(run, tmp_path, **settings):
    """A copy of `run`'s checkpoint whose config.json holds `settings` as if it had been trained so."""
    policy = shutil.copytree(run / "policy", tmp_path / "saved_policy")
    config = json.loads((policy / "config.json").read_text())
    config["model"].update(settings)
    (policy / "config.json").write_text(json.dumps(config))
    return policy


def test_a_decoder_given_to_the_probe_decodes_as_a_policy_saved_with_it(discrete_run, data, tmp_path):
    options = ["--decoder", "bidirectional", "--decode-iterations", "2"]
    assert main(probe_args(discrete_run, data, tmp_path / "given", "--every", "2", *options)) == 0
    saved = saved_with(discrete_run, tmp_path, decoder="bidirectional", decode_iterations=2)
    assert main(probe_args(saved, data, tmp_path / "saved_probe", "--every", "2")) == 0
    given, reference = probe_json(tmp_path / "given"), probe_json(tmp_path / "saved_probe")
    assert numbers(given) == numbers(reference) and given["protocol"] == reference["protocol"]
    decode = given["protocol"]["decode"]
    assert decode["decoder"] == "bidirectional" and decode["forward_passes_per_chunk"] == 2.0
    assert given["protocol"]["batch_size"] == 64  # mask-predict decodes each frame on its own
    assert main(probe_args(discrete_run, data, tmp_path / "fast", "--every", "2")) == 0
    assert numbers(probe_json(tmp_path / "fast")) != numbers(given)
    assert (
        "mask-predict, 2 iterations in confidence order: 2.0 forward passes"
        in (tmp_path / "given" / "report.md").read_text()
    )


def test_mask_predict_in_random_order_gives_the_same_numbers_at_any_batch_size(discrete_run, data, tmp_path):
    options = ["--decoder", "bidirectional", "--decode-order", "random", "--decode-iterations", "3"]
    for name, batch in (("a", "64"), ("b", "5")):
        assert main(probe_args(discrete_run, data, tmp_path / name, "--batch-size", batch, *options)) == 0
    a, b = (numbers(probe_json(tmp_path / name)["groups"]) for name in "ab")
    assert b == pytest.approx(a, rel=0, abs=1e-5)  # each frame's order comes from its own noise
    assert "in random order (drawn per frame from seed 0)" in (tmp_path / "a" / "report.md").read_text()


def test_without_flow_noise_the_probe_is_deterministic_and_as_if_saved_so(tiny_run, tiny_dataset, tmp_path):
    def probed(name: str, policy, *extra) -> list:
        assert main(probe_args(policy, tiny_dataset, tmp_path / name, "--every", "3", *extra)) == 0
        return numbers(probe_json(tmp_path / name)["groups"])  # not the protocol: it holds the seed

    assert probed("seed0", tiny_run) != probed("seed5", tiny_run, "--seed", "5")
    still = probed("still0", tiny_run, "--flow-noise", "0")
    assert still == probed("still5", tiny_run, "--flow-noise", "0", "--seed", "5")
    assert still == probed("saved", saved_with(tiny_run, tmp_path, flow_noise=0.0))
    assert probe_json(tmp_path / "still0")["protocol"]["flow"] == {"flow_steps": 10, "flow_noise": 0.0}
    assert "Euler steps from zero noise (deterministic)" in (tmp_path / "still0" / "report.md").read_text()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--every", "0"], "--every must be >= 1, got 0"),
        (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        (["--n-action-steps", "9"], "--n-action-steps must be within 1..8 (the policy's chunk), got 9"),
        (["--data", "{data}"], "observes 'observation.images.corner2', which"),
        (["--episodes", "{selection}"], "episodes [7] that the dataset (0..5) does not have"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    capsys, tiny_run, tiny_dataset, data, tmp_path, extra, message
):
    (tmp_path / "selection.json").write_text("[0, 7]")
    extra = [e.format(data=data, selection=tmp_path / "selection.json") for e in extra]
    out = tmp_path / "out"
    code = main(probe_args(tiny_run, tiny_dataset, out, *extra))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and message in lines[0], lines
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_a_task_the_policy_never_learnt_is_refused_before_any_image_is_read(capsys, partial_run, tmp_path):
    from tests.data.helpers import synthetic_dataset

    other = synthetic_dataset(tmp_path / "other", lengths=(3, 4), tasks=("task a", "task z"))
    out = tmp_path / "out"
    assert main(probe_args(partial_run, other, out)) == 2
    err = capsys.readouterr().err
    assert f"episode 1 of {other} is 'task z', a task the policy was not trained on" in err
    assert "select other episodes with --episodes" in err and "decode" not in err and not out.exists()


def test_a_task_written_in_another_case_or_punctuation_is_the_one_the_policy_learnt(partial_run, tmp_path):
    from tests.data.helpers import synthetic_dataset

    other = synthetic_dataset(tmp_path / "other", lengths=(3, 4), tasks=("Task A.", "TASK  a"))
    assert main(probe_args(partial_run, other, tmp_path / "out")) == 0
    groups = probe_json(tmp_path / "out")["groups"]
    summaries = [group["summary"] for group in groups.values()]
    assert sum(s["all"]["frames"] for s in summaries) == 7
    assert {task for s in summaries for task in s} <= {"all", "Task A.", "TASK  a"}


def test_an_existing_out_is_kept_unless_overwrite(capsys, tiny_run, tiny_dataset, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    args = probe_args(tiny_run, tiny_dataset, out, "--every", "9")
    assert (
        main(args) == 2
        and "already exists; choose another --out or pass --overwrite" in capsys.readouterr().err
    )
    assert (out / "mine.txt").read_text() == "keep"
    assert main([*args, "--overwrite"]) == 2  # not a probe's output: --overwrite would delete it
    assert "holds files but not a probe's output (no probe.json)" in capsys.readouterr().err
    assert (out / "mine.txt").read_text() == "keep"
    (out / "mine.txt").unlink()
    assert main(args) == 2 and main([*args, "--overwrite"]) == 0  # empty: replaced
    assert main([*args, "--overwrite"]) == 0 and sorted(p.name for p in out.iterdir())[0] == "probe.json"
