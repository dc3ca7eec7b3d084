"""Bad input gets one clear line on stderr and exit code 2; nothing half-written is left behind."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from leanvla import cli
from leanvla.cli import main, one_line_parse_error


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def terminal_lines(err: str) -> list[str]:
    """stderr as a terminal shows it: each line's text after its last carriage return (a progress
    bar cleared before an error is gone)."""
    return [shown for line in err.split("\n") if (shown := line.rsplit("\r", 1)[-1]).strip()]


def one_line_error(code, err, *needles):
    assert code == 2
    lines = terminal_lines(err)
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_info_prints_json(capsys, lerobot_fixture):
    code, out, _ = run(capsys, "info", str(lerobot_fixture))
    assert code == 0
    summary = json.loads(out)
    assert (summary["episodes"], summary["frames"], len(summary["tasks"])) == (9, 679, 3)


def test_info_shows_instructions_as_written(capsys, tmp_path):
    from tests.data.helpers import synthetic_dataset

    data = synthetic_dataset(
        tmp_path / "ds", tasks=("把方块放进盒子", "Greif den Würfel", "把方块放进盒子", "c")
    )
    code, out, _ = run(capsys, "info", str(data))
    assert code == 0 and '"把方块放进盒子"' in out and '"Greif den Würfel"' in out
    assert json.loads(out)["tasks"] == ["把方块放进盒子", "Greif den Würfel", "c"]


def test_a_path_given_after_an_equals_sign_from_the_home_directory_is_read_there(
    capsys, monkeypatch, tmp_path, lerobot_fixture
):
    """The shell expands `~` at a word's start, not in `--out=~/runs`: leanvla wrote into a
    directory named `~` in the working directory, and `--data=~/data` did not exist."""
    home, elsewhere = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    elsewhere.mkdir()
    (home / "fixture").symlink_to(lerobot_fixture)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(elsewhere)
    code, out, _ = run(capsys, "info", "~/fixture")
    assert code == 0 and json.loads(out)["root"] == str(home / "fixture")
    seen = []
    monkeypatch.setattr(cli, "run_train", seen.append)
    argv = [
        "train",
        "--data=~/fixture",
        "--out=~/runs/a",
        "--orth.vector=~/tau.safetensors",
        "--episodes=e.json",
    ]
    assert run(capsys, *argv)[0] == 0
    cfg = seen[0]
    assert (cfg.data, cfg.out, cfg.orth.vector) == (
        home / "fixture",
        home / "runs/a",
        home / "tau.safetensors",
    )
    assert cfg.episodes == Path("e.json") and list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_the_version_is_the_installed_packages(capsys, flag):
    """For a bug report; it was "unknown command '--version'"."""
    import importlib.metadata

    assert run(capsys, flag) == (0, f"leanvla {importlib.metadata.version('leanvla')}\n", "")
    assert "leanvla --version prints the version." in run(capsys, "--help")[1]


def test_missing_dataset_dir(capsys, tmp_path):
    code, _, err = run(capsys, "info", str(tmp_path / "nope"))
    one_line_error(code, err, "does not exist", "leanvla data metaworld")
    (tmp_path / "info.json").write_text("{}")  # a dataset's file, not its directory: "does not exist" misled
    code, _, err = run(capsys, "info", str(tmp_path / "info.json"))
    one_line_error(
        code, err, f"{tmp_path / 'info.json'} is a file, not a dataset directory; pass the directory holding"
    )


def test_missing_parquet_file(capsys, lerobot_fixture, tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(lerobot_fixture, ds)
    (ds / "data/chunk-000/file-000.parquet").unlink()
    code, _, err = run(capsys, "info", str(ds))
    one_line_error(code, err, "file-000.parquet is missing")


def test_a_camera_video_shorter_than_its_episodes_is_one_line_and_nothing_is_written(
    capsys, lerobot_fixture, tmp_path
):
    pytest.importorskip("av", reason="PyAV is in the dev extra; `make test` installs it")
    from tests.data.helpers import encode_mp4, to_video_dataset

    ds = tmp_path / "ds"
    shutil.copytree(lerobot_fixture, ds)
    frames = to_video_dataset(ds, "observation.images.corner2")  # LeRobot's own dataset, as mp4
    train = ["train", "--data", str(ds), "--model.size", "tiny", "--steps", "1", "--batch-size", "4"]
    code, _, err = run(capsys, *train, "--out", str(tmp_path / "whole"))
    assert code == 0, err
    video = ds / "videos/observation.images.corner2/chunk-000/file-000.mp4"
    video.unlink()
    encode_mp4(video, frames[:-10], 80)  # the last episode's last 10 frames lost
    code, _, err = run(capsys, *train, "--out", str(tmp_path / "cut"))
    one_line_error(
        code, err, "episode 8 of 'observation.images.corner2' needs a frame at", "is the file truncated?"
    )
    assert not (tmp_path / "cut").exists()


def test_a_v21_dataset_is_converted_by_the_command_its_refusal_names_then_trains(
    capsys, lerobot_fixture, tmp_path
):
    from tests.data.helpers import to_v21
    from tests.data.test_convert import FIXTURE_SUMMARY

    old = to_v21(lerobot_fixture, tmp_path / "v21")
    code, _, err = run(capsys, "info", str(old))
    one_line_error(code, err, "codebase_version v2.1", f"leanvla data convert {old} --out DIR")
    code, out, err = run(capsys, "data", "convert", str(old), "--out", str(tmp_path / "v30"))
    assert code == 0, err
    assert json.loads(out) == {"out": str(tmp_path / "v30"), **FIXTURE_SUMMARY}
    code, out, _ = run(capsys, "info", str(tmp_path / "v30"))
    assert code == 0 and json.loads(out)["codebase_version"] == "v3.0"
    train = ["train", "--data", str(tmp_path / "v30"), "--model.size", "tiny", "--steps", "1"]
    code, _, err = run(capsys, *train, "--batch-size", "4", "--out", str(tmp_path / "run"))
    assert code == 0, err
    code, _, err = run(capsys, "data", "convert", str(old), "--out", str(tmp_path / "v30"))
    one_line_error(code, err, "v30 already exists; choose another --out or pass --overwrite")
    code, _, err = run(capsys, "data", "convert", str(tmp_path / "v30"), "--out", str(tmp_path / "again"))
    one_line_error(code, err, "is already LeRobotDataset v3.0: leanvla reads it as it is")
    assert not (tmp_path / "again").exists()


def test_feature_with_wrong_shape(capsys, lerobot_fixture, tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(lerobot_fixture, ds)
    info = json.loads((ds / "meta/info.json").read_text())
    info["features"]["action"]["shape"] = [7]
    (ds / "meta/info.json").write_text(json.dumps(info))
    code, _, err = run(
        capsys,
        "train",
        "--data",
        str(ds),
        "--out",
        str(tmp_path / "run"),
        "--model.size",
        "tiny",
        "--steps",
        "1",
    )
    one_line_error(code, err, "'action'", "[7]")
    assert not (tmp_path / "run" / "policy").exists()


def test_unknown_task_name(capsys, tmp_path):
    code, _, err = run(
        capsys, "data", "metaworld", "--tasks", "reach-v3,fly-v3", "--out", str(tmp_path / "d")
    )
    one_line_error(code, err, "unknown Meta-World task or suite 'fly-v3'")
    assert not (tmp_path / "d").exists()


def test_bad_fraction_needs_labels_file(capsys, tmp_path):
    code, _, err = run(
        capsys,
        "data",
        "metaworld",
        "--tasks",
        "reach-v3",
        "--bad-fraction",
        "0.3",
        "--out",
        str(tmp_path / "d"),
    )
    one_line_error(code, err, "--labels-out")
    assert not (tmp_path / "d").exists()


def test_checkpoint_that_does_not_match_the_data(capsys, tiny_run, lerobot_fixture, tmp_path):
    # tiny_run observes corner2 + corner3; the fixture has corner2 only
    code, _, err = run(
        capsys,
        "train",
        "--data",
        str(lerobot_fixture),
        "--init",
        str(tiny_run),
        "--out",
        str(tmp_path / "ft"),
        "--steps",
        "1",
    )
    one_line_error(code, err, "observes 'observation.images.corner3', which", "does not have")
    assert not (tmp_path / "ft" / "policy").exists()


def test_eval_on_a_task_the_policy_never_saw(capsys, tiny_run):
    code, _, err = run(capsys, "eval", "--policy", str(tiny_run), "--tasks", "push-v3", "--episodes", "1")
    one_line_error(code, err, "was not trained on push-v3")


def test_eval_of_a_policy_of_no_meta_world_task_points_to_probe(capsys, discrete_run):
    # trained on 'task a/b/c': no task named on the command line can make Meta-World run it
    code, _, err = run(
        capsys, "eval", "--policy", str(discrete_run), "--tasks", "reach-v3", "--episodes", "1"
    )
    one_line_error(code, err, "('task a', 'task b', 'task c') name no Meta-World task", "leanvla probe")


def test_unknown_command(capsys):
    code, _, err = run(capsys, "fly", "--steps", "3")
    one_line_error(code, err, "unknown command 'fly';", "leanvla --help")
    assert "did you mean" not in err and "--steps" not in err


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["trian", "--steps", "3"], ["unknown command 'trian'; did you mean 'train'?"]),
        (["dat"], ["unknown command 'dat'; did you mean 'data'?"]),
        (
            ["data", "stat", "PATH"],
            ["unknown data command 'stat'; did you mean 'data stats'?", "metaworld, convert, stats"],
        ),
        (
            ["data", "fly"],
            ["unknown data command 'fly'; choose from metaworld, convert, stats", "data --help"],
        ),
    ],
)
def test_a_misspelt_command_is_told_the_nearest(capsys, argv, needles):
    code, _, err = run(capsys, *argv)
    one_line_error(code, err, *needles)


def test_data_alone_lists_the_data_commands(capsys):
    code, out, _ = run(capsys, "data", "--help")
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("  ")]
    assert listed == ["metaworld", "convert", "stats"]
    assert out.startswith("usage: leanvla data COMMAND")
    assert run(capsys, "data")[:2] == (2, out)  # nothing chosen: the same list, and a failing exit


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["--select-by", "loss"], ["invalid choice 'loss'", "--select-by", "influence"]),
        (["--fraction", "half"], ["--fraction", "'half'"]),
        (["--bogus", "3"], ["Unrecognized options", "--bogus"]),
        ([], ["Missing", "--out"]),
    ],
)
def test_parse_errors_are_one_line_too(capsys, argv, needles):
    """tyro's boxed parse errors, flattened: what was wrong, and where to read the options."""
    code, _, err = run(
        capsys, "curate", "--policy", "p", "--data", "d", *(["--out", "o"] if argv else []), *argv
    )
    one_line_error(code, err, "leanvla curate: error:", "leanvla curate --help", *needles)
    assert "│" not in err and "─" not in err


