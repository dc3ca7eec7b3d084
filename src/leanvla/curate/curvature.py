"""Damped inverse curvature (F + lambda I)^-1 with F = mean(phi phi^T) over the training demos.

Two solvers with one interface, `solve(G)` for a P x K right-hand side:

- `ExactInverse`: Cholesky of F (P x P) or, with fewer demos than dims, of the N x N kernel:
  O(N P min(N, P) + min(N, P)^3).
- `RandomTruncated` (ATHENA's RTA): a randomised sketch of F's top-r eigenspace, computed from
  phi without forming F (O(N P r)), applied with Woodbury:
      (U S U^T + lambda I)^-1 = (1/lambda) (I - U diag(s / (s + lambda)) U^T).

lambda = damping x the mean eigenvalue of F (trace / P), so one damping value means the same at
every model size and projection width.
"""

from __future__ import annotations

import math

import torch

from leanvla.errors import require


def check_damping(damping: float) -> None:
    """lambda, a multiple of F's mean eigenvalue, must be positive and finite: an infinite one made
    every score 0 and the selection arbitrary, without a word."""
    require(0 < damping < math.inf, f"--damping must be finite and > 0, got {damping}")


def mean_eigenvalue(phi: torch.Tensor) -> float:
    """trace(F) / P with F = phi^T phi / N, without forming F."""
    n, p = phi.shape
    return float(phi.double().pow(2).sum() / (n * p))


class ExactInverse:
    """Exact solves, in whichever space is smaller: with N >= P, Cholesky of the P x P damped F;
    with N < P, F has rank N and Woodbury turns the solve into an N x N one:
        (Phi^T Phi / N + lambda I)^-1 = (1/lambda) (I - Phi^T (N lambda I + Phi Phi^T)^-1 Phi)."""

    def __init__(self, phi: torch.Tensor, damping: float):
        check_damping(damping)
        phi = phi.double()
        n, p = phi.shape
        self.damping = damping * mean_eigenvalue(phi)
        self.phi = phi if n < p else None
        if self.phi is not None:
            kernel = phi @ phi.T
            kernel.diagonal().add_(n * self.damping)
            self.factor = torch.linalg.cholesky(kernel)
        else:
            fisher = phi.T @ phi / n
            fisher.diagonal().add_(self.damping)
            self.factor = torch.linalg.cholesky(fisher)

    def solve(self, rhs: torch.Tensor) -> torch.Tensor:
        rhs = rhs.double()
        if self.phi is None:
            return torch.cholesky_solve(rhs, self.factor)
        inner = torch.cholesky_solve(self.phi @ rhs, self.factor)
        return (rhs - self.phi.T @ inner) / self.damping


class RandomTruncated:
    def __init__(
        self,
        phi: torch.Tensor,
        rank: int,
        damping: float,
        seed: int = 0,
        oversample: int = 10,
        power_iterations: int = 2,
    ):
        check_damping(damping)
        n, p = phi.shape
        require(1 <= rank <= min(n, p), f"--rank must be in [1, min(N, P)] = [1, {min(n, p)}], got {rank}")
        phi = phi.double()
        self.damping = damping * mean_eigenvalue(phi)
        # Randomised range finder for F = phi^T phi / N: every product goes through phi (N x P).
        width = min(rank + oversample, p)
        generator = torch.Generator().manual_seed(seed)
        sketch = torch.randn(p, width, generator=generator, dtype=torch.float64)
        basis = torch.linalg.qr(phi.T @ (phi @ sketch))[0]
        for _ in range(power_iterations):  # sharpen the spectrum's top end
            basis = torch.linalg.qr(phi.T @ (phi @ basis))[0]
        projected = phi @ basis  # N x width
        small = projected.T @ projected / n  # Q^T F Q
        values, vectors = torch.linalg.eigh(small)
        top = values.argsort(descending=True)[:rank]
        self.values = values[top].clamp(min=0)
        self.vectors = basis @ vectors[:, top]  # P x r, orthonormal

    def solve(self, rhs: torch.Tensor) -> torch.Tensor:
        rhs = rhs.double()
        shrink = self.values / (self.values + self.damping)
        return (rhs - self.vectors @ (shrink[:, None] * (self.vectors.T @ rhs))) / self.damping
