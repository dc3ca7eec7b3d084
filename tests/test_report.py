"""Run reports: the success table's cells, the protocol line and the rollout pictures."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from leanvla.errors import UserError
from leanvla.report import (
    check_rollouts_directory,
    protocol_line,
    rollout_grid,
    rollouts_directory,
    save_rollout_media,
    success_table,
)


def test_the_success_table_has_a_column_per_policy_and_intervals_low_to_high():
    def result(rates: list[float], mean: float) -> dict:
        per_task = {
            t: {"success_rate": r, "ci95": [r - 0.1, r + 0.05]} for t, r in zip(("reach", "push"), rates)
        }
        return {"per_task": per_task, "mean_success": mean, "mean_ci95": [mean - 0.02, mean + 0.03]}

    table = success_table({"base": result([0.5, 0.25], 0.375), "lora": result([1.0, 0.0], 0.5)})
    assert table.splitlines() == [
        "| task | base | lora |",
        "|---|---|---|",
        "| reach | 50.0 [40.0, 55.0] | 100.0 [90.0, 105.0] |",
        "| push | 25.0 [15.0, 30.0] | 0.0 [-10.0, 5.0] |",
        "| **mean** | **37.5** [35.5, 40.5] | **50.0** [48.0, 53.0] |",
    ]


def test_the_protocol_line_says_when_the_cameras_were_rendered_at_another_shape_and_fitted():
    protocol = {
        "tasks": ["reach-v3"],
        "episodes_per_task": 5,
        "eval_seed": 0,
        "held_out_positions_checked": True,
        "max_steps": 200,
        "n_action_steps": 8,
        "observation": ["observation.images.corner2", "observation.state"],
    }
    before = protocol_line({"protocol": protocol})  # a result written before cameras were fitted
    assert before == (
        "1 tasks x 5 episodes, evaluation seed 0, held-out positions (checked against training: True), "
        "max 200 steps, 8 actions executed per chunk, observing observation.images.corner2, "
        "observation.state. Success in % with 95% Wilson intervals."
    )
    at_size = {**protocol, "camera_shape": [64, 64], "image_size": 64}
    assert protocol_line({"protocol": at_size}) == before
    for shape in ([96, 96], [96, 128]):
        line = protocol_line({"protocol": {**at_size, "camera_shape": shape}})
        assert (
            f"observation.state (cameras rendered {shape[0]} x {shape[1]}, fitted to the policy's 64 x 64). "
            in line
        )
    cropped = protocol_line({"protocol": {**at_size, "camera_shape": [72, 128], "image_fit": "crop"}})
    assert (
        "(cameras rendered 72 x 128, cropped to their centred square and scaled to the policy's 64 x 64). "
        in (cropped)
    )


def test_a_rollout_strip_spans_the_episode_and_the_animation_every_second_frame(tmp_path):
    frames = [np.full((4, 3, 3), 10 * i, dtype=np.uint8) for i in range(25)]  # frame i is grey 10 i
    episode = {"task": "reach-v3", "episode": 2, "success": True, "frames": frames}
    paths = save_rollout_media([episode], rollouts_directory(tmp_path / "eval.json"), strip_frames=5)
    strip_path = tmp_path / "eval_rollouts" / "reach-v3_ep2_success.png"
    assert paths == [str(strip_path), str(strip_path.with_suffix(".gif"))]
    strip = np.asarray(Image.open(strip_path))
    assert strip.shape == (4, 5 * 3, 3)
    assert strip[0, ::3, 0].tolist() == [0, 60, 120, 180, 240]  # frames 0, 6, 12, 18, 24
    assert Image.open(strip_path.with_suffix(".gif")).n_frames == 13

    wide = tmp_path / "wide.png"
    Image.fromarray(np.zeros((4, 30, 3), dtype=np.uint8)).save(wide)
    rollout_grid([str(strip_path), str(wide)], tmp_path / "grid.png")
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    assert grid.shape == (2 * (4 + 2), 30, 3)  # one row per strip, 2 white pixels under each
    assert (grid[:4, 15:] == 255).all() and (grid[4:6] == 255).all() and (grid[6:10] == 0).all()


def test_an_evaluations_media_replace_an_earlier_ones_whole(tmp_path):
    """They were added among the earlier evaluation's: its strips showed successes this one lacked."""
    frames = [np.zeros((4, 3, 3), dtype=np.uint8)] * 3
    directory = rollouts_directory(tmp_path / "eval.json")
    save_rollout_media([{"task": "push-v3", "episode": 0, "success": True, "frames": frames}], directory)
    paths = save_rollout_media(
        [{"task": "reach-v3", "episode": 0, "success": False, "frames": frames}], directory
    )
    assert sorted(p.name for p in directory.iterdir()) == ["reach-v3_ep0_fail.gif", "reach-v3_ep0_fail.png"]
    assert sorted(paths) == [
        str(directory / "reach-v3_ep0_fail.gif"),
        str(directory / "reach-v3_ep0_fail.png"),
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["eval_rollouts"]  # nothing temporary left
    check_rollouts_directory(tmp_path / "eval.json", "--out")  # media alone: replaced, as above


def test_a_rollouts_directory_whose_temporary_name_would_be_too_long_is_refused_before_any_episode(tmp_path):
    """`eval --out NAME.json` within a few bytes of the filesystem's limit: NAME_rollouts, written
    first as .NAME_rollouts.tmp-XXXXXXXX, was "File name too long", a traceback, once the episodes had
    run; NAME.json's own temporary name fits."""
    longest = os.pathconf(tmp_path, "PC_NAME_MAX")
    stem = "a" * (longest - len("._rollouts.tmp-abcdefgh"))
    check_rollouts_directory(tmp_path / f"{stem}.json", "--out")  # the longest whose rollouts fit
    results = tmp_path / f"{stem}a.json"
    with pytest.raises(UserError) as refused:
        check_rollouts_directory(results, "--out")
    assert str(refused.value) == (
        f"--out {results}: {stem}a_rollouts is written first as .aaaaaaaaaaaa....tmp-XXXXXXXX, a name of "
        f"{longest + 1} bytes, over the {longest} this filesystem allows; choose a shorter --out"
    )


def test_a_rollouts_directory_that_cannot_be_replaced_whole_is_refused(tmp_path):
    """Saving into a file of that name was a FileExistsError traceback once every episode had run."""
    results = tmp_path / "eval.json"
    check_rollouts_directory(results, "--out")  # none yet
    (tmp_path / "eval_rollouts").write_text("")
    with pytest.raises(UserError) as refused:
        check_rollouts_directory(results, "--out")
    assert str(refused.value) == (
        f"--out {results} saves its rollouts in {tmp_path / 'eval_rollouts'}, which is a file; move it, or "
        "choose another --out"
    )
    (tmp_path / "eval_rollouts").unlink()
    (tmp_path / "eval_rollouts" / "notes").mkdir(parents=True)
    (tmp_path / "eval_rollouts" / "a.png").write_bytes(b"")
    with pytest.raises(UserError) as refused:
        check_rollouts_directory(results, "--out")
    assert str(refused.value) == (
        f"--out {results} saves its rollouts in {tmp_path / 'eval_rollouts'}, which holds 'notes', not an "
        "evaluation's strip or GIF; move it, or choose another --out"
    )


def test_a_figure_is_written_whole_or_not_at_all_and_closed_either_way(tmp_path, monkeypatch):
    """Written in place, a full disk left a truncated PNG among a curation's outputs."""
    from leanvla.report import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    save_figure(fig, tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)
    fig, ax = plt.subplots()
    saving = type(fig).savefig

    def disk_fills(self, path, **kwargs):
        saving(self, path, **kwargs)
        with open(path, "r+b") as f:  # what reached the disk: its first half
            f.truncate(f.seek(0, 2) // 2)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(fig), "savefig", disk_fills)
    with pytest.raises(OSError):
        save_figure(fig, tmp_path / "scores.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loss.png"] and not plt.fignum_exists(fig.number)