def test_a_choice_error_lists_the_choices_in_one_order():
    # tyro writes an optional Literal's choices in set order, which changes from run to run.
    box = (
        "╭─ Invalid choice ──────────────╮\n"
        "│ invalid choice 'bogus' for argument '--decoder'. Expected one of ('fast',    │\n"
        "│ 'bidirectional', 'auto', 'None', 'fast-nocache').                            │\n"
        "│ ──────────────────────────── │\n"
        "│ For full helptext, run leanvla eval --help │\n"
        "╰───────────────────────────────╯\n"
    )
    assert one_line_parse_error(box) == (
        "invalid choice 'bogus' for argument '--decoder'. "
        "Expected one of: None, auto, bidirectional, fast, fast-nocache."
    )


def test_help_exits_0(capsys):
    assert main(["curate", "--help"]) == 0
    assert "--select-by" in capsys.readouterr().out


def option_help(help_text: str, flag: str) -> tuple[list[str], int]:
    """The text lines of one option's help (under its flag), and the longest help line of any
    option: the column is at least that wide. tyro draws a box on a terminal, not under pytest."""
    rows = [line.strip("│╭╮╰╯") for line in help_text.splitlines()]
    first = next(i for i, row in enumerate(rows) if row.lstrip().startswith(flag + " "))

    def indent(row: str) -> int:
        return len(row) - len(row.lstrip())

    column = indent(rows[first + 1])
    lines = [rows[first + 1].strip()]
    for row in rows[first + 2 :]:
        if indent(row) != column or not row.strip():  # the next option
            break
        lines.append(row.strip())
    return lines, max(len(row.strip()) for row in rows if row.strip() and indent(row) == column)


