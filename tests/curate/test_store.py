"""The gradient store: rows round-trip through the file, a reopened store resumes, settings guard it."""

from __future__ import annotations

import pytest
import torch

from leanvla.curate.store import GradientStore, Row
from leanvla.errors import UserError

ROWS = [Row(0, 0, "train"), Row(1, 1, "train"), Row(2, 0, "val"), Row(5, 1, "val")]


def test_rows_round_trip_and_collection_resumes(tmp_path):
    store = GradientStore(tmp_path / "g", ROWS, 3, {"k": 1})
    assert store.pending() == [0, 1, 2, 3] and store.pending(1, 2) == [1, 3]
    store.write(1, torch.tensor([1.0, 2.0, 3.0]))
    store.write(2, torch.tensor([4.0, 5.0, 6.0]))
    del store
    again = GradientStore(tmp_path / "g", ROWS, 3, {"k": 1})
    assert again.pending() == [0, 3] and not again.complete
    again.write(0, torch.zeros(3))
    again.write(3, torch.ones(3))
    train, rows = GradientStore.open(tmp_path / "g").matrix("train")
    assert rows == ROWS[:2] and torch.equal(train, torch.tensor([[0.0, 0, 0], [1, 2, 3]]))
    val, _ = again.matrix("val")
    assert torch.equal(val, torch.tensor([[4.0, 5, 6], [1, 1, 1]]))


@pytest.mark.parametrize(
    "rows, dim, settings, named",
    [
        (ROWS, 3, {"k": 1, "seed": 2}, "seed=0, not 2"),
        (
            ROWS[:3],
            3,
            {"k": 1, "seed": 0},
            "other demonstrations (another --data, --episodes, --val-data or --val-per-task)",
        ),
        (ROWS, 4, {"k": 1, "seed": 0}, "P=3, not 4 (the policy at --policy has changed)"),
        (
            ROWS,
            3,
            {"k": 1, "seed": 0, "policy_files": "b", "data_files": "d"},
            "--policy as it was then: its files have changed since (trained again?)",
        ),
        (
            ROWS,
            3,
            {"k": 1, "seed": 0, "policy_files": "a", "data_files": "e"},
            "--data as it was then: its files have changed since (recorded or edited again?)",
        ),
        (
            ROWS,
            3,
            {"k": 1, "seed": 0, "policy_files": "a", "data_files": "d", "val_data_files": "v"},
            "--val-data as it was then: its files have changed since (recorded or edited again?)",
        ),
        (  # a setting, the rows and P are named first: the files then differ too
            ROWS[:3],
            3,
            {"k": 1, "seed": 0, "policy_files": "b", "data_files": "e"},
            "other demonstrations (another --data, --episodes, --val-data or --val-per-task)",
        ),
    ],
)
def test_a_store_made_otherwise_is_not_reused_and_what_differs_is_named(tmp_path, rows, dim, settings, named):
    """It said "other settings or demonstrations", leaving the user to guess which of eight."""
    files = {"policy_files": "a", "data_files": "d", "val_data_files": "w"}
    made = {"k": 1, "seed": 0, **{key: value for key, value in files.items() if key in settings}}
    GradientStore(tmp_path / "g", ROWS, 3, made)
    with pytest.raises(UserError) as refused:
        GradientStore(tmp_path / "g", rows, dim, settings)
    assert str(refused.value) == (
        f"{tmp_path / 'g'} holds gradients collected with {named}; pass --overwrite to collect them again, "
        "or choose another --out"
    )


def test_a_store_with_no_record_of_its_files_says_so(tmp_path):
    GradientStore(tmp_path / "g", ROWS, 3, {"k": 1})  # as an earlier leanvla wrote it
    with pytest.raises(UserError, match=r"collected with no record of the files they came from \(an earlier"):
        GradientStore(tmp_path / "g", ROWS, 3, {"k": 1, "policy_files": "a", "data_files": "d"})


def test_a_damaged_index_is_one_line_saying_how_to_start_again(tmp_path):
    GradientStore(tmp_path / "g", ROWS, 3, {"k": 1})
    (tmp_path / "g" / "index.json").write_text('{"dim": 3, ')
    for reopen in (
        lambda: GradientStore(tmp_path / "g", ROWS, 3, {"k": 1}),
        lambda: GradientStore.open(tmp_path / "g"),
    ):
        with pytest.raises(UserError) as damaged:
            reopen()
        assert str(damaged.value).startswith(f"cannot read {tmp_path / 'g' / 'index.json'}: ")
        assert str(damaged.value).endswith(
            "; delete the store, or pass --overwrite, to collect the gradients again"
        )
