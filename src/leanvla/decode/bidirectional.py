"""The baseline decoder: mask-predict over all action tokens (MaskGIT / Discrete Diffusion VLA).

Start fully masked; each of K iterations runs the expert over every action token (the prefix's
keys/values are cached, the action tokens are recomputed), predicts every masked token's bin,
and keeps the most confident ones so that cos(pi/2 * k / K) of the tokens stay masked after
iteration k. K forward passes per chunk, whatever the confidence.

`order` picks which masked tokens an iteration keeps: the most confident (MaskGIT, the default),
a random draw, or the earliest in the chunk (left to right); the benchmark uses the other two to
tell apart what the iterations cost from what confidence ordering costs.
"""

from __future__ import annotations

import math

import torch

from leanvla.decode.stats import DecodeStats
from leanvla.errors import require

ORDERS = ("confidence", "random", "left-to-right")


def check_iterations(iterations: int) -> None:
    require(iterations >= 1, f"--decode-iterations must be >= 1, got {iterations}")


@torch.no_grad()
def mask_predict(
    expert, prefix, iterations: int, order: str = "confidence", generator: torch.Generator | None = None
) -> tuple[torch.Tensor, DecodeStats]:
    """B x N action tokens decoded in `iterations` passes, greedy (each token its most likely bin);
    `generator` draws the random order."""
    check_iterations(iterations)
    require(order in ORDERS, f"unknown unmasking order '{order}' (one of {', '.join(ORDERS)})")
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
        priority = _priority(order, confidence, generator)
        priority = torch.where(masked, priority, torch.full_like(priority, -math.inf))
        # Commit every masked token but the `left` of lowest priority (at least one per iteration).
        ranking = priority.argsort(dim=1, descending=True)
        rank = torch.empty_like(ranking).scatter_(1, ranking, index.expand_as(ranking))
        commit = masked & (rank < (masked.sum(1, keepdim=True) - max(left, 0)))
        tokens = torch.where(commit, predicted, tokens)
        if not (tokens == expert.mask_id).any():
            break
    return tokens, DecodeStats(forward_passes=passes, tokens=n)


def _priority(order: str, confidence: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """B x N: which masked tokens an iteration commits first (highest first)."""
    if order == "confidence":
        return confidence
    if order == "random":
        return torch.rand(confidence.shape, generator=generator).to(confidence.device)
    position = torch.arange(confidence.shape[1], device=confidence.device, dtype=confidence.dtype)
    return -position.expand_as(confidence)  # left to right