def test_help_is_wrapped_at_the_terminal_not_at_the_sources_line_breaks(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["train", "--help"]) == 0
    lines, longest = option_help(capsys.readouterr().out, "--adapter")
    assert " ".join(lines).startswith(
        "What fine-tuning trains: every weight ('full'), peft LoRA, or LoRA-SP."
    )
    assert len(lines) >= 2
    for line, following in zip(lines, lines[1:]):  # each line as full as the next word allows
        assert len(line) + 1 + len(following.split()[0]) > longest, lines


def test_a_docstring_becomes_paragraphs_of_joined_lines():
    from leanvla.cli import unwrapped_help

    text = "First line\n    --flag continues it.\n\n    Second paragraph\n    - an item\n    - another"
    assert unwrapped_help(text) == "First line --flag continues it.\n\nSecond paragraph\n- an item\n- another"


def test_console_entry_point_exit_code(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "leanvla", "info", str(tmp_path / "nope")], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "does not exist" in result.stderr


@pytest.mark.parametrize(
    "options, message",
    [
        (["--episodes", "0"], "--episodes must be >= 1"),
        (["--image-size", "4"], "--image-size must be within"),
        (["--image-width", "2000"], "--image-width must be within 8..1024 pixels, got 2000"),
        (["--seed", "-1"], "--seed must be >= 0 (it seeds numpy's recording draws), got -1"),
        (["--max-steps", "0"], "--max-steps must be within 1..500 (Meta-World's limit), got 0"),
        (
            ["--bad-fraction", "0.5", "--labels-out", "l.json", "--noise-std", "-1"],
            "--noise-std must be finite and >= 0 (a std), got -1.0",
        ),
        (  # it recorded actions of +-1 alone, as noise
            ["--bad-fraction", "0.5", "--labels-out", "l.json", "--noise-std", "inf"],
            "--noise-std must be finite and >= 0 (a std), got inf",
        ),
        # Options this recording would ignore (the first two typed at their default values).
        (["--noise-std", "0.6"], "--noise-std shapes bad demonstrations, which --bad-fraction 0"),
        (["--bad-kinds", "noisy,failed,truncated,wrong_task"], "--bad-kinds shapes bad demonstrations"),
        (
            ["--bad-fraction", "0.5", "--labels-out", "l.json", "--bad-kinds", "failed", "--noise-std", "1"],
            "--noise-std sets the noise of 'noisy' episodes, which --bad-kinds leaves out",
        ),
        (["--bad-fraction", "0.01", "--labels-out", "l.json"], "rounds to no bad episode"),
        (["--cameras", ","], "--cameras is empty; name at least one camera, e.g. --cameras corner2"),
        (["--cameras", "corner2,corner2"], "--cameras names 'corner2' twice; give each once"),
        (  # they went into the dataset, which a reader would take for its own files
            ["--bad-fraction", "0.5", "--labels-out", "d/labels.json"],
            "--labels-out d/labels.json is inside --out",
        ),
        (
            ["--bad-fraction", "0.5", "--labels-out", "l.json", "--bad-kinds", "noisy,noisy"],
            "--bad-kinds names 'noisy' twice; give each once",
        ),
        (["--bad-fraction", "1", "--labels-out", "l.json"], "--bad-fraction must be in [0, 1), got 1.0"),
        (
            ["--bad-fraction", "0.5", "--labels-out", "l.json", "--bad-kinds", "noisy,sloppy"],
            "unknown --bad-kinds entry 'sloppy'; choose from noisy, failed, truncated, wrong_task",
        ),
        # one task: a wrong-instruction episode has no other instruction to take
        (
            ["--bad-fraction", "0.5", "--labels-out", "l.json", "--bad-kinds", "wrong_task"],
            "--bad-kinds leaves no kind of bad demonstration to record",
        ),
        (["--workers", "0"], "--workers must be >= 1, got 0"),
    ],
)
def test_recorder_option_checks(capsys, tmp_path, monkeypatch, options, message):
    monkeypatch.chdir(tmp_path)  # where a recording that went ahead would have put l.json
    code, _, err = run(
        capsys, "data", "metaworld", "--tasks", "reach-v3", *options, "--out", str(tmp_path / "d")
    )
    one_line_error(code, err, message)
    assert list(tmp_path.iterdir()) == []


