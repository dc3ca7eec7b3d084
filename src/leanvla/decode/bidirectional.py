"""The baseline decoder: mask-predict over all action tokens (MaskGIT / Discrete Diffusion VLA).

Start fully masked; each of K iterations runs the expert over every action token (the prefix's
keys/values are cached, the action tokens are recomputed), predicts every masked token's bin,
and keeps the most confident ones so that cos(pi/2 * k / K) of the tokens stay masked after
iteration k. K forward passes per chunk, whatever the confidence.
"""

from __future__ import annotations

import math

import torch

from leanvla.decode.stats import DecodeStats
from leanvla.errors import require


def check_iterations(iterations: int) -> None:
    require(iterations >= 1, f"--decode-iterations must be >= 1, got {iterations}")


@torch.no_grad()
def mask_predict(expert, prefix, iterations: int) -> tuple[torch.Tensor, DecodeStats]:
    """B x N action tokens decoded in `iterations` passes, confidence-ordered, greedy."""
    check_iterations(iterations)
    n = expert.n_tokens
    batch = prefix.valid.shape[0]
    index = torch.arange(n, device=prefix.valid.device)
    tokens = torch.full((batch, n), expert.mask_id, dtype=torch.long, device=index.device)
    passes = 0
    for k in range(1, iterations + 1):
        logits, _ = expert(prefix, tokens, index)
        passes += 1
        confidence, predicted = logits.softmax(-1).max(-1)
        masked = tokens == expert.mask_id
        left = min(int(n * math.cos(math.pi / 2 * k / iterations)), int(masked.sum(1).min()) - 1)
        confidence = torch.where(masked, confidence, torch.full_like(confidence, -1.0))
        # Commit every masked token but the `left` least confident (at least one per iteration).
        order = confidence.argsort(dim=1, descending=True)
        rank = torch.empty_like(order).scatter_(1, order, index.expand_as(order))
        commit = masked & (rank < (masked.sum(1, keepdim=True) - max(left, 0)))
        tokens = torch.where(commit, predicted, tokens)
        if not (tokens == expert.mask_id).any():
            break
    return tokens, DecodeStats(forward_passes=passes, tokens=n)
