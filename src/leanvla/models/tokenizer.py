"""A built-in instruction tokenizer: nothing to download, stable across machines and versions.

Words (lower-cased, split on anything that is not a letter or digit) are hashed with CRC-32 into
a fixed vocabulary. A robot's instruction set is small, so collisions are rare, and the same word
always gets the same id, with no vocabulary file to ship or lose.
"""

from __future__ import annotations

import re
import zlib

import torch

PAD, BOS = 0, 1
_SPECIALS = 2
_WORD = re.compile(r"[a-z0-9]+")


class InstructionTokenizer:
    def __init__(self, vocab_size: int = 4096, max_length: int = 16):
        assert vocab_size > _SPECIALS
        self.vocab_size = vocab_size
        self.max_length = max_length

    def token_id(self, word: str) -> int:
        return _SPECIALS + zlib.crc32(word.encode()) % (self.vocab_size - _SPECIALS)

    def encode(self, text: str) -> list[int]:
        """BOS followed by one id per word, truncated to max_length."""
        ids = [BOS] + [self.token_id(w) for w in _WORD.findall(text.lower())]
        return ids[: self.max_length]

    def batch(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """ids (N x longest, PAD-filled) and a bool mask of real tokens.

        Padded to the longest text given, not to max_length: padding tokens cost backbone compute.
        """
        rows = [self.encode(text) for text in texts]
        ids = torch.full((len(texts), max(len(r) for r in rows)), PAD, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
        return ids, ids != PAD
