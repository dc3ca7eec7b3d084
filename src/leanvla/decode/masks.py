"""Attention masks and noise levels of the discrete action head.

Action tokens are the chunk's H x A actions flattened time-major (token i is step i // A,
dimension i % A). Fast-dVLA groups them into blocks of `block` consecutive tokens: a token sees
the prefix, every earlier block and its own block. A block of the whole chunk is the
bidirectional head.
"""

from __future__ import annotations

import torch

from leanvla.errors import require


def check_block(n_tokens: int, block: int) -> int:
    """The block size in tokens (0 = the whole chunk), checked; returns the number of blocks."""
    block = block or n_tokens
    require(
        1 <= block <= n_tokens and n_tokens % block == 0,
        f"action-token block {block} must divide the chunk's {n_tokens} action tokens "
        f"(chunk_size x action_dim); --discrete.block can be one of {_divisors(n_tokens)}",
    )
    return n_tokens // block


def check_head_shape(n_tokens: int, block: int, vocab: int) -> int:
    """The discrete head's vocabulary and block size, checked; returns the number of blocks."""
    require(vocab >= 2, f"the action vocabulary (--discrete.vocab) needs at least 2 bins, got {vocab}")
    return check_block(n_tokens, block)


def _divisors(n: int) -> str:
    return ", ".join(str(d) for d in range(1, n + 1) if n % d == 0)


def block_mask_ratios(t: torch.Tensor, n_blocks: int, window: float = 2.0) -> torch.Tensor:
    """B x n_blocks fraction of masked tokens per block, rising along the chunk (diffusion forcing).

    t (B,) is the noise level, 1 = everything masked (the training loop's flow time, which leans
    towards 1: the hard, mostly masked states). A decoding front c = (1 - t) * (n_blocks - 1 + window)
    sweeps the chunk: blocks well before it are clean, blocks after it fully masked, and the
    `window` blocks at it partly masked, so training sees the states pipelined decoding passes
    through (earlier blocks nearly done while later ones start). With one block the ratio is t.
    """
    if n_blocks == 1:
        return t[:, None]
    front = (1.0 - t[:, None]) * (n_blocks - 1 + window)
    j = torch.arange(n_blocks, device=t.device, dtype=t.dtype)[None]
    return ((j + window - front) / window).clamp(0.0, 1.0)
