"""A dataset named by its LeRobot repo id is read from LeRobot's home, which is worked out as LeRobot
itself works it out; anything here of that name comes first."""

from __future__ import annotations

import json
import os
import subprocess
import typing
from dataclasses import fields
from pathlib import Path

import pytest

from leanvla import cli
from leanvla.data.lerobot_home import (
    DATASET,
    find_datasets,
    in_lerobot_home,
    is_repo_id,
    lerobot_home,
    where_looked,
)
from tests.helpers import lerobot_python

HOME_VARIABLES = ("HF_LEROBOT_HOME", "HF_HOME", "XDG_CACHE_HOME")


@pytest.fixture
def home(monkeypatch, tmp_path) -> Path:
    """LeRobot's home at tmp_path/lerobot_home, holding the fixture as lerobot/fixture; the working
    directory an empty one."""
    for name in HOME_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path / "lerobot_home"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path / "lerobot_home"


@pytest.fixture
def fixture_in_home(home, lerobot_fixture) -> Path:
    (home / "lerobot").mkdir(parents=True)
    (home / "lerobot" / "fixture").symlink_to(lerobot_fixture)
    return home / "lerobot" / "fixture"


# Each as {variable: value}; "HOME" is set to tmp_path/home in every case.
SETTINGS = {
    "none set": {},
    "XDG_CACHE_HOME": {"XDG_CACHE_HOME": "{tmp}/xdg"},
    "XDG_CACHE_HOME under ~": {"XDG_CACHE_HOME": "~/xdg"},
    "HF_HOME with a variable in it": {"HF_HOME": "$HOME/hf", "XDG_CACHE_HOME": "{tmp}/xdg"},
    "HF_HOME under ~": {"HF_HOME": "~/hf"},
    "HF_LEROBOT_HOME first": {"HF_LEROBOT_HOME": "{tmp}/lr", "HF_HOME": "{tmp}/hf"},
    "HF_LEROBOT_HOME under ~": {"HF_LEROBOT_HOME": "~/lr"},
}


@pytest.mark.parametrize("setting", SETTINGS)
def test_lerobot_home_is_where_lerobot_itself_keeps_datasets(monkeypatch, tmp_path, setting):
    python = lerobot_python()
    env = {k: v for k, v in os.environ.items() if k not in HOME_VARIABLES}
    env |= {"HOME": str(tmp_path / "home")}
    env |= {name: value.format(tmp=tmp_path) for name, value in SETTINGS[setting].items()}
    done = subprocess.run(
        [str(python), "-c", "from lerobot.utils.constants import HF_LEROBOT_HOME; print(HF_LEROBOT_HOME)"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    for name in ("HOME", *HOME_VARIABLES):
        monkeypatch.delenv(name, raising=False)
        if name in env:
            monkeypatch.setenv(name, env[name])
    assert str(lerobot_home()) == done.stdout.strip()


@pytest.mark.parametrize(
    ("given", "repo_id"),
    [
        ("lerobot/pusht", True),
        ("my-user/so101_test.v2", True),
        ("./lerobot/pusht", True),  # pathlib reads it as lerobot/pusht
        ("pusht", False),
        ("/data/lerobot/pusht", False),
        ("runs/a/b", False),
        ("../pusht", False),
        ("lerobot/..", False),
        ("~/pusht", False),
    ],
)
def test_a_repo_id_is_owner_slash_name(given, repo_id):
    assert is_repo_id(Path(given)) is repo_id


def test_a_repo_id_is_found_in_lerobots_home_and_a_directory_here_comes_first(fixture_in_home):
    assert in_lerobot_home(Path("lerobot/fixture")) == fixture_in_home
    assert in_lerobot_home(Path("lerobot/other")) is None
    assert in_lerobot_home(fixture_in_home) is None  # a path, not a repo id
    Path("lerobot/fixture").mkdir(parents=True)
    assert in_lerobot_home(Path("lerobot/fixture")) is None


def run(capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_info_of_a_repo_id_reads_lerobots_home_and_says_so(capsys, fixture_in_home):
    code, out, err = run(capsys, "info", "lerobot/fixture")
    assert code == 0 and json.loads(out)["root"] == str(fixture_in_home)
    assert err == f"leanvla info: reading lerobot/fixture from LeRobot's home: {fixture_in_home}\n"


def test_a_repo_id_found_nowhere_names_where_it_was_looked_for(capsys, home):
    code, _, err = run(capsys, "info", "lerobot/nope")
    assert code == 2
    assert err == (
        "leanvla info: error: dataset directory lerobot/nope does not exist here, nor in LeRobot's "
        f"home ({home}/lerobot/nope; $HF_LEROBOT_HOME sets it); record one with `leanvla data "
        "metaworld --out lerobot/nope` or pass the path of a LeRobotDataset\n"
    )
    assert where_looked(Path("nope")) == where_looked(home / "lerobot/nope") == ""


def test_a_directory_of_the_home_missing_its_files_is_refused_for_what_it_lacks(capsys, home):
    (home / "lerobot" / "half").mkdir(parents=True)  # a download cut short
    code, _, err = run(capsys, "info", "lerobot/half")
    assert code == 2
    assert f"{home / 'lerobot/half/meta/info.json'} is missing" in err.splitlines()[-1]


def test_training_reads_it_there_and_only_the_first_process_says_so(capsys, monkeypatch, fixture_in_home):
    seen = []
    monkeypatch.setattr(cli, "run_train", seen.append)
    assert run(capsys, "train", "--data", "lerobot/fixture", "--out", "run")[0] == 0
    assert (seen[0].data, seen[0].out) == (fixture_in_home, Path("run"))
    monkeypatch.setenv("RANK", "1")  # torchrun's second process: one line from the first is enough
    code, _, err = run(capsys, "train", "--data", "lerobot/fixture", "--out", "run")
    assert (code, err, seen[1].data) == (0, "", fixture_in_home)


def test_every_option_naming_a_dataset_to_read_takes_a_repo_id():
    marked = set()
    for words, (config_cls, _, _) in cli._commands().items():
        hints = typing.get_type_hints(config_cls, include_extras=True)
        for field in fields(config_cls):
            if _marked(hints[field.name]):
                marked.add((" ".join(words), field.name))
    assert marked == {
        ("data convert", "source"),
        ("data stats", "root"),
        ("info", "root"),
        ("train", "data"),
        ("probe", "data"),
        ("curate", "data"),
        ("curate", "val_data"),
        ("prune", "data"),
        ("export", "data"),
    }


def _marked(hint) -> bool:
    return DATASET in getattr(hint, "__metadata__", ()) or any(map(_marked, typing.get_args(hint)))


def test_an_optional_dataset_option_is_read_there_too_and_left_unset_stays_unset(fixture_in_home):
    from leanvla.curate.run import CurateConfig

    given = Path("lerobot/fixture")
    cfg = CurateConfig(policy=given, data=given, out=Path("o"), val_data=given)
    assert find_datasets(cfg) == [(given, fixture_in_home)] * 2
    assert (cfg.policy, cfg.data, cfg.val_data) == (given, fixture_in_home, fixture_in_home)
    cfg = CurateConfig(policy=given, data=given, out=Path("o"))
    assert find_datasets(cfg) == [(given, fixture_in_home)]
    assert (cfg.policy, cfg.data, cfg.val_data) == (
        given,
        fixture_in_home,
        None,
    )  # a checkpoint: not looked for
