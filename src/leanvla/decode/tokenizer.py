"""Action tokenizer for discrete action heads: each action dimension cut into `vocab` bins.

Bins are uniform over a range, or quantile bins with equal mass under the training actions (finer
where actions are dense). A token decodes to its bin's midpoint, so for an action inside the range
the round-trip error is at most half that bin's width; actions outside the range are clipped to
the first or last bin. Everything works in the normalised action space the model predicts in.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from leanvla.errors import require

KINDS = ("uniform", "quantile")


@dataclass
class ActionTokenizer:
    edges: torch.Tensor  # A x (vocab + 1), increasing per dimension

    @property
    def vocab(self) -> int:
        return self.edges.shape[1] - 1

    @property
    def action_dim(self) -> int:
        return self.edges.shape[0]

    @classmethod
    def fit(cls, actions: torch.Tensor, vocab: int, kind: str = "uniform") -> ActionTokenizer:
        """Bins for actions (N x A): uniform over each dimension's [min, max], or equal-mass quantiles."""
        require(kind in KINDS, f"tokenizer kind must be one of {KINDS}, got '{kind}'")
        require(vocab >= 2, f"the action vocabulary needs at least 2 bins, got {vocab}")
        require(actions.dim() == 2 and actions.shape[0] > 0, "fit the tokenizer on an N x action_dim tensor")
        x = actions.double()
        if kind == "uniform":
            lo, hi = x.min(0).values, x.max(0).values
            steps = torch.linspace(0, 1, vocab + 1, dtype=torch.float64)
            edges = lo[:, None] + (hi - lo)[:, None] * steps[None]
        else:
            q = torch.linspace(0, 1, vocab + 1, dtype=torch.float64)
            edges = torch.quantile(x, q, dim=0).T.contiguous()
        # A constant dimension gets zero-width bins: it still encodes (to the last bin) and decodes exactly.
        edges = torch.cummax(edges, dim=1).values
        return cls(edges.float())

    def encode(self, actions: torch.Tensor) -> torch.Tensor:
        """(..., A) floats -> (..., A) tokens in [0, vocab)."""
        require(
            actions.shape[-1] == self.action_dim,
            f"actions have {actions.shape[-1]} dims, the tokenizer {self.action_dim}",
        )
        flat = actions.reshape(-1, self.action_dim).T.contiguous()  # A x N
        inner = self.edges[:, 1:-1].contiguous()  # A x (vocab - 1) boundaries between bins
        tokens = torch.searchsorted(inner, flat.to(inner.dtype), right=True)
        return tokens.T.reshape(actions.shape)

    def centers(self) -> torch.Tensor:
        """A x vocab bin midpoints."""
        return 0.5 * (self.edges[:, 1:] + self.edges[:, :-1])

    def widths(self) -> torch.Tensor:
        """A x vocab bin widths."""
        return self.edges[:, 1:] - self.edges[:, :-1]

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """(..., A) tokens -> (..., A) bin midpoints."""
        flat = tokens.reshape(-1, self.action_dim)
        values = self.centers().gather(1, flat.T.long()).T
        return values.reshape(tokens.shape)

    def round_trip_error(self, actions: torch.Tensor) -> dict:
        """How much tokenizing loses on these actions: per-dimension max and mean absolute error,
        the worst error relative to half the bin width, and the fraction outside the range."""
        flat = actions.reshape(-1, self.action_dim)
        tokens = self.encode(flat)
        err = (self.decode(tokens) - flat).abs()
        half = 0.5 * self.widths().gather(1, tokens.T).T
        outside = (flat < self.edges[:, 0]) | (flat > self.edges[:, -1])
        inside_ratio = torch.where(outside, torch.zeros_like(err), err / half.clamp_min(1e-12))
        return {
            "max_abs": err.max(0).values.tolist(),
            "mean_abs": err.mean(0).tolist(),
            "max_over_half_bin": float(inside_ratio.max()),
            "outside_range": float(outside.any(-1).float().mean()),
        }

    def to_dict(self) -> dict:
        return {"edges": self.edges.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> ActionTokenizer:
        return cls(torch.tensor(d["edges"], dtype=torch.float32))
