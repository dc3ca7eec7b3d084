"""Attention against a slow reference; the key/value cache; rotary positions."""

from __future__ import annotations

import math

import torch

from leanvla.models.layers import Attention, RMSNorm, apply_rotary, rotary


def reference_attention(attn: Attention, x, positions, mask, cache_x=None, cache_positions=None):
    """Explicit loops over heads and softmax, keys/values recomputed from the cached inputs."""

    def proj(layer, inp, heads):
        b, t, _ = inp.shape
        return layer(inp).view(b, t, heads, attn.head_dim).transpose(1, 2)

    q = proj(attn.q_proj, x, attn.n_heads)
    k = proj(attn.k_proj, x, attn.n_kv_heads)
    v = proj(attn.v_proj, x, attn.n_kv_heads)
    q, k = (
        apply_rotary(q, *rotary(positions, attn.head_dim)),
        apply_rotary(k, *rotary(positions, attn.head_dim)),
    )
    if cache_x is not None:
        kc = apply_rotary(
            proj(attn.k_proj, cache_x, attn.n_kv_heads), *rotary(cache_positions, attn.head_dim)
        )
        vc = proj(attn.v_proj, cache_x, attn.n_kv_heads)
        k, v = torch.cat([kc, k], 2), torch.cat([vc, v], 2)
    b, _, t, _ = q.shape
    out = torch.zeros(b, attn.n_heads, t, attn.head_dim)
    group = attn.n_heads // attn.n_kv_heads
    for h in range(attn.n_heads):
        scores = q[:, h] @ k[:, h // group].transpose(-1, -2) / math.sqrt(attn.head_dim)
        scores = scores.masked_fill(~mask[:, 0], float("-inf"))
        out[:, h] = scores.softmax(-1) @ v[:, h // group]
    return attn.o_proj(out.transpose(1, 2).reshape(b, t, -1))


def test_attention_matches_reference_with_mask_and_gqa():
    torch.manual_seed(0)
    attn = Attention(dim=24, n_heads=4, n_kv_heads=2, head_dim=8)
    x = torch.randn(3, 5, 24)
    pos = torch.arange(5).expand(3, 5)
    mask = torch.rand(3, 1, 5, 5) > 0.3
    mask[..., 0] = True  # every query sees at least one key
    out, _ = attn(x, rotary(pos, 8), mask)
    assert torch.allclose(out, reference_attention(attn, x, pos, mask), atol=1e-5)


def test_cached_attention_equals_attention_over_the_whole_sequence():
    torch.manual_seed(1)
    attn = Attention(dim=16, n_heads=2, n_kv_heads=1, head_dim=8)
    prefix, suffix = torch.randn(2, 6, 16), torch.randn(2, 3, 16)
    pos_p, pos_s = torch.arange(6).expand(2, 6), torch.arange(6, 9).expand(2, 3)
    _, cache = attn(prefix, rotary(pos_p, 8), None)
    mask = torch.ones(2, 1, 3, 9, dtype=torch.bool)
    cached, _ = attn(suffix, rotary(pos_s, 8), mask, cache=cache)
    whole, _ = attn(
        torch.cat([prefix, suffix], 1),
        rotary(torch.arange(9).expand(2, 9), 8),
        torch.ones(2, 1, 9, 9, dtype=torch.bool),
    )
    assert torch.allclose(cached, whole[:, 6:], atol=1e-5)
    assert torch.allclose(cached, reference_attention(attn, suffix, pos_s, mask, prefix, pos_p), atol=1e-5)


def test_rotary_scores_depend_on_relative_position_only():
    torch.manual_seed(2)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def score(pq, pk):
        rq = apply_rotary(q, *rotary(torch.tensor([[pq]]), 8))
        rk = apply_rotary(k, *rotary(torch.tensor([[pk]]), 8))
        return float((rq * rk).sum())

    assert math.isclose(score(3, 1), score(10, 8), rel_tol=1e-4)
    assert not math.isclose(score(3, 1), score(3, 2), rel_tol=1e-3)


def test_rmsnorm_normalises_scale():
    x = torch.randn(4, 10) * 7
    y = RMSNorm(10)(x)
    assert torch.allclose(y.pow(2).mean(-1), torch.ones(4), atol=1e-4)