def test_the_recorder_does_not_overwrite_without_being_told(capsys, tmp_path):
    (tmp_path / "d").mkdir()
    code, _, err = run(capsys, "data", "metaworld", "--tasks", "reach-v3", "--out", str(tmp_path / "d"))
    one_line_error(code, err, f"{tmp_path / 'd'} already exists; choose another --out or pass --overwrite")
    assert list((tmp_path / "d").iterdir()) == []
    # Another recording's labels were replaced without a word; a directory failed once all was recorded.
    (tmp_path / "labels.json").write_text("{}")
    argv = [
        "data",
        "metaworld",
        "--tasks",
        "reach-v3",
        "--out",
        str(tmp_path / "new"),
        "--bad-fraction",
        "0.5",
    ]
    code, _, err = run(capsys, *argv, "--labels-out", str(tmp_path / "labels.json"))
    one_line_error(
        code,
        err,
        f"{tmp_path / 'labels.json'} already exists; choose another --labels-out or pass --overwrite",
    )
    code, _, err = run(capsys, *argv, "--labels-out", str(tmp_path / "d"))
    one_line_error(
        code,
        err,
        f"--labels-out {tmp_path / 'd'} is a directory; name a file, e.g. {tmp_path / 'd' / 'labels.json'}",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "labels.json"]
    assert (tmp_path / "labels.json").read_text() == "{}"


def test_adapter_regex_that_matches_nothing(capsys, tiny_run, tiny_dataset, tmp_path):
    code, _, err = run(
        capsys,
        "train",
        "--data",
        str(tiny_dataset),
        "--init",
        str(tiny_run),
        "--out",
        str(tmp_path / "sp"),
        "--adapter",
        "lora-sp",
        "--lora.regex",
        "nothing_here",
    )
    one_line_error(code, err, "--lora.regex 'nothing_here' matches no nn.Linear")
    assert not (tmp_path / "sp").exists()


