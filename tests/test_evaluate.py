"""Closed-loop evaluation: protocol, held-out positions, results file, rollout media."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from leanvla.data.metaworld_env import MetaWorldTask
from leanvla.data.reader import LeRobotDataset
from leanvla.decode.options import DecodingOptions
from leanvla.errors import InputWarning, UserError
from leanvla.evaluate import EvalConfig, evaluate, wilson
from leanvla.rollout import TrainingPositions, held_out_reset, run_episode


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


def _scripted_episodes(jobs, *_):
    """Stands in for the rollouts: reach-v3 succeeds in episodes 0 and 2 (10 and 30 steps), every
    other episode fails at 50; episode k skipped k seeds and spent 0.01 (k + 1) s in 5 chunks."""
    for task, k, *_ in jobs:
        success = task == "reach-v3" and k != 1
        yield dict(
            task=task,
            episode=k,
            seed=k,
            success=success,
            steps=10 * (k + 1) if success else 50,
            chunks=5,
            positions=[],
            skipped_seeds=k,
            frames=[],
            inference_s=0.01 * (k + 1),
            forward_passes=0,
        )


def test_the_result_sums_the_episodes_up_per_task(tiny_run, monkeypatch):
    import leanvla.evaluate

    monkeypatch.setattr(leanvla.evaluate, "_run_all", _scripted_episodes)
    res = evaluate(EvalConfig(policy=tiny_run, tasks="reach-v3,drawer-close-v3", episodes=3), progress=False)
    reach, drawer = res["per_task"]["reach-v3"], res["per_task"]["drawer-close-v3"]
    assert (reach["successes"], reach["episodes"], reach["ci95"]) == (2, 3, wilson(2, 3))
    assert reach["mean_steps"] == 30.0 and reach["mean_steps_success"] == 20.0  # (10 + 30) / 2
    assert drawer["success_rate"] == 0.0 and drawer["mean_steps_success"] is None
    assert res["mean_success"] == pytest.approx(1 / 3) and res["mean_ci95"] == wilson(2, 6)
    assert res["protocol"]["seeds_skipped_for_training_positions"] == 2 * (0 + 1 + 2)
    assert res["inference_ms_per_chunk"] == pytest.approx(1000 * 2 * 0.06 / 30)  # per chunk, not episode


def test_by_default_the_tasks_the_training_episodes_showed_are_evaluated(tiny_run, monkeypatch):
    import leanvla.evaluate
    import leanvla.models.checkpoint
    from leanvla.data.metaworld_tasks import INSTRUCTIONS

    trained = {"instructions": [INSTRUCTIONS["drawer-close-v3"]], "positions": []}  # one of the data's two
    monkeypatch.setattr(leanvla.models.checkpoint, "read_provenance", lambda path: trained)
    monkeypatch.setattr(leanvla.evaluate, "_run_all", _scripted_episodes)
    res = evaluate(EvalConfig(policy=tiny_run, episodes=1), progress=False)
    assert res["protocol"]["tasks"] == ["drawer-close-v3"]


def test_a_policy_that_records_no_training_positions_is_evaluated_after_one_line_of_warning(
    tiny_run, monkeypatch, capsys
):
    import leanvla.evaluate
    import leanvla.models.checkpoint
    from leanvla.cli import main
    from leanvla.data.metaworld_tasks import INSTRUCTIONS

    # as trained on a dataset another recorder wrote: no object and goal positions to stay clear of
    unrecorded = {"instructions": [INSTRUCTIONS["reach-v3"], INSTRUCTIONS["drawer-close-v3"]]}
    monkeypatch.setattr(leanvla.models.checkpoint, "read_provenance", lambda path: unrecorded)
    monkeypatch.setattr(leanvla.evaluate, "_run_all", _scripted_episodes)
    assert main(["eval", "--policy", str(tiny_run), "--episodes", "3"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"leanvla eval: warning: {tiny_run / 'policy'} records no training positions; evaluation seeds are "
        "disjoint from recording seeds but positions cannot be checked"
    ]
    assert json.loads(captured.out)["per_task"] == {"reach-v3": 2 / 3, "drawer-close-v3": 0.0}


def test_a_policy_missing_some_training_positions_is_not_said_to_be_checked(tiny_run, monkeypatch):
    import leanvla.evaluate
    import leanvla.models.checkpoint
    from leanvla.data.metaworld_tasks import INSTRUCTIONS

    # as trained on a recording LeRobot added two episodes to (tests/data/test_lerobot_interop.py)
    some = {"instructions": [INSTRUCTIONS["reach-v3"]], "positions": [[0.0] * 6, None, None]}
    monkeypatch.setattr(leanvla.models.checkpoint, "read_provenance", lambda path: some)
    monkeypatch.setattr(leanvla.evaluate, "_run_all", _scripted_episodes)
    with pytest.warns(
        InputWarning, match=r"records no positions of 2 training episodes; .* cannot be checked"
    ):
        res = evaluate(EvalConfig(policy=tiny_run, episodes=1), progress=False)
    assert res["protocol"]["held_out_positions_checked"] is False


def test_an_interrupted_evaluation_says_how_far_it_got_and_writes_nothing(
    tiny_run, monkeypatch, capsys, tmp_path
):
    import leanvla.evaluate
    from leanvla.cli import main

    ran = []

    def ctrl_c_in_the_third(job):
        if len(ran) == 2:
            raise KeyboardInterrupt
        ran.append(job)
        return {}

    monkeypatch.setattr(leanvla.evaluate, "_run_job", ctrl_c_in_the_third)
    out = tmp_path / "eval.json"
    args = ["eval", "--policy", str(tiny_run), "--episodes", "3", "--workers", "1", "--out", str(out)]
    assert main(args) == 130
    last = capsys.readouterr().err.strip().split("\n")[-1]
    assert last == "leanvla eval: interrupted after 2 of 6 episodes; nothing was written"
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_the_flow_settings_used_are_applied_and_kept_in_the_result(result, tiny_run, monkeypatch):
    import leanvla.rollout

    assert result[0]["flow"] == {"flow_steps": 10, "flow_noise": 1.0}
    noises, run_episode = [], leanvla.rollout.run_episode

    def noted(policy, *args):
        noises.append(policy.model.cfg.flow_noise)
        return run_episode(policy, *args)

    monkeypatch.setattr(leanvla.rollout, "run_episode", noted)
    res = evaluate(
        EvalConfig(
            policy=tiny_run,
            tasks="reach-v3",
            episodes=1,
            max_steps=8,
            workers=1,
            decoding=DecodingOptions(flow_noise=0.0),
        ),
        progress=False,
    )
    assert res["flow"] == {"flow_steps": 10, "flow_noise": 0.0}
    assert noises == [0.0]  # the policy in-process ran so


def _policy_on_reach(run, max_steps: int):
    """The tiny policy and a reach-v3 env rendering both its cameras, for driving run_episode directly."""
    from leanvla.models.checkpoint import load_policy

    env = MetaWorldTask("reach-v3", cameras=("corner2", "corner3"), image_size=32, max_steps=max_steps)
    return load_policy(run), env


def test_on_chunk_sees_each_observation_and_the_chunk_predicted_from_it(tiny_run):
    policy, env = _policy_on_reach(tiny_run, max_steps=10)
    seen = []
    result = run_episode(
        policy, env, 0, 0, TrainingPositions([]), 4, on_chunk=lambda o, c: seen.append((o, c))
    )
    assert len(seen) == result.chunks == 3 and result.steps == 10  # 4 per chunk; the last chunk stops at 10
    first_obs, _ = env.reset(result.seed)
    assert np.array_equal(seen[0][0], first_obs) and seen[0][0].shape == (39,)
    assert all(c.shape == (policy.chunk_size, 4) for _, c in seen)


def test_a_kept_rollout_holds_each_state_once_as_a_replay_renders_it(tiny_run):
    policy, env = _policy_on_reach(tiny_run, max_steps=10)
    chunks = []
    result = run_episode(
        policy, env, 0, 0, TrainingPositions([]), 4, keep_frames=True, on_chunk=lambda o, c: chunks.append(c)
    )
    assert len(result.frames) == result.steps + 1  # the first state, then one after each action

    def both_cameras() -> np.ndarray:
        views = env.render()
        return np.concatenate([views["corner2"], views["corner3"]], axis=1)

    env.reset(result.seed)  # replay the episode's actions, rendering after each
    replayed = [both_cameras()]
    for action in np.concatenate([c[:4] for c in chunks])[: result.steps]:
        env.step(action)
        replayed.append(both_cameras())
    assert all(np.array_equal(kept, again) for kept, again in zip(result.frames, replayed, strict=True))


def test_the_policys_noise_follows_the_episodes_seed(tiny_run, monkeypatch):
    policy, env = _policy_on_reach(tiny_run, max_steps=4)
    seeds, act = [], policy.act

    def act_noting_the_seed(images, state, task, generator):
        seeds.append(generator.initial_seed())
        return act(images, state, task, generator)

    monkeypatch.setattr(policy, "act", act_noting_the_seed)
    results = [run_episode(policy, env, k, 0, TrainingPositions([]), 4) for k in (0, 1)]
    assert seeds == [r.seed for r in results] and seeds[0] != seeds[1]


def test_rollouts_to_save_without_out_are_refused_on_the_command_line(tiny_run, capsys):
    from leanvla.cli import main

    assert main(["eval", "--policy", str(tiny_run), "--episodes", "1", "--save-rollouts", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "leanvla eval: error: --save-rollouts saves strips and GIFs beside --out, which is unset: pass "
        "--out results.json, or drop --save-rollouts"
    ]
    EvalConfig(policy=tiny_run, save_rollouts=0).check_options_used(["--save-rollouts", "0"])


def test_rollouts_that_could_not_be_saved_are_refused_before_any_episode(tiny_run, tmp_path, capsys):
    from leanvla.cli import main

    (tmp_path / "eval_rollouts").write_text("")
    argv = ["eval", "--policy", str(tiny_run), "--episodes", "1", "--out", str(tmp_path / "eval.json")]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"leanvla eval: error: --out {tmp_path / 'eval.json'} saves its rollouts in {tmp_path / 'eval_rollouts'}, "
        "which is a file; move it, or choose another --out"
    ]
    assert main([*argv, "--save-rollouts", "0", "--max-steps", "2"]) == 0  # none saved: nothing in the way


def test_worker_processes_give_the_episodes_one_process_gives(result, tiny_run):
    one, _ = result
    two = evaluate(EvalConfig(policy=tiny_run, episodes=2, max_steps=20, workers=2), progress=False)
    timing = {"inference_s"}
    assert [{k: v for k, v in e.items() if k not in timing} for e in two["episodes"]] == [
        {k: v for k, v in e.items() if k not in timing} for e in one["episodes"]
    ]


def test_on_one_core_the_default_evaluates_in_this_process(tiny_run, monkeypatch):
    def no_workers(*args, **kwargs):
        raise AssertionError("worker processes were started on one core")

    monkeypatch.setattr("leanvla.workers.cores_per_process", lambda: 1)
    monkeypatch.setattr("leanvla.evaluate.map_in_workers", no_workers)
    result = evaluate(EvalConfig(policy=tiny_run, episodes=2, max_steps=5), progress=False)
    assert result["environment"]["workers"] == 1


def test_the_default_workers_each_hold_the_policys_weights_too(tiny_run, monkeypatch):
    from leanvla.evaluate import _worker_processes
    from leanvla.models import checkpoint as checkpoints
    from leanvla.workers import WORKER_MEMORY

    checkpoint, load = checkpoints.resolve_checkpoint(tiny_run), checkpoints.load_policy
    loads = []
    monkeypatch.setattr(checkpoints, "load_policy", lambda path: loads.append(path) or load(path))
    cores = 16
    monkeypatch.setattr("leanvla.workers.cores_per_process", lambda: cores)
    monkeypatch.setattr("leanvla.workers.available_memory", lambda: 3 * WORKER_MEMORY)

    def workers(jobs: int = 40, **options) -> tuple[int, int]:
        """How many workers, and whether the policy was loaded here to count them."""
        loads.clear()
        return _worker_processes(EvalConfig(policy=tiny_run, **options), checkpoint, jobs), len(loads)

    # 3 workers without the weights; the tiny policy's, under half of WORKER_MEMORY, leave room for 2
    assert workers() == (2, 1)
    assert workers(workers=5) == (5, 1)  # as asked, the policy loaded here to fail in one line
    # One process, where the policy loads anyway: not loaded here too.
    assert workers(threads=16) == (1, 0)  # 16 cores, 16 threads a worker
    assert workers(jobs=1) == (1, 0)  # never more workers than episodes
    cores = 1
    assert workers() == (1, 0)


def test_an_evaluation_makes_an_env_once_a_task_and_leaves_none_open(tiny_run, monkeypatch):
    import leanvla.evaluate
    from leanvla.data.metaworld_env import _LIVE_ENVS, OneEnvAtATime
    from tests.helpers import envs_made

    monkeypatch.setattr("leanvla.evaluate._ENVS", OneEnvAtATime())  # not one an earlier test left
    made, open_before = envs_made(monkeypatch), list(_LIVE_ENVS)
    evaluate(EvalConfig(policy=tiny_run, episodes=3, max_steps=3, workers=1, save_rollouts=0), progress=False)
    assert made == ["reach-v3", "drawer-close-v3"]  # not one an episode
    # the caller's process goes on without the last env's rendering context or the policy
    assert _LIVE_ENVS == open_before and leanvla.evaluate._WORKER == {}


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
        (dict(threads=10**6), f"--threads {10**6} is more than this machine's {os.cpu_count()} cores"),
        (dict(workers=0), "--workers must be >= 1, got 0"),
        (dict(save_rollouts=-1), "--save-rollouts must be >= 0"),
        (dict(tasks=""), "no tasks given"),  # not "the policy's tasks", which leaving --tasks out means
    ],
)
def test_a_value_outside_its_meaning_is_refused(tiny_run, options, message):
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


def test_a_policy_of_no_meta_world_task_is_sent_to_probe():
    from leanvla.data.metaworld_tasks import INSTRUCTIONS
    from leanvla.errors import UserError
    from leanvla.evaluate import policy_tasks

    assert policy_tasks([INSTRUCTIONS["reach-v3"], "open the fridge"]) == ["reach-v3"]
    robot = ["open the fridge", "fold the towel", "pick the cube", "wipe the table"]
    message = (
        "the policy's instructions ('open the fridge', 'fold the towel', 'pick the cube', ... (4 in all)) name no "
        "Meta-World task, and `leanvla eval` runs the Meta-World tasks a policy was trained on: measure it on "
        "recordings with `leanvla probe --policy P --data DATA`"
    )
    with pytest.raises(UserError, match=re.escape(message)):
        policy_tasks(robot)
    with pytest.raises(UserError, match=re.escape("instructions ('open the fridge') name no")):
        policy_tasks(robot[:1])


def test_cameras_render_at_the_shape_the_training_frames_had_when_they_share_one():
    from leanvla.evaluate import render_shape

    meta = {"model": {"image_size": 32, "cameras": ["observation.images.a", "observation.images.b"]}}
    shared = {"observation.images.a": [24, 32], "observation.images.b": [24, 32]}
    assert render_shape(meta, {"camera_shapes": shared}) == (24, 32)
    mixed = {**shared, "observation.images.b": [32, 32]}
    assert render_shape(meta, {"camera_shapes": mixed}) == (32, 32)  # one renderer per env: the square
    assert render_shape(meta, {}) == (32, 32)  # a policy saved before shapes were recorded


def test_a_policy_of_a_wider_camera_is_evaluated_on_that_camera_fitted(tmp_path):
    from leanvla.report import protocol_line
    from tests.helpers import record_in_process, train_tiny_vla

    options = dict(tasks="reach-v3", episodes=1, cameras="corner2", image_size=16, image_width=24)
    run = train_tiny_vla(record_in_process(tmp_path / "wide", **options), tmp_path / "run", image_size=16)
    res = evaluate(EvalConfig(policy=run, episodes=1, max_steps=4, workers=1), progress=False)
    assert res["protocol"]["camera_shape"] == [16, 24] and res["per_task"]["reach-v3"]["episodes"] == 1
    assert res["protocol"]["image_fit"] == "pad"
    assert (
        "observing observation.images.corner2, observation.state (cameras rendered 16 x 24, fitted to the "
        "policy's 16 x 16). Success" in protocol_line(res)
    )


def test_an_out_that_is_a_directory_is_refused_before_any_episode(tiny_run, tmp_path, monkeypatch):
    """Found when the results were written, after every episode had run, it was a traceback."""
    monkeypatch.setattr("leanvla.models.checkpoint.read_meta", lambda *a: pytest.fail("the policy was read"))
    with pytest.raises(UserError) as refused:
        evaluate(EvalConfig(policy=tiny_run, episodes=1, out=tmp_path), progress=False)
    assert str(refused.value) == (
        f"--out {tmp_path} is a directory; name a file, e.g. {tmp_path / 'eval.json'}"
    )
    assert list(tmp_path.iterdir()) == []
