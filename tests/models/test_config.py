"""The discrete head's decoder: 'auto' is the fast decoder only where training was block-causal."""

from __future__ import annotations

from leanvla.models.config import vla_config


def test_auto_picks_the_fast_decoder_only_for_more_than_one_block():
    def decoder(block: int, choice: str = "auto") -> str:
        cfg = vla_config(
            "tiny", chunk_size=8, action_dim=4, head="discrete", action_vocab=16, token_block=block
        )
        cfg.decoder = choice
        return cfg.resolved_decoder()

    assert decoder(8) == "fast"  # 4 blocks of 8 of the chunk's 32 tokens
    assert decoder(32) == "bidirectional"  # one block holding every token: nothing to pipeline
    assert decoder(0) == "bidirectional"  # trained bidirectionally
    assert decoder(32, "fast-nocache") == "fast-nocache"  # asked for by name
