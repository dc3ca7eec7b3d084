"""Selection rules on hand-built similarity matrices, where the right answer is known."""

from __future__ import annotations

import pytest
import torch

from leanvla.errors import UserError
from leanvla.prune.select import (
    check_removable,
    contiguous_removal,
    drop_last,
    greedy_removal,
    layers_to_remove,
)


def chain(adjacent: list[float]) -> torch.Tensor:
    """Similarity of representations h_0..h_L where sim(h_i, h_j) = product of the steps between."""
    r = len(adjacent) + 1
    m = torch.ones(r, r, dtype=torch.float64)
    for i in range(r):
        for j in range(i + 1, r):
            m[i, j] = m[j, i] = float(torch.tensor(adjacent[i:j]).prod())
    return m


def test_greedy_takes_the_most_redundant_inner_layers():
    # layer 1 (first) and 6 (last) are the most redundant but protected
    sim = chain([0.99, 0.5, 0.95, 0.9, 0.6, 0.99])
    assert greedy_removal(sim, count=2) == [2, 3]  # 0-based: layers 3 then 4


def test_greedy_rescores_neighbours_after_a_removal():
    # after removing layer 3 (0.95), layer 4's input becomes h_2: sim(h_2, h_4) = 0.95 * 0.9
    sim = chain([0.5, 0.5, 0.95, 0.9, 0.86, 0.5])
    assert greedy_removal(sim, count=2) == [2, 4]  # 0.86 beats 0.855


def test_threshold_stops_when_nothing_is_redundant_enough():
    sim = chain([0.5, 0.97, 0.96, 0.5, 0.5])
    assert greedy_removal(sim, threshold=0.95) == [1]  # after it, layer 3 reads h_1: 0.97*0.96 < 0.95


def test_contiguous_block_between_first_and_last():
    sim = chain([0.99, 0.6, 0.95, 0.97, 0.6, 0.99])
    assert contiguous_removal(sim, 2) == [2, 3]


def test_drop_last_and_keep_ratio():
    assert drop_last(8, 3) == [5, 6, 7]
    assert layers_to_remove(8, keep=0.5) == 4
    assert layers_to_remove(8, keep=0.75) == 2
    assert layers_to_remove(4, keep=1.0) == 0
    assert layers_to_remove(5, keep=0.5) == 2  # keeps ceil(2.5) = 3: never fewer than asked
    assert layers_to_remove(25, keep=0.28) == 18  # 0.28 x 25 is 7.000000000000001 in floats: keeps 7


@pytest.mark.parametrize("keep", [0.0, 1.5, -1])
def test_keep_outside_range_is_refused(keep):
    with pytest.raises(UserError, match="--keep must be in"):
        layers_to_remove(4, keep=keep)


def test_removing_every_layer_is_refused():
    with pytest.raises(UserError, match="would leave 1.*keep at least 2"):
        check_removable("backbone", 4, 3, "cka")
    with pytest.raises(UserError, match="would leave 0"):
        check_removable("backbone", 4, 4, "drop-last")


def test_no_keep_no_threshold_and_a_block_that_cannot_fit_are_refused():
    with pytest.raises(UserError, match="give --keep \\(fraction of layers to keep\\) or --threshold"):
        layers_to_remove(4)
    # 4 layers, 3 to go in one block that spares the first and the last: none fits
    with pytest.raises(UserError, match="no block of 3 layers fits between the first and last of 4"):
        contiguous_removal(chain([0.9, 0.9, 0.9, 0.9]), 3)
