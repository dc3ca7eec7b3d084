"""The baseline decoder: mask-predict over all action tokens (MaskGIT / Discrete Diffusion VLA).

Start fully masked; each of K iterations runs the expert over every action token (the prefix's
keys/values are cached, the action tokens are recomputed), predicts every masked token's bin,
and keeps the most confident ones so that cos(pi/2 * k / K) of the tokens stay masked after
iteration k. K forward passes per chunk, whatever the confidence.

`order` picks which masked tokens an iteration keeps: the most confident (MaskGIT, the default),
those first in a random permutation of the chunk, or the earliest in the chunk (left to right).
The random permutation ranks the tokens by the chunk's noise (one Gaussian per token, drawn from
the episode's seed as the flow head's is), so a seeded evaluation decodes reproducibly.
"""

from __future__ import annotations

import math

import torch

from leanvla.decode.stats import DecodeStats
from leanvla.errors import require

ORDERS = ("confidence", "random", "left-to-right")


def check_iterations(iterations: int) -> None:
    require(iterations >= 1, f"--decode-iterations must be >= 1, got {iterations}")


def check_order(order: str) -> None:
    require(order in ORDERS, f"--decode-order must be one of {', '.join(ORDERS)}, got '{order}'")


@torch.no_grad()
def mask_predict(
    expert, prefix, iterations: int, order: str = "confidence", noise: torch.Tensor | None = None
) -> tuple[torch.Tensor, DecodeStats]:
    """B x N action tokens decoded in `iterations` passes, greedy (each token its most likely bin).
    `noise` (B x N values, any shape) ranks the tokens for the random order; drawn here if None."""
    check_iterations(iterations)
    check_order(order)
    n = expert.n_tokens
    batch = prefix.valid.shape[0]
    index = torch.arange(n, device=prefix.valid.device)
    if order == "random":
        noise = torch.randn(batch, n, device=index.device) if noise is None else noise.reshape(batch, n)
    tokens = torch.full((batch, n), expert.mask_id, dtype=torch.long, device=index.device)
    passes = 0
    for k in range(1, iterations + 1):
        logits, _ = expert(prefix, tokens, index)
        passes += 1
        confidence, predicted = logits.softmax(-1).max(-1)
        masked = tokens == expert.mask_id
        left = min(int(n * math.cos(math.pi / 2 * k / iterations)), int(masked.sum(1).min()) - 1)
        priority = _priority(order, confidence, noise)
        priority = torch.where(masked, priority, torch.full_like(priority, -math.inf))
        # Commit every masked token but the `left` of lowest priority (at least one per iteration).
        ranking = priority.argsort(dim=1, descending=True)
        rank = torch.empty_like(ranking).scatter_(1, ranking, index.expand_as(ranking))
        commit = masked & (rank < (masked.sum(1, keepdim=True) - max(left, 0)))
        tokens = torch.where(commit, predicted, tokens)
        if not (tokens == expert.mask_id).any():
            break
    return tokens, DecodeStats(forward_passes=passes, tokens=n)


def _priority(order: str, confidence: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
    """B x N: which masked tokens an iteration commits first (highest first)."""
    if order == "confidence":
        return confidence
    if order == "random":
        return noise.to(confidence.dtype)
    position = torch.arange(confidence.shape[1], device=confidence.device, dtype=confidence.dtype)
    return -position.expand_as(confidence)  # left to right
