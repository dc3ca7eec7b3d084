"""Fast-dVLA decoding: block-causal, KV-cached, pipelined over blocks of action tokens.

A block-causal head lets a token see the prefix, earlier blocks and its own block, so a block
whose tokens are all committed never changes again: its keys/values are computed once more (with
its final tokens), cached, and later passes only run the unfinished blocks. Blocks decode in a
pipeline: block j + 1 starts once `activation` of block j's tokens are committed. Each pass commits,
in every active block, the masked tokens whose confidence reaches `threshold`, and at least the
most confident one, so every pass makes progress.

`use_cache=False` recomputes every started block each pass (the same decisions, for the exactness
test and for measuring what the cache saves).
"""

from __future__ import annotations

import torch

from leanvla.decode.stats import DecodeStats
from leanvla.errors import require


def check_thresholds(threshold: float, activation: float) -> None:
    require(0.0 < threshold <= 1.0, f"--commit-threshold must be in (0, 1], got {threshold}")
    require(0.0 < activation <= 1.0, f"--activation-threshold must be in (0, 1], got {activation}")


@torch.no_grad()
def fast_decode(
    expert, prefix, threshold: float = 0.9, activation: float = 0.5, use_cache: bool = True
) -> tuple[torch.Tensor, DecodeStats]:
    """B x N action tokens; a block counts as finished (or activated) when it is for every sample."""
    check_thresholds(threshold, activation)
    n, size, n_blocks = expert.n_tokens, expert.block, expert.n_blocks
    batch, device = prefix.valid.shape[0], prefix.valid.device
    tokens = torch.full((batch, n), expert.mask_id, dtype=torch.long, device=device)
    cache: list | None = None
    cached = 0  # blocks [0, cached) are in the cache
    started = 1  # blocks [0, started) are decoding or done
    passes = 0
    while True:
        committed = tokens != expert.mask_id
        finished = committed.view(batch, n_blocks, size).all(-1).all(0)  # before this pass
        if bool(finished.all()):
            break
        first = cached if use_cache else 0
        index = torch.arange(first * size, started * size, device=device)
        cached_index = torch.arange(cached * size if use_cache else 0, device=device)
        logits, kv = expert(prefix, tokens[:, index], index, cache if use_cache else None, cached_index)
        passes += 1
        if use_cache:
            # Blocks finished before this pass went in with their final tokens: cache them, in order.
            ready = cached
            while ready < started and bool(finished[ready]):
                ready += 1
            if ready > cached:
                cut = (ready - cached) * size
                new = [(k[:, :, :cut], v[:, :, :cut]) for k, v in kv]
                cache = new if cache is None else [_cat(c, x) for c, x in zip(cache, new)]
                cached = ready
        tokens[:, index] = _commit(tokens[:, index], logits, expert.mask_id, size, threshold)
        while started < n_blocks:
            last = tokens[:, (started - 1) * size : started * size] != expert.mask_id
            if float(last.float().mean(-1).min()) < activation:
                break
            started += 1
    return tokens, DecodeStats(forward_passes=passes, tokens=n)


def _cat(a: tuple, b: tuple) -> tuple:
    return torch.cat([a[0], b[0]], 2), torch.cat([a[1], b[1]], 2)


def _commit(
    tokens: torch.Tensor, logits: torch.Tensor, mask_id: int, size: int, threshold: float
) -> torch.Tensor:
    """Commit masked tokens at or above `threshold` confidence, and each block's most confident."""
    batch, t = tokens.shape
    confidence, predicted = logits.softmax(-1).max(-1)
    masked = tokens == mask_id
    confidence = torch.where(masked, confidence, torch.full_like(confidence, -1.0))
    per_block = confidence.view(batch, t // size, size)
    best = torch.zeros_like(per_block, dtype=torch.bool).scatter_(
        -1, per_block.argmax(-1, keepdim=True), True
    )
    best &= masked.view(batch, t // size, size).any(-1, keepdim=True)
    commit = masked & ((confidence >= threshold) | best.view(batch, t))
    return torch.where(commit, predicted, tokens)
