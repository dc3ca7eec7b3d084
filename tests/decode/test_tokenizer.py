"""The action tokenizer: round trips within half a bin, quantile bins of equal mass, clipping,
monotone tokens, serialisation, and bad vocabularies refused."""

from __future__ import annotations

import pytest
import torch

from leanvla.decode.tokenizer import ActionTokenizer
from leanvla.errors import UserError


def actions(n=4000, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.cat([torch.randn(n, 2, generator=g), torch.rand(n, 2, generator=g) * 4 - 2], dim=1)


def test_bins_are_closed_below_and_open_above():
    """Bin i holds [edge i, edge i + 1): a value on an inner edge is the first of the bin above."""
    tok = ActionTokenizer.fit(torch.tensor([[-1.0], [1.0]]), 4)  # edges -1, -0.5, 0, 0.5, 1
    torch.testing.assert_close(tok.edges[0], torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]).to(tok.edges))
    values = torch.tensor([[-1.0], [-0.5], [-0.25], [0.0], [0.5], [1.0]])
    assert tok.encode(values).flatten().tolist() == [0, 1, 1, 2, 3, 3]


@pytest.mark.parametrize("kind", ["uniform", "quantile"])
@pytest.mark.parametrize("vocab", [2, 16, 256])
def test_round_trip_within_half_a_bin(kind, vocab):
    x = actions()
    tok = ActionTokenizer.fit(x, vocab, kind)
    tokens = tok.encode(x)
    assert tokens.dtype == torch.long and tokens.min() >= 0 and tokens.max() < vocab
    half = 0.5 * tok.widths().gather(1, tokens.T).T
    assert ((tok.decode(tokens) - x).abs() <= half + 1e-5).all()
    report = tok.round_trip_error(x)
    assert report["max_over_half_bin"] <= 1 + 1e-4 and report["outside_range"] == 0.0


def test_finer_vocabulary_smaller_error():
    x = actions()
    errors = [max(ActionTokenizer.fit(x, v).round_trip_error(x)["max_abs"]) for v in (8, 32, 128)]
    assert errors[0] > errors[1] > errors[2]


def test_quantile_bins_hold_equal_mass():
    x = actions()
    tok = ActionTokenizer.fit(x, 8, "quantile")
    counts = torch.stack([torch.bincount(tok.encode(x)[:, d], minlength=8) for d in range(4)])
    assert (counts - len(x) / 8).abs().max() <= 2


def test_monotone_and_clipped():
    tok = ActionTokenizer.fit(actions(), 32)
    line = torch.linspace(-10, 10, 500)[:, None].expand(500, 4)
    tokens = tok.encode(line)
    assert (tokens[1:] >= tokens[:-1]).all()
    assert (tokens[0] == 0).all() and (tokens[-1] == 31).all()
    assert tok.round_trip_error(line)["outside_range"] > 0


def test_serialisation_round_trip_and_constant_dimension():
    x = actions()
    x[:, 3] = 0.5  # a constant dimension must still tokenize
    tok = ActionTokenizer.fit(x, 16)
    again = ActionTokenizer.from_dict(tok.to_dict())
    assert torch.equal(tok.encode(x), again.encode(x))
    assert torch.allclose(tok.decode(tok.encode(x))[:, 3], torch.full((len(x),), 0.5), atol=1e-6)


def test_bad_vocabulary_and_kind():
    with pytest.raises(UserError, match="at least 2 bins"):
        ActionTokenizer.fit(actions(), 1)
    with pytest.raises(UserError, match="kind must be one of"):
        ActionTokenizer.fit(actions(), 8, "log")
    with pytest.raises(UserError, match="fit the tokenizer on an N x action_dim tensor"):
        ActionTokenizer.fit(torch.zeros(0, 4), 8)
    tok = ActionTokenizer.fit(actions(), 8)
    with pytest.raises(UserError, match=f"actions have 3 dims, the tokenizer {tok.action_dim}"):
        tok.encode(torch.zeros(2, 3))