def test_fine_tuning_cannot_change_the_cameras(capsys, tiny_run, tiny_dataset, tmp_path):
    # tiny_run observes corner2 + corner3; --cameras must not be silently ignored
    code, _, err = run(
        capsys,
        *("train", "--data", str(tiny_dataset), "--init", str(tiny_run), "--out", str(tmp_path / "ft")),
        *("--cameras", "corner2"),
    )
    one_line_error(code, err, "--cameras corner2, but --init", "keeps its own cameras")
    assert not (tmp_path / "ft").exists()


@pytest.mark.parametrize("flag, value", [("--chunk-size", "4"), ("--n-action-steps", "2")])
def test_fine_tuning_cannot_change_the_action_chunking(capsys, tiny_run, tiny_dataset, tmp_path, flag, value):
    # tiny_run predicts chunks of 8 and executes 4; a different value must not be silently ignored
    code, _, err = run(
        capsys,
        *("train", "--data", str(tiny_dataset), "--init", str(tiny_run), "--out", str(tmp_path / "ft")),
        *(flag, value),
    )
    one_line_error(code, err, f"{flag} {value}, but --init", "keeps its own action chunking")
    assert not (tmp_path / "ft").exists()


def test_a_vision_stem_that_does_not_fit_the_images(capsys, lerobot_fixture, tmp_path):
    # the fixture's images are 64 px: patch 2 and 6 stages leave a 1 x 1 grid, too small for pixel shuffle 2
    code, _, err = run(
        capsys,
        "train",
        "--data",
        str(lerobot_fixture),
        "--out",
        str(tmp_path / "r"),
        "--steps",
        "1",
        "--model.vision-patch",
        "2",
        "--model.vision-channels",
        *["8"] * 6,
    )
    one_line_error(code, err, "vision stem (patch 2, channels [8, 8, 8, 8, 8, 8]) on 64 px images")
    assert not (tmp_path / "r").exists()


def test_model_options_reach_the_saved_policy_config(capsys, lerobot_fixture, tmp_path):
    out = tmp_path / "r"
    code, _, err = run(
        capsys,
        "train",
        *("--data", str(lerobot_fixture), "--out", str(out), "--steps", "2", "--batch-size", "4"),
        *("--model.size", "tiny", "--model.flow-target", "action", "--model.flow-steps", "3"),
        *("--model.vision-flat-token", "True"),
    )
    assert code == 0, err
    config = json.loads((out / "policy" / "config.json").read_text())["model"]
    assert (config["flow_target"], config["flow_steps"], config["head"]) == ("action", 3, "flow")
    assert config["vision_flat_token"] is True


def test_an_interrupted_command_says_so_in_one_line_with_code_130(capsys, monkeypatch, lerobot_fixture):
    def interrupted(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run_info", interrupted)
    code, out, err = run(capsys, "info", str(lerobot_fixture))
    assert code == 130 and out == ""
    assert err.strip().splitlines() == ["leanvla info: interrupted"]  # the shell's code for Ctrl-C


def test_under_torchrun_only_the_main_process_says_it_was_interrupted(capsys, monkeypatch, lerobot_fixture):
    """torchrun passes a SIGTERM (or the terminal a Ctrl-C) to every process: each printed the line."""

    def interrupted(cfg):
        raise KeyboardInterrupt("at step 7 of 12")

    monkeypatch.setattr(cli, "run_info", interrupted)
    monkeypatch.setenv("RANK", "1")
    assert run(capsys, "info", str(lerobot_fixture)) == (130, "", "")
    monkeypatch.setenv("RANK", "0")
    assert run(capsys, "info", str(lerobot_fixture)) == (
        130,
        "",
        "leanvla info: interrupted at step 7 of 12\n",
    )


def test_a_warning_made_an_error_is_one_line_too(capsys, monkeypatch, lerobot_fixture):
    """Where warnings are errors (PYTHONWARNINGS=error, a test suite's -W error), leanvla's warning
    was raised as an exception: a traceback."""
    import warnings

    from leanvla.errors import InputWarning

    def warns(cfg):
        warnings.warn("data/ has 9 episodes, the checkpoint was trained on 12", InputWarning, stacklevel=2)

    monkeypatch.setattr(cli, "run_info", warns)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, out, err = run(capsys, "info", str(lerobot_fixture))
    assert (code, out, err) == (
        2,
        "",
        "leanvla info: error: data/ has 9 episodes, the checkpoint was trained on 12\n",
    )
    code, out, err = run(capsys, "info", str(lerobot_fixture))  # shown, as ever, and the command goes on
    assert (code, err) == (
        0,
        "leanvla info: warning: data/ has 9 episodes, the checkpoint was trained on 12\n",
    )


def test_ctrl_c_before_a_command_begins_is_one_line_too(capsys, monkeypatch):
    """While its modules import (the first second or two): it was a traceback of importlib's frames."""

    def importing():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_commands", importing)
    code, out, err = run(capsys, "info", "data")
    assert code == 130 and out == "" and err == "leanvla: interrupted\n"


@pytest.mark.parametrize(
    "at, says",
    [
        (7, "at step 7 of 12; the same command resumes from {out}/last (step 5)"),
        (3, "at step 3 of 12, before its first checkpoint (--save-every): the same command starts over"),
    ],
)
def test_interrupted_training_says_where_it_stopped_and_the_same_command_goes_on(
    capsys, monkeypatch, data, tmp_path, at, says
):
    import leanvla.train.loop

    out = tmp_path / "run"
    train = ["train", "--data", str(data), "--out", str(out), "--model.size", "tiny", "--steps", "12"]
    train += ["--batch-size", "4", "--save-every", "5", "--log-every", "1"]
    lr_at = leanvla.train.loop.lr_at

    def ctrl_c_at(step, *args):
        if step == at:
            raise KeyboardInterrupt
        return lr_at(step, *args)

    monkeypatch.setattr(leanvla.train.loop, "lr_at", ctrl_c_at)
    code, _, err = run(capsys, *train)
    assert code == 130
    *_, bar, message = terminal_lines(err)
    assert bar.startswith("train: ") and f"{at}/12" in bar  # the bar ended its line first
    assert message == "leanvla train: interrupted " + says.format(out=out)
    monkeypatch.setattr(leanvla.train.loop, "lr_at", lr_at)
    code, _, err = run(capsys, *train)
    assert code == 0, err
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 13))  # resumed from step 5, or started over: each step logged once


