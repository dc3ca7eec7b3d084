"""Closed-loop evaluation: protocol, held-out positions, results file, rollout media."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from leanvla.data.metaworld_env import MetaWorldTask
from leanvla.data.reader import LeRobotDataset
from leanvla.evaluate import EvalConfig, evaluate, wilson
from leanvla.rollout import TrainingPositions, held_out_reset


@pytest.fixture(scope="module")
def result(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "eval.json"
    return evaluate(
        EvalConfig(policy=tiny_run, episodes=2, max_steps=20, out=out, workers=1), progress=False
    ), out


def test_result_file_and_protocol(result):
    res, out = result
    saved = json.loads(out.read_text())
    assert saved["protocol"]["tasks"] == ["reach-v3", "drawer-close-v3"]
    assert saved["protocol"]["episodes_per_task"] == 2 and saved["protocol"]["held_out_positions_checked"]
    assert set(saved["per_task"]) == {"reach-v3", "drawer-close-v3"}
    assert len(saved["episodes"]) == 4 and all(e["steps"] <= 20 for e in saved["episodes"])
    assert 0.0 <= saved["mean_success"] <= 1.0
    wins = sum(t["successes"] for t in saved["per_task"].values())
    assert saved["mean_ci95"] == list(wilson(wins, 4))  # over every episode of every task, at 95%
    assert saved["environment"]["packages"]["mujoco"] and saved["environment"]["torch_threads"] == 1
    assert any(p.endswith(".gif") for p in saved["rollout_media"]) and any(
        p.endswith(".png") for p in saved["rollout_media"]
    )


def test_evaluation_uses_only_positions_no_training_demo_used(result, tiny_dataset):
    res, _ = result
    train = {
        tuple(np.round(p, 12)) for p in LeRobotDataset(tiny_dataset).episode_column("metaworld/positions")
    }
    evaluated = [tuple(np.round(e["positions"], 12)) for e in res["episodes"]]
    assert len(set(evaluated)) == len(evaluated)
    assert not train & set(evaluated)


def test_a_seed_that_reproduces_a_training_position_is_skipped():
    env = MetaWorldTask("reach-v3", cameras=())
    _, first, seed0, skipped = held_out_reset(env, 0, 0, TrainingPositions([]))
    assert skipped == 0
    _, pos, seed1, skipped = held_out_reset(env, 0, 0, TrainingPositions([first.tolist()]))
    assert skipped == 1 and seed1 != seed0 and not np.allclose(pos, first)


def test_wilson_interval():
    lo, hi = wilson(10, 20)
    assert lo < 0.5 < hi and abs((lo + hi) / 2 - 0.5) < 1e-9
    assert wilson(0, 20)[0] == 0.0 and wilson(20, 20)[1] == 1.0


def test_the_flow_settings_used_are_kept_in_the_result(result, tiny_run):
    assert result[0]["flow"] == {"flow_steps": 10, "flow_noise": 1.0}
    res = evaluate(
        EvalConfig(policy=tiny_run, tasks="reach-v3", episodes=1, max_steps=8, workers=1, flow_noise=0.0),
        progress=False,
    )
    assert res["flow"] == {"flow_steps": 10, "flow_noise": 0.0}


def test_on_chunk_sees_each_observation_and_the_chunk_predicted_from_it(tiny_run):
    from leanvla.models.checkpoint import load_policy
    from leanvla.rollout import run_episode

    policy = load_policy(tiny_run)
    env = MetaWorldTask("reach-v3", cameras=("corner2", "corner3"), image_size=32, max_steps=10)
    seen = []
    result = run_episode(
        policy, env, 0, 0, TrainingPositions([]), 4, on_chunk=lambda o, c: seen.append((o, c))
    )
    assert len(seen) == result.chunks == 3  # 10 steps, 4 per chunk
    first_obs, _ = env.reset(result.seed)
    assert np.array_equal(seen[0][0], first_obs) and seen[0][0].shape == (39,)
    assert all(c.shape == (policy.chunk_size, 4) for _, c in seen)


def test_rollouts_to_save_without_out_are_refused_on_the_command_line(tiny_run, capsys):
    from leanvla.cli import main

    assert main(["eval", "--policy", str(tiny_run), "--episodes", "1", "--save-rollouts", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "leanvla eval: error: --save-rollouts saves strips and GIFs beside --out, which is unset: pass "
        "--out results.json, or drop --save-rollouts"
    ]
    EvalConfig(policy=tiny_run, save_rollouts=0).check_options_used(["--save-rollouts", "0"])


def test_worker_processes_give_the_episodes_one_process_gives(result, tiny_run):
    one, _ = result
    two = evaluate(EvalConfig(policy=tiny_run, episodes=2, max_steps=20, workers=2), progress=False)
    timing = {"inference_s"}
    assert [{k: v for k, v in e.items() if k not in timing} for e in two["episodes"]] == [
        {k: v for k, v in e.items() if k not in timing} for e in one["episodes"]
    ]


def test_a_worker_that_cannot_start_is_an_error_not_a_hang(tmp_path):
    from leanvla.evaluate import _run_all

    jobs = [("reach-v3", k, 0, 5, 2, False) for k in range(4)]
    with pytest.raises(RuntimeError, match="a worker process died"):
        list(_run_all(jobs, tmp_path / "no-policy", workers=2, threads=1, decode={}, progress=False))


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(n_action_steps=0), "--n-action-steps must be within 1..8, got 0"),
        (dict(threads=0), "--threads must be >= 1, got 0"),
        (dict(workers=0), "--workers must be >= 1, got 0"),
        (dict(save_rollouts=-1), "--save-rollouts must be >= 0"),
        (dict(tasks=""), "no tasks given"),  # not "the policy's tasks", which leaving --tasks out means
    ],
)
def test_a_value_outside_its_meaning_is_refused(tiny_run, options, message):
    from leanvla.errors import UserError

    with pytest.raises(UserError, match=re.escape(message)):
        evaluate(EvalConfig(policy=tiny_run, episodes=1, **options), progress=False)


def test_a_checkpoint_that_cannot_load_is_one_error_before_any_worker_starts(tiny_run, tmp_path):
    import shutil

    from leanvla.errors import UserError
    from leanvla.models.checkpoint import resolve_checkpoint

    broken = tmp_path / "broken"
    shutil.copytree(resolve_checkpoint(tiny_run), broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated
    with pytest.raises(UserError, match="is not a readable safetensors file"):
        evaluate(EvalConfig(policy=broken, episodes=1, max_steps=5, workers=2), progress=False)
