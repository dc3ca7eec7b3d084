"""The episodes a command reads: a selection file, or written out as LeRobot takes them
(`[0, 1, 2]`, `0,1,2`) or as ranges (`0:40,45`, END left out as in meta/info.json's splits)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from leanvla.data.episode_selection import is_inline, read_episode_selection, written_out
from leanvla.errors import UserError

EPISODES = 50


@pytest.mark.parametrize(
    ("written", "episodes"),
    [
        ("[0, 1, 2]", [0, 1, 2]),
        ("0,1,2", [0, 1, 2]),
        ("2", [2]),
        ("0:3", [0, 1, 2]),
        ("40:50", list(range(40, 50))),
        ("0:3,45, 47", [0, 1, 2, 45, 47]),
        ("[7, 3, 3]", [3, 7]),  # sorted, each once, as a selection file's are
        (" [ 0 : 2 ] ", [0, 1]),
    ],
)
def test_episodes_written_out_select_as_a_file_of_them_does(tmp_path, written, episodes):
    assert is_inline(written)
    assert read_episode_selection(Path(written), EPISODES) == episodes
    as_file = tmp_path / "selection.json"
    as_file.write_text(json.dumps(episodes))
    assert read_episode_selection(as_file, EPISODES) == episodes


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("[]", "--episodes [] selects no episodes"),
        (
            "0,,1",
            "--episodes 0,,1: '' is not an episode index or a range START:END; write episodes as 0:40,45",
        ),
        ("[0, 1", "'[0' is not an episode index"),
        ("1:2:3", "'1:2:3' is not an episode index"),
        ("5:5", "the range 5:5 holds no episode (END is left out: 5:6 is episode 5)"),
        ("9:3", "the range 9:3 holds no episode"),
        ("0:51", "the range 0:51 runs past the dataset's last episode, 49 (END is left out: 0:50 is every"),
        ("0:10000000000000", "runs past the dataset's last episode"),  # refused before it is a list
        ("3,50", "--episodes 3,50 names episodes [50] that the dataset (0..49) does not have"),
    ],
)
def test_episodes_written_out_wrongly_are_one_line_saying_what_is_wrong(written, message):
    with pytest.raises(UserError) as refused:
        read_episode_selection(Path(written), EPISODES)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_a_file_of_that_name_comes_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("12").write_text("[1, 2]")
    assert not is_inline("12") and read_episode_selection(Path("12"), EPISODES) == [1, 2]
    assert is_inline("13") and read_episode_selection(Path("13"), EPISODES) == [13]


def test_a_missing_file_says_both_ways_of_selecting(tmp_path):
    with pytest.raises(UserError) as refused:
        read_episode_selection(tmp_path / "sel.json", EPISODES, "--val-episodes")
    assert str(refused.value) == (
        f"--val-episodes {tmp_path / 'sel.json'}: no such file; give a JSON selection file (a list of "
        'episode indices, or {"episodes": [...]} as curate writes) or the episodes themselves (e.g. 0:40,45)'
    )


@pytest.mark.parametrize(
    "content, message",
    [
        ("[0, 99]", "names episodes \\[99\\]"),
        ('{"episodes": []}', "selects no episodes"),
        ("not json", "cannot read --episodes file"),
        ('{"x": 1}', "must hold a JSON list"),
        ("[0, true]", "must hold a JSON list of episode indices"),  # true was taken as episode 1
        ("[0, 1.0]", "must hold a JSON list of episode indices"),
    ],
)
def test_bad_selection_files(tmp_path, content, message):
    sel = tmp_path / "sel.json"
    sel.write_text(content)
    with pytest.raises(UserError, match=message):
        read_episode_selection(sel, EPISODES)


@pytest.mark.parametrize(
    ("episodes", "written"),
    [([0, 1, 2, 5, 7, 8], "0:3,5,7,8"), ([3], "3"), ([9, 8, 7, 7], "7:10"), ([], "")],
)
def test_episodes_are_written_out_with_runs_of_three_or_more_as_ranges(episodes, written):
    assert written_out(episodes) == written


def test_episodes_written_out_read_back_as_they_were():
    rng = np.random.default_rng(0)
    for _ in range(200):
        episodes = sorted(set(rng.integers(0, EPISODES, rng.integers(1, 30)).tolist()))
        assert read_episode_selection(Path(written_out(episodes)), EPISODES) == episodes