@pytest.mark.parametrize(
    "argv, runs",
    [
        (["probe", "--policy", "p", "--data", "d", "--out", "o"], "leanvla.probe.run.probe"),
        (["prune", "--policy", "p", "--data", "d", "--out", "o"], "leanvla.prune.run.prune"),
        (["curate", "--policy", "p", "--data", "d", "--out", "o"], "leanvla.curate.run.curate"),
        (["export", "--policy", "p", "--out", "o"], "leanvla.adapt.export.export_checkpoint"),
        (["merge", "--base", "b", "--sft", "s", "--aux", "a", "--out", "o"], "leanvla.merge.run.merge"),
        (["demo"], "leanvla.demo.demo"),
    ],
)
def test_commands_that_compute_run_torch_within_the_cores_they_may_use(capsys, monkeypatch, argv, runs):
    """Under a CPU quota of one core torch's default (a thread per core of the affinity) is cut to one."""
    import torch

    from leanvla.errors import UserError

    threads = []

    def command(cfg):
        threads.append(torch.get_num_threads())
        raise UserError("stopped here")

    monkeypatch.setattr(runs, command)
    monkeypatch.setattr("leanvla.adapt.export.ExportConfig.check_options_used", lambda *args: None)  # reads p
    monkeypatch.setattr("leanvla.cores.cgroup_quota", lambda: 1.0)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert run(capsys, *argv)[0] == 2
    finally:
        torch.set_num_threads(before)
    assert threads == [1]


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--data", "{data}", "--out", "{out}"],
        ["eval", "--policy", "{run}", "--out", "{out}.json"],
        ["probe", "--policy", "{run}", "--data", "{data}", "--out", "{out}"],
        ["curate", "--policy", "{run}", "--data", "{data}", "--out", "{out}"],
        ["prune", "--policy", "{run}", "--data", "{data}", "--out", "{out}"],
        ["merge", "--base", "{run}", "--sft", "{run}", "--aux", "{run}", "--out", "{out}"],
        ["export", "--policy", "{run}", "--out", "{out}"],
        ["data", "metaworld", "--out", "{out}"],
        ["data", "metaworld", "--out", "{free}", "--bad-fraction", "0.5", "--labels-out", "{out}.json"],
        ["demo", "--out", "{out}"],
        ["demo", "--out", "{free}", "--cache", "{out}"],  # it named the recorder's --out inside --cache
    ],
)
def test_an_out_under_a_file_is_one_line_before_any_work(capsys, tiny_run, tiny_dataset, tmp_path, argv):
    """Found when the result was renamed into place (after the work), it was a traceback."""
    blocking = tmp_path / "notes.txt"
    blocking.write_text("a file where a directory would go")
    places = {"data": tiny_dataset, "run": tiny_run, "out": blocking / "x", "free": tmp_path / "free"}
    argv = [arg.format(**places) for arg in argv]
    out_flag = next(argv[i - 1] for i, arg in enumerate(argv) if arg.startswith(str(blocking)))
    out = next(arg for arg in argv if arg.startswith(str(blocking)))
    code, _, err = run(capsys, *argv)
    one_line_error(
        code, err, f"{out_flag} {out}: {blocking} is a file, not a directory; choose another {out_flag}"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize(
    "argv, what, mark",
    [
        (["train", "--data", "{data}", "--out", "{out}"], "a training run", "train_config.json"),
        (
            ["probe", "--policy", "{run}", "--data", "{data}", "--out", "{out}"],
            "a probe's output",
            "probe.json",
        ),
        (["curate", "--policy", "{run}", "--data", "{data}", "--out", "{out}"], "a curation", "gradients"),
        (["prune", "--policy", "{run}", "--data", "{data}", "--out", "{out}"], "a checkpoint", "config.json"),
        (
            ["merge", "--base", "{run}", "--sft", "{run}", "--aux", "{run}", "--out", "{out}"],
            "a checkpoint",
            "config.json",
        ),
        (["export", "--policy", "{run}", "--out", "{out}"], "a checkpoint", "config.json"),
        (["data", "metaworld", "--out", "{out}"], "a LeRobotDataset", "meta/info.json"),
    ],
)
def test_overwrite_replaces_only_what_the_command_writes(
    capsys, tiny_run, tiny_dataset, tmp_path, argv, what, mark
):
    """`train --out ~/project --overwrite` deleted the project; `--out ""` (an unset variable) named
    the working directory."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("mine")
    places = {"data": tiny_dataset, "run": tiny_run, "out": project}
    code, _, err = run(capsys, *[arg.format(**places) for arg in argv], "--overwrite")
    one_line_error(
        code,
        err,
        f": error: --out {project} holds files but not {what} (no {mark}), and --overwrite would delete "
        "them; choose another --out",
    )
    assert [p.name for p in project.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    "argv, what, mark",
    [
        (["train", "--data", "{data}", "--out", "{out}"], "a training run", "train_config.json"),
        (["curate", "--policy", "{run}", "--data", "{data}", "--out", "{out}"], "a curation", "gradients"),
        (["demo", "--out", "{out}"], "a demo's output", "base"),
    ],
)
def test_commands_that_go_on_in_their_out_write_only_into_their_own(
    capsys, tiny_run, tiny_dataset, tmp_path, argv, what, mark, monkeypatch
):
    """They go on in an --out that holds their own output (train and curate resume, demo keeps its
    stages), so an existing one was not refused: a run was written among the user's files."""
    places = {"data": tiny_dataset, "run": tiny_run, "out": "."}
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = run(capsys, *[arg.format(**places) for arg in argv])
    one_line_error(
        code,
        err,
        f": error: --out . holds files but not {what} (no {mark}), and leanvla writes only into a new or "
        "empty directory; choose another --out",
    )
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_demo_cache_that_is_a_file_is_one_line_before_any_work(capsys, tmp_path):
    (tmp_path / "cache").write_text("")
    code, _, err = run(capsys, "demo", "--out", str(tmp_path / "demo"), "--cache", str(tmp_path / "cache"))
    one_line_error(code, err, f"--cache {tmp_path / 'cache'} is a file; name a directory for the recordings")
    assert [p.name for p in tmp_path.iterdir()] == ["cache"]


def test_an_out_where_nothing_can_be_created_is_one_line(capsys, tiny_run):
    code, _, err = run(
        capsys,
        "merge",
        "--base",
        str(tiny_run),
        "--sft",
        str(tiny_run),
        "--aux",
        str(tiny_run),
        "--out",
        "/proc/merged",
    )
    one_line_error(
        code, err, "--out /proc/merged: nothing can be created in /proc (", "); choose another --out"
    )


def test_running_out_of_memory_is_one_line_with_code_1_naming_what_asks_for_less(capsys, data, tmp_path):
    """Code 1, not 2: the options were valid, the machine too small (a script can tell them apart)."""
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--out", str(out), "--model.size", "tiny", "--steps", "2"]
    code, _, err = run(capsys, *argv, "--model.width", str(2**40))  # 2 TiB-wide matrices: nothing holds them
    assert code == 1
    lines = terminal_lines(err)
    assert len(lines) == 1, err
    assert lines[0].startswith("leanvla train: error: out of memory (tried to allocate "), lines[0]
    assert lines[0].endswith("GiB was available); " + cli.LESS_MEMORY[("train",)]), lines[0]
    assert not out.exists()


@pytest.mark.parametrize(
    "raised, says",
    [
        (
            OSError(28, "No space left on device", "runs/a/last"),
            "No space left on device: runs/a/last; free some space there, or write elsewhere",
        ),
        (
            MemoryError("Unable to allocate 8.00 GiB for an array"),
            "out of memory (Unable to allocate 8.00 GiB for an array); close what else holds memory, or run it on a machine with more",
        ),
    ],
)
def test_a_full_disk_or_memory_is_one_line_with_code_1(capsys, monkeypatch, raised, says):
    def failing(cfg):
        raise raised

    monkeypatch.setattr(cli, "run_info", failing)
    code, out, err = run(capsys, "info", "anywhere")
    assert (code, out, terminal_lines(err)) == (1, "", [f"leanvla info: error: {says}"])


def test_a_disk_filling_as_training_saves_its_checkpoint_is_one_line_naming_the_file(
    capsys, monkeypatch, data, tmp_path
):
    """PyTorch's writer raised "RuntimeError: [enforce fail at inline_container.cc:672] . unexpected
    pos 129088 vs 128980" (measured on a full 2 MB tmpfs): a traceback, the disk never named."""
    import torch

    saving = torch.save

    def disk_fills(obj, f):
        saving(obj, f)
        try:
            raise OSError(errno.ENOSPC, "No space left on device")  # the file's last write
        except OSError:  # PyTorch's writer raises its own while handling it
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")  # noqa: B904

    monkeypatch.setattr(torch, "save", disk_fills)
    out = tmp_path / "run"
    code, _, err = run(
        capsys, "train", "--data", str(data), "--out", str(out), "--model.size", "tiny", "--steps", "2"
    )
    line = terminal_lines(err)[-1]  # after the training's progress bars
    assert code == 1 and "Traceback" not in err
    named = out / "last" / "training_state.pt"  # as the user knows it, not its temporary's name
    assert (
        line
        == f"leanvla train: error: No space left on device: {named}; free some space there, or write elsewhere"
    )
    assert sorted(p.name for p in out.iterdir()) == ["environment.json", "metrics.jsonl", "train_config.json"]


def test_a_disk_filling_as_training_logs_its_metrics_names_the_log(capsys, monkeypatch, data, tmp_path):
    """A file's write says not where: "No space left on device; free some space there", where?"""
    if not os.path.exists("/dev/full"):  # every write there fails as on a full disk
        pytest.skip("no /dev/full here")
    from leanvla.train import loop

    def full_log(path, *args, **kwargs):
        return (
            open("/dev/full", *args, **kwargs)
            if Path(path).name == "metrics.jsonl"
            else open(path, *args, **kwargs)
        )

    monkeypatch.setattr(loop, "open", full_log, raising=False)
    out = tmp_path / "run"
    code, _, err = run(
        capsys, "train", "--data", str(data), "--out", str(out), "--model.size", "tiny", "--steps", "2"
    )
    assert (code, terminal_lines(err)[-1]) == (
        1,
        f"leanvla train: error: No space left on device: {out / 'metrics.jsonl'}; free some space there, or "
        "write elsewhere",
    )


def test_any_other_failure_is_a_bug_and_keeps_its_traceback(capsys, monkeypatch):
    def failing(cfg):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)")

    monkeypatch.setattr(cli, "run_info", failing)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        run(capsys, "info", "anywhere")


