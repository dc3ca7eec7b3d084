"""Recording: per-episode seeds and positions, bad demonstrations labelled in a separate file."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from leanvla.data import record as recording
from leanvla.data.reader import LeRobotDataset
from leanvla.data.record import EpisodeJob, RecordConfig, plan_jobs, record
from leanvla.data.seeds import episode_seed
from leanvla.data.stats import image_stats
from leanvla.errors import UserError
from tests.helpers import record_in_process


def test_tiny_dataset_has_positions_and_expert_successes(tiny_dataset):
    ds = LeRobotDataset(tiny_dataset)
    assert ds.num_episodes == 6 and ds.tasks == ["reach the goal position", "close the drawer"]
    positions = ds.episode_column("metaworld/positions")
    assert len({tuple(p) for p in positions}) == 6
    assert all(20 <= n <= 300 for n in ds.episode_column("length"))
    images = ds.read_images("observation.images.corner3")
    assert images.shape[1:] == (32, 32, 3) and images.std() > 10
    state, env_state = ds.read_array("observation.state"), ds.read_array("observation.environment_state")
    assert np.array_equal(state, env_state[:, :4])  # proprio = hand xyz + gripper of the full state


def test_a_wider_camera_records_the_same_episodes_seen_wider(tiny_dataset, tmp_path):
    # tiny_dataset: reach-v3 first, seed 0, corner2 at 32 x 32; this: the same episode at 32 x 48
    options = dict(tasks="reach-v3", episodes=1, cameras="corner2", image_size=32, image_width=48)
    record_in_process(tmp_path / "wide", **options)
    wide, square = LeRobotDataset(tmp_path / "wide"), LeRobotDataset(tiny_dataset)
    camera = "observation.images.corner2"
    assert wide.features[camera]["shape"] == [32, 48, 3] and wide.image_shape(camera) == (32, 48)
    length = wide.episode_column("length")[0]
    assert length == square.episode_column("length")[0]
    assert np.array_equal(wide.read_array("action"), square.read_array("action")[:length])
    frames = wide.read_images(camera)
    assert frames.shape == (length, 32, 48, 3)
    assert np.array_equal(frames[:, :, 8:40], square.read_images(camera)[:length])


def test_on_one_core_the_default_records_in_this_process(tmp_path, monkeypatch):
    def no_workers(*args, **kwargs):
        raise AssertionError("worker processes were started on one core")

    monkeypatch.setattr("leanvla.workers.cores_per_process", lambda: 1)
    monkeypatch.setattr("leanvla.data.record.map_in_workers", no_workers)
    cfg = RecordConfig(out=tmp_path / "ds", tasks="reach-v3", episodes=2, cameras="corner2", image_size=16)
    assert record(cfg, progress=False)["episodes"] == 2


def test_the_default_starts_no_more_workers_than_episodes(tmp_path, monkeypatch):
    started = []
    run_jobs = recording._run_jobs

    def in_this_process(jobs, workers):
        started.append(workers)
        return run_jobs(jobs, 1)

    monkeypatch.setattr("leanvla.workers.cores_per_process", lambda: 16)
    monkeypatch.setattr(recording, "_run_jobs", in_this_process)
    cfg = RecordConfig(out=tmp_path / "ds", tasks="reach-v3", episodes=3, cameras="corner2", image_size=16)
    assert record(cfg, progress=False)["episodes"] == 3
    assert started == [3]


def test_a_recording_makes_an_env_once_a_task_and_leaves_none_open(tmp_path, monkeypatch):
    from leanvla.data.metaworld_env import _LIVE_ENVS, OneEnvAtATime
    from tests.helpers import envs_made

    monkeypatch.setattr(recording, "_WORKER_ENVS", OneEnvAtATime())  # not one an earlier test left
    made, open_before = envs_made(monkeypatch), list(_LIVE_ENVS)
    cfg = RecordConfig(
        out=tmp_path / "ds",
        tasks="reach-v3,drawer-close-v3",
        episodes=2,
        image_size=16,
        workers=1,
    )
    assert record(cfg, progress=False)["episodes"] == 4
    assert made == ["reach-v3", "drawer-close-v3"]  # not one an episode
    assert _LIVE_ENVS == open_before  # the caller's process goes on without the last one's context


def test_bad_demonstrations_are_labelled_outside_the_dataset(tmp_path):
    labels = tmp_path / "labels.json"
    cfg = RecordConfig(
        out=tmp_path / "ds",
        tasks="reach-v3,button-press-topdown-v3",
        episodes=4,
        cameras="corner2",
        image_size=16,
        bad_fraction=0.5,
        labels_out=labels,
        workers=1,
    )
    summary = record(cfg, progress=False)
    assert summary["bad"] == 4
    info = json.loads(labels.read_text())
    bad = {b["episode_index"]: b for b in info["bad"]}
    assert len(bad) == 4
    ds = LeRobotDataset(tmp_path / "ds")
    # nothing in the dataset says which episodes are bad
    assert not any("bad" in c or "label" in c or "kind" in c for c in ds.episodes.column_names)
    assert not any("bad" in k for k in ds.features)
    tasks, lengths = ds.episode_tasks(), ds.episode_column("length")
    for index, b in bad.items():
        if b["kind"] == "wrong_task":
            assert (
                tasks[index]
                != {
                    "reach-v3": "reach the goal position",
                    "button-press-topdown-v3": "press the button from the top",
                }[b["task"]]
            )
        if b["kind"] == "truncated":
            assert not b["success"] and lengths[index] == b["length"]
    # each episode's image statistics, counted as the workers encoded, are those of its frames
    frames, ends = ds.read_images("observation.images.corner2"), np.cumsum(lengths)
    for e, (start, end) in enumerate(zip(ends - lengths, ends)):
        for name, value in image_stats(frames[start:end]).items():
            assert ds.episode_column(f"stats/observation.images.corner2/{name}")[e] == value.tolist()
    assert "truncated" in {b["kind"] for b in bad.values()}
    # recording is deterministic in the seed: same plan, same bad episodes
    again = record(
        RecordConfig(**{**cfg.__dict__, "out": tmp_path / "ds2", "labels_out": tmp_path / "l2.json"}),
        progress=False,
    )
    assert again["bad"] == 4
    assert [b["episode_index"] for b in json.loads((tmp_path / "l2.json").read_text())["bad"]] == sorted(bad)


def test_each_task_gets_its_share_of_distinct_bad_episodes():
    cfg = RecordConfig(
        out=None, tasks="reach-v3,drawer-close-v3,button-press-v3", episodes=20, bad_fraction=0.5
    )
    jobs = plan_jobs(cfg, cfg.tasks.split(","), ("corner2",), ["noisy", "failed"])
    for task in cfg.tasks.split(","):
        bad = [j.index for j in jobs if j.task == task and j.kind != "good"]
        assert len(bad) == len(set(bad)) == 10


def test_an_expert_failure_is_not_recorded_but_retried_on_the_next_seed(monkeypatch):
    seeds = []
    rollout = recording._rollout

    def first_one_fails(env, seed, act, max_steps):
        seeds.append(seed)
        episode = rollout(env, seed, act, max_steps)
        return {**episode, "success": False} if len(seeds) == 1 else episode

    monkeypatch.setattr(recording, "_rollout", first_one_fails)
    job = EpisodeJob("reach-v3", 0, "good", "reach-v3", 0, ("corner2",), (16, 16), 300, 0.6)
    episode = recording.record_episode(job)
    assert episode["success"] and episode["seed"] == seeds[1] == episode_seed(0, "reach-v3", 0, attempt=1)


@pytest.mark.parametrize(
    "max_steps, remedy",
    [(20, "raise --max-steps (the default is 300)"), (500, "leave the task out of --tasks")],
)
def test_an_expert_that_never_succeeds_is_one_line_saying_what_to_change(
    tmp_path, monkeypatch, max_steps, remedy
):
    """Episodes cut too short for the expert (--max-steps 20) failed every seed: a RuntimeError."""
    monkeypatch.setattr(recording, "_rollout", lambda *args: {"success": False})
    with pytest.raises(UserError) as refused:
        record_in_process(tmp_path / "d", tasks="reach-v3", episodes=1, image_size=16, max_steps=max_steps)
    assert str(refused.value) == (
        f"the scripted expert for reach-v3 did not succeed within --max-steps {max_steps} from 20 seeds in a "
        f"row (episode 0); {remedy}"
    )
    assert list(tmp_path.iterdir()) == []


def test_an_unreadable_labels_file_is_one_clear_error(tmp_path):
    (tmp_path / "labels.json").write_text("{not json")
    for path in (tmp_path / "labels.json", tmp_path / "missing.json"):
        with pytest.raises(UserError, match=f"cannot read labels file {path}: "):
            recording.read_labels(path)


def test_a_cached_recording_is_recorded_again_over_its_labels_when_its_dataset_is_gone(tmp_path):
    """The labels file outlives a deleted dataset: recording again replaces it, as the cache's own."""
    options = dict(tasks="reach-v3", episodes=2, image_size=16, bad_fraction=0.5, bad_kinds="noisy")
    options["labels_out"] = str(tmp_path / "labels.json")
    first = recording.record_cached(tmp_path / "cache", workers=1, **options)
    labels = (tmp_path / "labels.json").read_text()
    assert recording.record_cached(tmp_path / "cache", workers=1, **options) == first
    shutil.rmtree(first)
    assert recording.record_cached(tmp_path / "cache", workers=1, **options) == first
    assert LeRobotDataset(first).num_episodes == 2 and (tmp_path / "labels.json").read_text() == labels
