"""Accumulated all-pairs similarity against the explicit-Gram definition, and CKA's invariances."""

from __future__ import annotations

import math

import pytest
import torch

from leanvla.prune.similarity import SimilarityAccumulator, linear_cka_reference


def reps(r=4, n=40, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = [torch.randn(n, d, generator=g) + 2.0]  # a non-zero mean, so centring matters
    for _ in range(r - 1):
        h.append(h[-1] @ torch.randn(d, d, generator=g) * 0.5 + torch.randn(n, d, generator=g))
    return torch.stack(h)


@pytest.mark.parametrize("unbiased", [False, True])
def test_minibatch_accumulation_equals_reference(unbiased):
    h = reps()
    acc = SimilarityAccumulator(4, 6)
    for chunk in h.split([7, 13, 20], dim=1):  # uneven minibatches
        acc.update(chunk)
    cka = acc.cka(unbiased)
    for r in range(4):
        for s in range(4):
            assert cka[r, s].item() == pytest.approx(linear_cka_reference(h[r], h[s], unbiased), abs=1e-10)


def test_cosine_and_angle_equal_per_token_means():
    h = reps(r=3)
    acc = SimilarityAccumulator(3, 6)
    acc.update(h)
    cos = torch.nn.functional.cosine_similarity(h[0].double(), h[2].double(), dim=-1)
    assert acc.mean_cosine()[0, 2].item() == pytest.approx(cos.mean().item(), abs=1e-12)
    assert acc.angular_distance()[0, 2].item() == pytest.approx(
        (cos.acos() / math.pi).mean().item(), abs=1e-10
    )
    assert torch.allclose(acc.mean_cosine().diagonal(), torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize("unbiased", [False, True])
def test_cka_of_a_representation_with_itself_is_one(unbiased):
    h = reps(r=2)
    acc = SimilarityAccumulator(2, 6)
    acc.update(torch.stack([h[0], h[0]]))
    assert acc.cka(unbiased)[0, 1].item() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("unbiased", [False, True])
def test_cka_invariant_to_orthogonal_maps_isotropic_scale_and_shift(unbiased):
    h = reps(r=2)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64))
    x, y = h[0].double(), h[1].double()
    base = linear_cka_reference(x, y, unbiased)
    assert linear_cka_reference(x @ q, y, unbiased) == pytest.approx(base, abs=1e-10)
    assert linear_cka_reference(x * 7.5, y * 0.01, unbiased) == pytest.approx(base, abs=1e-10)
    acc = SimilarityAccumulator(2, 6)
    acc.update(torch.stack([x @ q * 3.0 + 5.0, y]))  # the accumulator, too
    assert acc.cka(unbiased)[0, 1].item() == pytest.approx(base, abs=1e-9)


def test_cka_is_not_invariant_to_anisotropic_scaling():
    # ...which is what makes it a representation similarity rather than a rank test
    h = reps(r=2)
    x, y = h[0].double(), h[1].double()
    stretched = x * torch.tensor([10.0, 1, 1, 1, 1, 0.1], dtype=torch.float64)
    assert abs(linear_cka_reference(stretched, y) - linear_cka_reference(x, y)) > 1e-3


def test_wrong_shape_is_refused():
    acc = SimilarityAccumulator(3, 6)
    with pytest.raises(ValueError, match="expected 3 x n x 6"):
        acc.update(torch.zeros(2, 5, 6))
