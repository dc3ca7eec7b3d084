"""What one decoded action chunk cost: forward passes of the action expert and tokens committed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DecodeStats:
    forward_passes: int
    tokens: int
    """Action tokens per sample in the chunk (all of them are committed by the end)."""

    @property
    def tokens_per_pass(self) -> float:
        return self.tokens / max(1, self.forward_passes)
