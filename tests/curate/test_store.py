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


def test_other_settings_do_not_reuse_a_store(tmp_path):
    GradientStore(tmp_path / "g", ROWS, 3, {"k": 1})
    with pytest.raises(UserError, match="other settings"):
        GradientStore(tmp_path / "g", ROWS, 3, {"k": 2})


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
