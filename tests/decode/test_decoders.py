"""Decoders of the discrete head: mask-predict's schedule, Fast-dVLA's cache exactness and pipeline."""

from __future__ import annotations

import math

import pytest
import torch

from leanvla.decode.bidirectional import mask_predict
from leanvla.decode.fast import fast_decode
from leanvla.errors import UserError
from tests.decode.test_head import discrete
from tests.models.test_vla import obs


@pytest.mark.parametrize("threshold", [0.05, 0.2, 0.9])
@pytest.mark.parametrize("activation", [0.25, 0.5, 1.0])
def test_cached_decoding_equals_uncached_block_causal_decoding(threshold, activation):
    model = discrete(block=4, vocab=6)
    prefix = model.prefix_of(obs(seed=3))
    cached, cached_stats = fast_decode(model.expert, prefix, threshold, activation, use_cache=True)
    plain, plain_stats = fast_decode(model.expert, prefix, threshold, activation, use_cache=False)
    assert torch.equal(cached, plain)
    assert cached_stats == plain_stats
    assert not (cached == model.expert.mask_id).any()  # every token committed


def test_fast_decoding_commits_at_least_one_token_per_active_block_per_pass():
    model = discrete(block=4, vocab=6)
    prefix = model.prefix_of(obs())
    n = model.expert.n_tokens
    # threshold 1: only the forced commit; activation 1: blocks strictly one after another
    _, sequential = fast_decode(model.expert, prefix, threshold=1.0, activation=1.0)
    assert sequential.forward_passes == n  # one token per pass
    # a low threshold commits many tokens per pass, and blocks overlap
    _, parallel = fast_decode(model.expert, prefix, threshold=0.01, activation=0.25)
    assert parallel.forward_passes < sequential.forward_passes / 2
    assert parallel.tokens_per_pass > 2


