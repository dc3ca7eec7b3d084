"""The datasets a refusal of a directory that is not one names: the one holding it, or those below."""

from __future__ import annotations

import pytest

from leanvla.data import nearby_datasets as nearby
from leanvla.data.nearby_datasets import nearby_datasets
from leanvla.data.reader import LeRobotDataset
from leanvla.errors import UserError


def a_dataset(root):
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text("{}")
    (root / "data" / "chunk-000").mkdir(parents=True)
    return root


def test_a_directory_inside_a_dataset_names_the_dataset(tmp_path):
    dataset = a_dataset(tmp_path / "pick")
    assert nearby_datasets(dataset / "meta") == f"; it is inside the dataset {dataset}: pass that"
    assert (
        nearby_datasets(dataset / "data" / "chunk-000") == f"; it is inside the dataset {dataset}: pass that"
    )


def test_a_folder_of_datasets_names_the_first_three_in_name_order_and_counts_the_rest(tmp_path):
    """As LeRobot's home holds them, ORG/NAME, and beside them directories that hold none."""
    for org, name in [("lerobot", "e"), ("lerobot", "a"), ("lab", "c"), ("lab", "b"), ("lab", "d")]:
        a_dataset(tmp_path / org / name)
    (tmp_path / "notes").mkdir()
    a_dataset(tmp_path / ".cache" / "hidden")  # hidden directories are not looked into
    assert nearby_datasets(tmp_path) == (
        f"; datasets below it: {tmp_path / 'lab/b'}, {tmp_path / 'lab/c'}, {tmp_path / 'lab/d'} (and 2 more)"
    )
    assert (
        nearby_datasets(tmp_path / "lerobot")
        == f"; datasets below it: {tmp_path / 'lerobot/a'}, {tmp_path / 'lerobot/e'}"
    )
    assert nearby_datasets(tmp_path / "notes") == ""


def test_a_large_directory_is_looked_through_only_so_far(tmp_path, monkeypatch):
    for name in "abcdef":
        (tmp_path / name).mkdir()
    a_dataset(tmp_path / "f" / "late")
    assert nearby_datasets(tmp_path) == f"; datasets below it: {tmp_path / 'f/late'}"
    monkeypatch.setattr(nearby, "LOOKED_INTO", 6)  # the six at the first level, none below
    assert nearby_datasets(tmp_path) == ""


def test_the_readers_refusal_names_them(tmp_path):
    dataset = a_dataset(tmp_path / "lerobot" / "pick")
    with pytest.raises(UserError) as refused:
        LeRobotDataset(tmp_path)
    assert str(refused.value).endswith(f"meta/episodes/, data/); datasets below it: {dataset}")
