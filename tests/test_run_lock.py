"""One process at a time in a run directory: a second lock on it is refused in one line, the first
goes with its holder, and nothing is written into the directory."""

from __future__ import annotations

import json

import pytest

from leanvla.cli import main
from leanvla.errors import UserError
from leanvla.run_lock import DirectoryLock


def test_a_second_holder_is_refused_until_the_first_lets_go(tmp_path):
    first, second = DirectoryLock(tmp_path, "--out"), DirectoryLock(tmp_path, "--out")
    first.take()
    first.take()  # again: nothing
    with pytest.raises(UserError) as refused:
        second.take()
    assert str(refused.value) == (
        f"--out {tmp_path} is in use by another leanvla process (a run started twice?); wait for it to "
        "end, or choose another --out"
    )
    first.release()
    second.take()
    second.release()
    assert list(tmp_path.iterdir()) == []  # no lock file left behind


def test_trying_for_the_lock_says_whether_it_is_now_held(tmp_path):
    first, second = DirectoryLock(tmp_path, ""), DirectoryLock(tmp_path, "")
    assert first.try_take() and first.try_take()  # again: still held
    assert not second.try_take()
    first.release()
    assert second.try_take()
    second.release()


def test_asking_whether_another_holds_the_lock_takes_nothing(tmp_path):
    first, second = DirectoryLock(tmp_path, ""), DirectoryLock(tmp_path, "")
    assert not second.held_elsewhere()  # free
    first.take()  # and still free: asking kept nothing
    assert second.held_elsewhere() and not first.held_elsewhere()  # its holder's own is not another's
    first.release()
    assert not second.held_elsewhere()


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_training_into_a_run_another_process_holds_is_refused_and_leaves_it_alone(
    capsys, data, tmp_path, overwrite
):
    """Both ran, each writing its metrics and checkpoints among the other's; --overwrite deleted them."""
    run = tmp_path / "run"
    argv = ["train", "--data", str(data), "--out", str(run), "--model.size", "tiny", "--steps", "2"]
    assert main([*argv, "--batch-size", "2"]) == 0
    before = {path: path.stat().st_mtime_ns for path in run.rglob("*")}
    capsys.readouterr()
    other = DirectoryLock(run, "--out")
    other.take()
    try:
        assert main([*argv, "--batch-size", "2", "--steps", "4", *overwrite]) == 2
    finally:
        other.release()
    assert capsys.readouterr().err.strip().splitlines() == [
        f"leanvla train: error: --out {run} is in use by another leanvla process (a run started twice?); "
        "wait for it to end, or choose another --out"
    ]
    assert {path: path.stat().st_mtime_ns for path in run.rglob("*")} == before


def test_a_run_another_process_began_meanwhile_is_refused_once_the_directory_exists(
    capsys, data, tmp_path, monkeypatch
):
    """Two runs started together find no directory yet: the second to make it is refused."""
    from leanvla.train import loop

    run, other = tmp_path / "run", DirectoryLock(tmp_path / "run", "--out")

    def meanwhile(*args):
        resuming = prepare_run_dir(*args)
        run.mkdir()
        other.take()
        return resuming

    prepare_run_dir = loop.prepare_run_dir
    monkeypatch.setattr(loop, "prepare_run_dir", meanwhile)
    argv = ["train", "--data", str(data), "--out", str(run), "--model.size", "tiny", "--steps", "2"]
    try:
        assert main([*argv, "--batch-size", "2"]) == 2
    finally:
        other.release()
    assert "is in use by another leanvla process" in capsys.readouterr().err
    assert list(run.iterdir()) == []


def test_overwrite_empties_the_run_and_keeps_its_directory_and_so_its_lock(capsys, data, tmp_path):
    run = tmp_path / "run"
    argv = ["train", "--data", str(data), "--out", str(run), "--model.size", "tiny", "--batch-size", "2"]
    assert main([*argv, "--steps", "4", "--log-every", "1"]) == 0
    (run / "last" / "stray.txt").write_text("of the run replaced")
    directory = run.stat().st_ino
    assert main([*argv, "--steps", "2", "--log-every", "1", "--overwrite"]) == 0
    assert run.stat().st_ino == directory
    assert not (run / "last" / "stray.txt").exists()
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_curating_into_an_out_another_process_holds_is_refused_and_leaves_it_alone(
    capsys, tiny_run, tiny_dataset, tmp_path, overwrite
):
    """--overwrite emptied the store another curation was collecting into."""
    out = tmp_path / "curated"
    argv = ["curate", "--policy", str(tiny_run), "--data", str(tiny_dataset), "--out", str(out)]
    argv += ["--k-in", "4", "--k-out", "4", "--frames", "6", "--val-per-task", "1"]
    assert main(argv) == 0
    before = {path: path.stat().st_mtime_ns for path in out.rglob("*")}
    capsys.readouterr()
    other = DirectoryLock(out, "--out")
    other.take()
    try:
        assert main([*argv, *overwrite]) == 2
    finally:
        other.release()
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == (
        f"leanvla curate: error: --out {out} is in use by another leanvla process (a run started twice?); "
        "wait for it to end, or choose another --out"
    )
    assert {path: path.stat().st_mtime_ns for path in out.rglob("*")} == before


def test_a_curation_another_process_began_meanwhile_is_refused_before_it_writes(
    capsys, tiny_run, tiny_dataset, tmp_path, monkeypatch
):
    """Two curations started together find no --out yet: the second wrote its gradient store among
    the first's before it asked for the lock."""
    from leanvla.curate import run as curate_run

    out, other = tmp_path / "curated", DirectoryLock(tmp_path / "curated", "--out")

    class FirstGotThere(DirectoryLock):
        def take(self):
            other.take()
            super().take()

    monkeypatch.setattr(curate_run, "DirectoryLock", FirstGotThere)
    argv = ["curate", "--policy", str(tiny_run), "--data", str(tiny_dataset), "--out", str(out)]
    try:
        assert main([*argv, "--k-in", "4", "--k-out", "4", "--frames", "6", "--val-per-task", "1"]) == 2
    finally:
        other.release()
    assert "is in use by another leanvla process" in capsys.readouterr().err
    assert list(out.iterdir()) == []


def test_a_demo_into_an_out_another_process_holds_is_refused_before_any_stage(capsys, tmp_path):
    """A second demo in one --out ran each stage again beside the first: recording, then training
    refused with a lock on a directory the user never named, or evaluating what the first trained."""
    out, cache = tmp_path / "demo", tmp_path / "cache"
    out.mkdir()
    other = DirectoryLock(out, "--out")
    other.take()
    try:
        assert main(["demo", "--quick", "--out", str(out), "--cache", str(cache)]) == 2
    finally:
        other.release()
    assert capsys.readouterr().err.strip().splitlines() == [
        f"leanvla demo: error: --out {out} is in use by another leanvla process (a run started twice?); "
        "wait for it to end, or choose another --out"
    ]
    assert list(out.iterdir()) == [] and not cache.exists()