# The tiny head is unsure (vocab 6: confidences near 1/6); at these thresholds some samples commit
# a whole block in a pass and others one token.
@pytest.mark.parametrize("threshold, activation", [(0.18, 0.5), (0.19, 0.75)])
def test_a_block_starts_once_every_sample_has_committed_the_activation_share_of_the_one_before(
    threshold, activation
):
    """The pipeline's rule, checked pass by pass on a batch whose samples commit at different speeds:
    before each pass, the blocks started are exactly those whose predecessor has at least `activation`
    of its tokens committed in every sample (the slowest sample decides)."""
    model = discrete(block=4, vocab=6)
    prefix = model.prefix_of(obs(b=6, seed=2))
    size, n_blocks = model.expert.block, model.expert.n_blocks
    seen = []  # (blocks started, committed share per block and sample) entering each pass
    original = model.expert.forward

    def spy(prefix, tokens, index, *rest):
        committed = (tokens != model.expert.mask_id).float().view(tokens.shape[0], -1, size).mean(-1)
        seen.append((len(index) // size, committed))
        return original(prefix, tokens, index, *rest)

    model.expert.forward = spy
    tokens, _ = fast_decode(model.expert, prefix, threshold, activation, use_cache=False)
    assert not (tokens == model.expert.mask_id).any()  # the slowest sample finished too
    decided_by_slowest = 0
    for started, committed in seen[1:]:
        slowest = committed.min(0).values  # per started block, over the samples
        assert (slowest[: started - 1] >= activation).all()
        if started < n_blocks:
            assert slowest[started - 1] < activation
            decided_by_slowest += bool(committed.max(0).values[started - 1] >= activation)
    assert decided_by_slowest > 0  # some sample was ready before the slowest: the rule was tested


def test_a_token_exactly_at_the_commit_threshold_is_committed():
    from leanvla.decode.fast import _commit

    mask_id = 4
    logits = torch.full((1, 4, 4), -1e9)
    logits[..., :2] = 0.0  # two bins tie: every token's confidence is exactly 0.5
    committed = _commit(torch.full((1, 4), mask_id), logits, mask_id, size=2, threshold=0.5)
    assert committed.tolist() == [[0, 0, 0, 0]]  # all of them, not only each block's best


@pytest.mark.parametrize("block", [2, 4, 8, 0])
def test_committing_everything_at_once_takes_one_pass_per_block(block):
    """The pipeline's floor, which the block size sets: with every token confident enough, a chunk
    takes exactly one pass per block; with one block (the bidirectional head) that single pass is
    mask-predict at K=1."""
    model = discrete(block=block, vocab=6)
    prefix = model.prefix_of(obs(seed=5))
    tokens, stats = fast_decode(model.expert, prefix, threshold=1e-9, activation=1e-9)
    assert stats.forward_passes == model.expert.n_blocks
    if block == 0:
        assert model.expert.n_blocks == 1
        assert torch.equal(tokens, mask_predict(model.expert, prefix, iterations=1)[0])


def test_mask_predict_with_more_iterations_than_tokens_commits_one_token_per_pass():
    """Every iteration commits at least one token, so K >= N takes N passes, not K."""
    model = discrete(block=4, vocab=6)
    n = model.expert.n_tokens
    tokens, stats = mask_predict(model.expert, model.prefix_of(obs()), iterations=4 * n)
    assert stats.forward_passes == n and not (tokens == model.expert.mask_id).any()


def test_mask_predict_follows_the_cosine_schedule():
    model = discrete(block=0, vocab=6)
    prefix = model.prefix_of(obs())
    n = model.expert.n_tokens
    seen = []
    original = model.expert.forward

    def spy(prefix, tokens, index, *rest):
        seen.append(int((tokens == model.expert.mask_id).sum(1)[0]))
        return original(prefix, tokens, index, *rest)

    model.expert.forward = spy
    tokens, stats = mask_predict(model.expert, prefix, iterations=5)
    assert stats.forward_passes == 5 and len(seen) == 5
    expected = [n] + [int(n * math.cos(math.pi / 2 * k / 5)) for k in range(1, 5)]
    assert seen == expected  # masked tokens entering each iteration
    assert not (tokens == model.expert.mask_id).any()


def test_predict_returns_bin_centres_and_reports_its_cost():
    model = discrete(block=4, vocab=6)
    o = obs()
    noise = torch.zeros(2, 4, 4)
    actions = model.predict(o, noise)
    centers = model.expert.tokenizer.centers()  # A x vocab
    for d in range(4):
        assert torch.isin(actions[..., d], centers[d]).all()
    assert model.last_decode.forward_passes >= 1 and model.last_decode.tokens == 16
    model.cfg.decoder = "bidirectional"
    model.predict(o, noise)
    assert model.last_decode.forward_passes == model.cfg.decode_iterations


def test_mask_predict_left_to_right_equals_a_slow_reference():
    model = discrete(block=0, vocab=6)
    prefix = model.prefix_of(obs(seed=1))
    expert, n, iterations = model.expert, model.expert.n_tokens, 5
    tokens, stats = mask_predict(expert, prefix, iterations, order="left-to-right")
    # Reference: each iteration commits the leftmost masked tokens, as many as the cosine schedule
    # says, each to its most likely bin given the tokens committed in earlier iterations.
    reference = torch.full_like(tokens, expert.mask_id)
    for k in range(1, iterations + 1):
        logits, _ = expert(prefix, reference, torch.arange(n))
        masked = [i for i in range(n) if reference[0, i] == expert.mask_id]
        left = min(int(n * math.cos(math.pi / 2 * k / iterations)), len(masked) - 1)
        for i in masked[: len(masked) - max(left, 0)]:
            reference[:, i] = logits[:, i].argmax(-1)
    assert torch.equal(tokens, reference)
    assert stats.forward_passes == iterations


def test_mask_predict_random_order_is_the_permutation_its_noise_ranks():
    model = discrete(block=0, vocab=6)
    prefix = model.prefix_of(obs(seed=2))
    expert, n = model.expert, model.expert.n_tokens
    noise = torch.randn(2, n, generator=torch.Generator().manual_seed(0))
    tokens, _ = mask_predict(expert, prefix, 4, order="random", noise=noise)
    assert torch.equal(tokens, mask_predict(expert, prefix, 4, order="random", noise=noise.clone())[0])
    assert not (tokens == expert.mask_id).any()
    # noise falling along the chunk ranks the tokens left to right
    falling = -torch.arange(n, dtype=torch.float32).expand(2, n)
    ordered, _ = mask_predict(expert, prefix, 4, order="left-to-right")
    assert torch.equal(mask_predict(expert, prefix, 4, order="random", noise=falling)[0], ordered)
    # with one iteration every order commits every token at once: the same tokens
    one = [mask_predict(expert, prefix, 1, order=o)[0] for o in ("confidence", "random", "left-to-right")]
    assert torch.equal(one[0], one[1]) and torch.equal(one[0], one[2])


def test_predict_draws_the_random_order_from_the_chunk_noise():
    model = discrete(block=0, vocab=6)
    model.cfg.decoder, model.cfg.decode_order, model.cfg.decode_iterations = "bidirectional", "random", 4
    o = obs(seed=4)
    noise = torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(1))
    expected, _ = mask_predict(model.expert, model.prefix_of(o), 4, order="random", noise=noise)
    assert torch.equal(model.predict(o, noise), model.expert.tokenizer.decode(expected.view(2, 4, 4)))


def test_mask_predict_needs_at_least_one_iteration():
    from leanvla.decode.bidirectional import check_iterations

    with pytest.raises(UserError, match="--decode-iterations must be >= 1, got 0"):
        check_iterations(0)


def test_mask_predict_rejects_an_unknown_order():
    model = discrete(block=0, vocab=6)
    with pytest.raises(
        UserError, match="--decode-order must be one of confidence, random, left-to-right, got 'shuffled'"
    ):
        mask_predict(model.expert, model.prefix_of(obs()), 2, order="shuffled")
