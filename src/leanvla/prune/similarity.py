"""Layer-to-layer similarity of a stack's representations, accumulated over minibatches.

A stack of L layers gives R = L + 1 representations h_0 (the stack's input) .. h_L (each layer's
output), every one tokens x d. Three measures between every pair (r, s), with tokens as samples:

  linear CKA (Kornblith et al. 2019)   ||Xc^T Yc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)
      biased: Xc is X centred over all tokens; unbiased: HSIC estimated with the U-statistic of
      Song et al. (2012) in place of the centred Frobenius products
  mean cosine (ShortGPT's block influence is 1 - this)   mean_t cos(h_r[t], h_s[t])
  angular distance (Gromov et al. 2024)                  mean_t arccos(cos(h_r[t], h_s[t])) / pi

Everything needed is a sum over tokens, so memory is bounded by R*d, not by the number of tokens:
    n, S_r = sum_t h_r[t], M = Z^T Z with Z = [h_0 .. h_L] (tokens x R*d), and for the unbiased
    estimator a_r[t] = ||h_r[t]||^2, W_rs = sum_t a_s[t] h_r[t], Q_rs = sum_t a_r[t] a_s[t].
Sums are float64. A slow reference from explicit n x n Gram matrices (`linear_cka_reference`) is
what the tests hold this to.
"""

from __future__ import annotations

import math

import torch


def linear_cka_reference(x: torch.Tensor, y: torch.Tensor, unbiased: bool = False) -> float:
    """CKA from explicit Gram matrices (n x n): the definition, for tests. x n x p, y n x q."""
    x, y = x.double(), y.double()
    k, l_ = x @ x.T, y @ y.T
    return _hsic_gram(k, l_, unbiased) / math.sqrt(_hsic_gram(k, k, unbiased) * _hsic_gram(l_, l_, unbiased))


def _hsic_gram(k: torch.Tensor, l_: torch.Tensor, unbiased: bool) -> float:
    n = k.shape[0]
    if not unbiased:
        h = torch.eye(n, dtype=k.dtype) - 1.0 / n
        return float(torch.trace(k @ h @ l_ @ h))
    k, l_ = k.clone().fill_diagonal_(0), l_.clone().fill_diagonal_(0)
    one = torch.ones(n, dtype=k.dtype)
    value = (
        torch.trace(k @ l_)
        + (one @ k @ one) * (one @ l_ @ one) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (one @ k @ l_ @ one)
    )
    return float(value / (n * (n - 3)))


class SimilarityAccumulator:
    """Running sums over tokens for all-pairs CKA, cosine and angular distance of R representations."""

    def __init__(self, num_reps: int, dim: int):
        self.r, self.d = num_reps, dim
        f64 = dict(dtype=torch.float64)
        self.n = 0
        self.sum = torch.zeros(num_reps, dim, **f64)  # S_r
        self.gram = torch.zeros(num_reps * dim, num_reps * dim, **f64)  # M = Z^T Z
        self.weighted = torch.zeros(num_reps, num_reps, dim, **f64)  # W_rs = sum_t a_s h_r
        self.sq_norms = torch.zeros(num_reps, num_reps, **f64)  # Q_rs = sum_t a_r a_s
        self.cos = torch.zeros(num_reps, num_reps, **f64)
        self.angle = torch.zeros(num_reps, num_reps, **f64)

    def update(self, reps: torch.Tensor) -> None:
        """reps: R x n x d, the representations of n tokens (padding already removed)."""
        if reps.shape[0] != self.r or reps.shape[2] != self.d:
            raise ValueError(f"expected {self.r} x n x {self.d} representations, got {list(reps.shape)}")
        h = reps.detach().to(torch.float64)
        n = h.shape[1]
        z = h.permute(1, 0, 2).reshape(n, self.r * self.d)  # n x R*d
        a = h.pow(2).sum(-1)  # R x n
        self.n += n
        self.sum += h.sum(1)
        self.gram += z.T @ z
        self.weighted += torch.einsum("rnd,sn->rsd", h, a)
        self.sq_norms += a @ a.T
        unit = h / h.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        cos = torch.einsum("rnd,snd->rsn", unit, unit).clamp(-1.0, 1.0)  # R x R x n
        self.cos += cos.sum(-1)
        self.angle += torch.arccos(cos).sum(-1) / math.pi

    def _block(self, r: int, s: int) -> torch.Tensor:
        d = self.d
        return self.gram[r * d : (r + 1) * d, s * d : (s + 1) * d]

    def _hsic(self, r: int, s: int, unbiased: bool) -> float:
        n, xy = self.n, self._block(r, s)
        sx, sy = self.sum[r], self.sum[s]
        if not unbiased:
            centred = xy - torch.outer(sx, sy) / n  # Xc^T Yc
            return float(centred.pow(2).sum())
        ab = self.sq_norms[r, s]  # sum_t a_t b_t
        trace = xy.pow(2).sum() - ab  # tr(K~ L~)
        k_sum = sx @ sx - self._sum_sq(r)  # 1^T K~ 1
        l_sum = sy @ sy - self._sum_sq(s)
        # 1^T K~ L~ 1 = Sx^T (X^T Y) Sy - Sx . sum_t b_t x_t - Sy . sum_t a_t y_t + sum_t a_t b_t
        cross = sx @ xy @ sy - sx @ self.weighted[r, s] - sy @ self.weighted[s, r] + ab
        value = trace + k_sum * l_sum / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * cross
        return float(value / (n * (n - 3)))

    def _sum_sq(self, r: int) -> torch.Tensor:
        """sum_t ||h_r[t]||^2 (the trace of the uncentred Gram block)."""
        return self._block(r, r).diagonal().sum()

    def cka(self, unbiased: bool = False) -> torch.Tensor:
        """R x R linear CKA matrix."""
        if self.n < (4 if unbiased else 2):
            raise ValueError(f"CKA needs at least {4 if unbiased else 2} tokens, got {self.n}")
        self_hsic = [self._hsic(r, r, unbiased) for r in range(self.r)]
        out = torch.ones(self.r, self.r, dtype=torch.float64)
        for r in range(self.r):
            for s in range(r + 1, self.r):
                denom = math.sqrt(max(self_hsic[r] * self_hsic[s], 0.0))
                value = self._hsic(r, s, unbiased) / denom if denom > 0 else 0.0
                out[r, s] = out[s, r] = value
        return out

    def mean_cosine(self) -> torch.Tensor:
        """R x R mean per-token cosine similarity."""
        return self.cos / max(self.n, 1)

    def angular_distance(self) -> torch.Tensor:
        """R x R mean per-token angular distance in [0, 1]."""
        return self.angle / max(self.n, 1)
