"""What a refusal of a directory that is not a dataset (or a checkpoint) names near it: the one
holding it, or those below it."""

from __future__ import annotations

import pytest

from leanvla import nearby as module
from leanvla.data.reader import LeRobotDataset
from leanvla.errors import UserError
from leanvla.models.checkpoint import resolve_checkpoint
from leanvla.nearby import nearby

INFO = "meta/info.json"


def a_dataset(root):
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text("{}")
    (root / "data" / "chunk-000").mkdir(parents=True)
    return root


def test_a_directory_inside_a_dataset_names_the_dataset(tmp_path):
    dataset = a_dataset(tmp_path / "pick")
    said = f"; it is inside the dataset {dataset}: pass that"
    assert nearby(dataset / "meta", INFO, "dataset") == said
    assert nearby(dataset / "data" / "chunk-000", INFO, "dataset") == said


def test_a_folder_of_datasets_names_the_first_three_in_name_order_and_counts_the_rest(tmp_path):
    """As LeRobot's home holds them, ORG/NAME, and beside them directories that hold none."""
    for org, name in [("lerobot", "e"), ("lerobot", "a"), ("lab", "c"), ("lab", "b"), ("lab", "d")]:
        a_dataset(tmp_path / org / name)
    (tmp_path / "notes").mkdir()
    a_dataset(tmp_path / ".cache" / "hidden")  # hidden directories are not looked into
    assert nearby(tmp_path, INFO, "dataset") == (
        f"; datasets below it: {tmp_path / 'lab/b'}, {tmp_path / 'lab/c'}, {tmp_path / 'lab/d'} (and 2 more)"
    )
    assert nearby(tmp_path / "lerobot", INFO, "dataset") == (
        f"; datasets below it: {tmp_path / 'lerobot/a'}, {tmp_path / 'lerobot/e'}"
    )
    assert nearby(tmp_path / "notes", INFO, "dataset") == ""


def test_a_large_directory_is_looked_through_only_so_far(tmp_path, monkeypatch):
    for name in "abcdef":
        (tmp_path / name).mkdir()
    a_dataset(tmp_path / "f" / "late")
    assert nearby(tmp_path, INFO, "dataset") == f"; datasets below it: {tmp_path / 'f/late'}"
    monkeypatch.setattr(module, "LOOKED_INTO", 6)  # the six at the first level, none below
    assert nearby(tmp_path, INFO, "dataset") == ""


def test_the_readers_refusal_names_them(tmp_path):
    dataset = a_dataset(tmp_path / "lerobot" / "pick")
    with pytest.raises(UserError) as refused:
        LeRobotDataset(tmp_path)
    assert str(refused.value).endswith(f"meta/episodes/, data/); datasets below it: {dataset}")


def test_a_checkpoints_refusal_names_those_of_a_folder_of_runs_or_the_one_holding_a_file(tmp_path):
    """`--policy runs` for `--policy runs/base`, or `--policy runs/base/policy/config.json`."""
    for run in ("base", "sft"):
        (tmp_path / run / "policy").mkdir(parents=True)
        for name in ("config.json", "model.safetensors"):
            (tmp_path / run / "policy" / name).write_text("")
    with pytest.raises(UserError) as refused:
        resolve_checkpoint(tmp_path)
    assert str(refused.value).endswith(
        f"subdirectory); checkpoints below it: {tmp_path / 'base/policy'}, {tmp_path / 'sft/policy'}"
    )
    with pytest.raises(UserError) as refused:
        resolve_checkpoint(tmp_path / "base" / "policy" / "config.json")
    assert str(refused.value).endswith(f"; it is inside the checkpoint {tmp_path / 'base/policy'}: pass that")
