"""The discrete-diffusion action head: the action expert over action tokens instead of flow noise.

    tokens  : the chunk's H x A actions, each dimension cut into `action_vocab` bins
              (leanvla.decode.tokenizer), flattened time-major into N = H * A tokens
    training: a fraction of the tokens is replaced by MASK (per block: rising along the chunk
              when the head is block-causal) and the expert predicts the masked tokens' bins
              (cross-entropy); attention is bidirectional, or block-causal with `token_block`
    decoding: leanvla.decode.bidirectional (mask-predict) or leanvla.decode.fast (Fast-dVLA)

The expert keeps the flow expert's shape (the same Blocks attending to the backbone's cached
keys/values through the same layer map), so layouts, pruning and adapters treat both alike.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from leanvla.decode.masks import block_mask_ratios, check_block
from leanvla.decode.tokenizer import ActionTokenizer
from leanvla.models.layers import KV, RMSNorm, rotary
from leanvla.models.vla import expert_blocks


class DiscreteActionExpert(nn.Module):
    """Action tokens (bins or MASK) in, per-token bin logits out."""

    def __init__(self, cfg):
        super().__init__()
        w, a, v = cfg.expert_width, cfg.action_dim, cfg.action_vocab
        self.action_dim, self.vocab = a, v
        self.n_tokens = cfg.chunk_size * a
        self.n_blocks = check_block(self.n_tokens, cfg.token_block)
        self.block = self.n_tokens // self.n_blocks
        self.cfg = cfg  # read live: pruning rewrites the expert-to-backbone map
        self.head_dim = cfg.head_dim
        # Dimension d's bins are ids d * v .. d * v + v - 1; MASK is the last id.
        self.token_embed = nn.Embedding(a * v + 1, w)
        self.dim_embed = nn.Embedding(a, w)
        self.cond_proj = nn.Linear(cfg.width, w)
        self.layers = expert_blocks(cfg)
        self.norm = RMSNorm(w)
        self.logits = nn.Linear(w, v)
        # Bin edges live in the state dict, so a checkpoint carries its tokenizer. Until fitted
        # (train does it on the normalised training actions), uniform over +-3 standard deviations.
        self.register_buffer("bin_edges", torch.linspace(-3.0, 3.0, v + 1).repeat(a, 1))

    @property
    def mask_id(self) -> int:
        return self.action_dim * self.vocab

    @property
    def tokenizer(self) -> ActionTokenizer:
        return ActionTokenizer(self.bin_edges)

    def fit_bins(self, actions: torch.Tensor, kind: str = "uniform") -> dict:
        """Fit the bins on normalised training actions (N x A); returns the round-trip error."""
        tokenizer = ActionTokenizer.fit(actions, self.vocab, kind)
        self.bin_edges.copy_(tokenizer.edges)
        return tokenizer.round_trip_error(actions)

    def block_of(self, index: torch.Tensor) -> torch.Tensor:
        return index // self.block

    def attention_mask(self, prefix, query: torch.Tensor, cached: torch.Tensor) -> torch.Tensor:
        """B x 1 x T x (P + Tc + T) bool: every real prefix token, then cached and current action
        tokens (chunk indices `cached`, `query`) whose block is not after the query's."""
        keys = torch.cat([cached, query])
        among = self.block_of(keys)[None, :] <= self.block_of(query)[:, None]  # T x (Tc + T)
        b, t = prefix.valid.shape[0], query.numel()
        return torch.cat(
            [
                prefix.valid[:, None, None, :].expand(b, 1, t, prefix.length),
                among.expand(b, 1, t, keys.numel()),
            ],
            dim=-1,
        )

    def forward(
        self,
        prefix,
        tokens: torch.Tensor,
        index: torch.Tensor,
        cache: list[KV] | None = None,
        cached_index: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[KV]]:
        """Logits (B x T x vocab) for `tokens` (B x T) at chunk positions `index` (T,), attending to the
        prefix, to `cache` (per expert layer: earlier action tokens' keys/values at `cached_index`)
        and to each other, block-causally. Also returns this call's keys/values per layer."""
        cached_index = index.new_zeros(0) if cached_index is None else cached_index
        dims = index % self.action_dim
        ids = torch.where(tokens == self.mask_id, tokens, dims * self.vocab + tokens)
        x = self.token_embed(ids) + self.dim_embed(dims) + self.cond_proj(prefix.summary)[:, None]
        rope = rotary(prefix.next_position() + index, self.head_dim)
        mask = self.attention_mask(prefix, index, cached_index)
        new = []
        for i, layer in enumerate(self.layers):
            context = prefix.kv[self.cfg.expert_to_backbone[i]]
            if cache is not None:
                context = (torch.cat([context[0], cache[i][0]], 2), torch.cat([context[1], cache[i][1]], 2))
            x, kv = layer(x, rope, mask, cache=context)
            new.append(kv)
        return self.logits(self.norm(x)), new

    def token_error(
        self, prefix, actions: torch.Tensor, noise: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """B x H masked-token cross-entropy, averaged over each step's dimensions (0 where unmasked).

        The training loop's draws decide the masking, so it is as reproducible as the flow head's:
        Phi(noise) gives one uniform per token, t the noise level (see block_mask_ratios)."""
        b, h, a = actions.shape
        targets, inputs, masked = self.masked_chunk(actions, noise, t)
        logits, _ = self(prefix, inputs, torch.arange(h * a, device=actions.device))
        return per_step(token_cross_entropy(logits, targets), masked, actions.shape)

    def masked_chunk(self, actions: torch.Tensor, noise: torch.Tensor, t: torch.Tensor):
        """(targets, inputs, masked), each B x N: the chunk's tokens, the same with MASK where
        `masked`, and which tokens the draws mask."""
        b, h, a = actions.shape
        targets = self.tokenizer.encode(actions).reshape(b, h * a)
        uniform = 0.5 * (1.0 + torch.erf(noise.reshape(b, h * a) / math.sqrt(2.0)))
        ratio = block_mask_ratios(t, self.n_blocks).repeat_interleave(self.block, dim=1)
        masked = uniform < ratio
        return targets, torch.where(masked, torch.full_like(targets, self.mask_id), targets), masked


def token_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-token cross-entropy, flat (B*N): logits B x N x vocab, targets B x N."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")


def per_step(token_values: torch.Tensor, masked: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """B x H: per-token values (B*N) kept on the masked tokens, averaged over each step's dimensions."""
    b, h, a = shape
    return (token_values.view(b, h * a) * masked).view(b, h, a).mean(-1)
