"""The discrete action head: block-causal attention, rising noise levels, the masked-token error."""

from __future__ import annotations

import pytest
import torch

from leanvla.decode.masks import block_mask_ratios, check_block, check_head_shape
from leanvla.errors import UserError
from leanvla.models.config import vla_config
from leanvla.models.vla import VLA
from tests.models.test_vla import obs


def discrete(block=4, vocab=8, chunk=4, **kw) -> VLA:
    torch.manual_seed(0)
    cfg = vla_config(
        "tiny",
        cameras=["observation.images.a", "observation.images.b"],
        image_size=32,
        chunk_size=chunk,
        head="discrete",
        action_vocab=vocab,
        token_block=block,
        **kw,
    )
    return VLA(cfg).eval()


def test_each_token_sees_the_prefix_earlier_blocks_and_its_own_block():
    model = discrete(block=4)
    o = obs()
    o.token_mask[1, -2:] = False  # padding in the second sample's instruction
    prefix = model.prefix_of(o)
    n = model.expert.n_tokens
    index = torch.arange(n)
    mask = model.expert.attention_mask(prefix, index, index[:0])
    assert mask.shape == (2, 1, n, prefix.length + n)
    for b in range(2):
        assert torch.equal(mask[b, 0, :, : prefix.length], prefix.valid[b].expand(n, -1))
        for i in range(n):
            for j in range(n):
                assert bool(mask[b, 0, i, prefix.length + j]) == (j // 4 <= i // 4), (i, j)


def test_cached_keys_attend_like_the_full_sequence():
    """Queries over blocks 2.. with blocks 0-1 from a cache give the full pass's logits."""
    model = discrete(block=4)
    prefix = model.prefix_of(obs())
    n = model.expert.n_tokens
    tokens = torch.randint(0, 8, (2, n), generator=torch.Generator().manual_seed(1))
    tokens[:, 10:] = model.expert.mask_id
    index = torch.arange(n)
    full, kv = model.expert(prefix, tokens, index)
    cache = [(k[:, :, :8], v[:, :, :8]) for k, v in kv]
    part, _ = model.expert(prefix, tokens[:, 8:], index[8:], cache, index[:8])
    assert torch.allclose(part, full[:, 8:], atol=1e-5)


def test_noise_levels_rise_along_the_chunk():
    t = torch.linspace(0.0, 1.0, 11)
    ratios = block_mask_ratios(t, n_blocks=4)
    assert (ratios[:, 1:] >= ratios[:, :-1]).all()  # later blocks at least as masked
    assert torch.equal(ratios[-1], torch.ones(4))  # t = 1: everything masked
    assert torch.equal(ratios[0], torch.zeros(4))  # t = 0: clean
    assert ((ratios > 0) & (ratios < 1)).any(1)[1:-1].all()  # in between, some block is partly masked
    assert torch.equal(block_mask_ratios(t, 1)[:, 0], t)  # one block: the usual ratio


def test_each_block_masks_the_share_of_its_tokens_its_noise_level_says():
    """The chunk's draws mask each block at its own ratio: Phi(noise) is uniform, and a block's ratio
    applies to its own consecutive tokens (clean blocks untouched, fully masked blocks all masked)."""
    expert = discrete(block=4).expert  # 16 action tokens, 4 blocks
    t = torch.full((4000,), 0.45)
    ratios = block_mask_ratios(t, expert.n_blocks)[0]  # the same for every sample
    assert ratios[0] == 0 and ratios[-1] == 1 and ((ratios > 0.2) & (ratios < 0.8)).any()
    noise = torch.randn(4000, 4, 4, generator=torch.Generator().manual_seed(0))
    _, _, masked = expert.masked_chunk(torch.zeros(4000, 4, 4), noise, t)
    share = masked.float().view(4000, expert.n_blocks, expert.block).mean((0, 2))
    torch.testing.assert_close(share, ratios, atol=0.015, rtol=0)


def test_masked_token_error_counts_masked_tokens_only_and_trains():
    model = discrete(block=4).train()
    o = obs()
    actions = torch.randn(2, 4, 4)
    noise = torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(0))
    clean = model.action_error(o, actions, noise, torch.zeros(2))
    assert torch.equal(clean, torch.zeros(2, 4))  # nothing masked, nothing to predict
    err = model.action_error(o, actions, noise, torch.ones(2))
    assert err.shape == (2, 4) and (err > 0).all()
    err.mean().backward()
    assert model.expert.token_embed.weight.grad.abs().sum() > 0
    assert model.backbone[0].attn.q_proj.weight.grad.abs().sum() > 0


def test_bad_block_size_and_thresholds_are_one_clear_line():
    with pytest.raises(UserError, match="block 5 must divide the chunk's 16 action tokens"):
        check_block(16, 5)
    with pytest.raises(UserError, match="block 6 must divide"):
        discrete(block=6)
    with pytest.raises(UserError, match=r"--commit-threshold must be in \(0, 1\], got 1.5"):
        discrete(commit_threshold=1.5)
    with pytest.raises(UserError, match=r"--activation-threshold must be in \(0, 1\], got 0.0"):
        discrete(activation_threshold=0.0)
    with pytest.raises(UserError, match="model decoder 'greedy' is not one of"):
        discrete(decoder="greedy")
    with pytest.raises(
        UserError, match=r"the action vocabulary \(--discrete.vocab\) needs at least 2 bins, got 1"
    ):
        check_head_shape(16, 4, 1)
