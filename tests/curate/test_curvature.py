"""The exact and the rank-r (RTA) damped inverses against explicit dense algebra."""

from __future__ import annotations

import math

import pytest
import torch

from leanvla.curate.curvature import ExactInverse, RandomTruncated, mean_eigenvalue
from leanvla.errors import UserError


def low_rank_phi(n=60, p=24, rank=5, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, rank, generator=g) @ torch.randn(rank, p, generator=g) * 3 + 0.01 * torch.randn(
        n, p, generator=g
    )


def damped(phi: torch.Tensor, damping: float) -> torch.Tensor:
    phi = phi.double()
    fisher = phi.T @ phi / phi.shape[0]
    return fisher + damping * fisher.trace() / fisher.shape[0] * torch.eye(
        fisher.shape[0], dtype=torch.float64
    )


@pytest.mark.parametrize("n", [60, 10])  # more demos than dims (P x P Cholesky) and fewer (Woodbury)
def test_exact_inverse_solves_the_damped_system(n):
    phi = low_rank_phi(n=n)
    rhs = torch.randn(24, 3, dtype=torch.float64)
    solver = ExactInverse(phi, damping=0.1)
    torch.testing.assert_close(solver.solve(rhs), torch.linalg.solve(damped(phi, 0.1), rhs))
    assert solver.damping == pytest.approx(0.1 * mean_eigenvalue(phi))


def test_full_rank_rta_is_exact():
    phi = low_rank_phi()
    rhs = torch.randn(24, 3, dtype=torch.float64)
    full = RandomTruncated(phi, rank=24, damping=0.1)
    torch.testing.assert_close(full.solve(rhs), torch.linalg.solve(damped(phi, 0.1), rhs))


def test_rta_is_woodbury_of_its_truncated_spectrum():
    phi = low_rank_phi()
    rta = RandomTruncated(phi, rank=3, damping=0.2)
    truncated = rta.vectors @ torch.diag(rta.values) @ rta.vectors.T
    explicit = torch.linalg.inv(truncated + rta.damping * torch.eye(24, dtype=torch.float64))
    rhs = torch.randn(24, 2, dtype=torch.float64)
    torch.testing.assert_close(rta.solve(rhs), explicit @ rhs)
    # The sketch finds the top of the spectrum: the same eigenvalues as the dense eigendecomposition.
    fisher = phi.double().T @ phi.double() / phi.shape[0]
    top = torch.linalg.eigvalsh(fisher).flip(0)[:3]
    torch.testing.assert_close(rta.values, top, rtol=1e-6, atol=1e-8)


def test_rta_at_the_data_rank_scores_like_the_exact_inverse():
    phi = low_rank_phi()
    queries = phi[:5].double().mean(0, keepdim=True).T
    exact = phi.double() @ ExactInverse(phi, 0.1).solve(queries)
    rta = phi.double() @ RandomTruncated(phi, rank=6, damping=0.1).solve(queries)
    assert torch.corrcoef(torch.cat([exact.T, rta.T]))[0, 1] > 0.99


def slowly_decaying_phi(n=200, p=80, seed=0) -> torch.Tensor:
    """Singular values 1 / sqrt(k): no gap after the top few, where a plain sketch is least sure."""
    g = torch.Generator().manual_seed(seed)
    u = torch.linalg.qr(torch.randn(n, p, generator=g, dtype=torch.float64))[0]
    v = torch.linalg.qr(torch.randn(p, p, generator=g, dtype=torch.float64))[0]
    return u @ torch.diag(torch.arange(1, p + 1, dtype=torch.float64) ** -0.5) @ v.T


def test_power_iterations_find_the_top_of_a_flat_spectrum():
    phi = slowly_decaying_phi()
    top = torch.linalg.eigvalsh(phi.T @ phi / phi.shape[0]).flip(0)[:5]

    def worst_error(**kw) -> float:
        return float(((RandomTruncated(phi, rank=5, damping=0.1, **kw).values - top).abs() / top).max())

    assert worst_error() < 0.005  # the default, two power iterations
    assert worst_error(power_iterations=0) > 0.05  # the sketch alone misses by more than a tenth


def test_bad_rank_and_damping_are_user_errors():
    phi = low_rank_phi()
    with pytest.raises(UserError, match="--rank must be in"):
        RandomTruncated(phi, rank=25, damping=0.1)
    with pytest.raises(UserError, match="--damping must be finite and > 0"):
        ExactInverse(phi, damping=0.0)
    with pytest.raises(UserError, match="--damping must be finite and > 0, got -0.1"):
        RandomTruncated(phi, rank=2, damping=-0.1)
    for damping in (math.inf, math.nan):  # infinite, every score was 0 and the selection arbitrary
        with pytest.raises(UserError, match=f"--damping must be finite and > 0, got {damping}"):
            ExactInverse(phi, damping=damping)