@pytest.mark.parametrize(
    "argv, holds",
    [
        (["train", "--data", "{data}", "--init", "{run}", "--out", "{run}/policy"], "--init {run}/policy"),
        (["train", "--data", "{data}", "--init", "{run}/policy", "--out", "{run}"], "--init {run}/policy"),
        (["prune", "--policy", "{run}", "--data", "{data}", "--out", "{run}"], "--policy {run}"),
        (["probe", "--policy", "{run}", "--data", "{data}", "--out", "{run}/last"], "--policy {run}/last"),
        (["curate", "--policy", "{run}", "--data", "{data}", "--out", "{run}/.."], "--policy {run}"),
        (["export", "--policy", "{run}", "--out", "{run}/policy"], "--policy {run}/policy"),
        (["merge", "--base", "{run}", "--vectors", "{run}", "--out", "{run}"], "--base {run}"),
    ],
)
def test_an_out_replacing_an_input_is_refused_and_the_input_kept(
    capsys, tiny_run, tiny_dataset, tmp_path, argv, holds
):
    """`train --init RUN/policy --out RUN --overwrite` deleted its own starting point, then failed."""
    run_copy = shutil.copytree(tiny_run, tmp_path / "run")
    argv = [arg.format(run=run_copy, data=tiny_dataset) for arg in argv]
    out = argv[argv.index("--out") + 1]
    code, _, err = run(capsys, *argv, "--overwrite")
    one_line_error(
        code, err, f"--out {out} holds {holds.format(run=run_copy)}, which replacing it would delete"
    )
    assert sorted(p.name for p in run_copy.iterdir()) == sorted(p.name for p in tiny_run.iterdir())
    assert (run_copy / "policy" / "model.safetensors").read_bytes() == (
        tiny_run / "policy" / "model.safetensors"
    ).read_bytes()
