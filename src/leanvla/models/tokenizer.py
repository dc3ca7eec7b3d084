"""A built-in instruction tokenizer: nothing to download, stable across machines and versions.

Words are hashed with CRC-32 into a fixed vocabulary. A robot's instruction set is small, so
collisions are rare, and the same word always gets the same id, with no vocabulary file to ship or
lose. What a word is (WORDS): since 2026-12-05, the letters and digits of any script, after NFKC
normalisation and lower-casing, with each Chinese or Japanese character a word of its own (those
scripts put no spaces between words); before, only a-z and 0-9, which read "把方块放进盒子" as no
word at all and "Würfel" as "w", "rfel". A checkpoint records which it was trained with.
"""

from __future__ import annotations

import re
import unicodedata
import zlib

import torch

PAD, BOS = 0, 1
_SPECIALS = 2
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # kana and CJK ideographs
WORDS = {
    "unicode": re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+"),
    "ascii": re.compile(r"[a-z0-9]+"),  # checkpoints written before 2026-12-05
}


class InstructionTokenizer:
    def __init__(self, vocab_size: int = 4096, max_length: int = 16, words: str = "unicode"):
        assert vocab_size > _SPECIALS
        self.vocab_size = vocab_size
        self.max_length = max_length
        self.words = WORDS[words]

    def token_id(self, word: str) -> int:
        return _SPECIALS + zlib.crc32(word.encode()) % (self.vocab_size - _SPECIALS)

    def encode(self, text: str) -> list[int]:
        """BOS followed by one id per word, truncated to max_length."""
        ids = [BOS] + [
            self.token_id(w) for w in self.words.findall(unicodedata.normalize("NFKC", text).lower())
        ]
        return ids[: self.max_length]

    def indistinct(self, texts: list[str]) -> list[list[str]]:
        """Groups of different texts that encode alike: a policy cannot tell them apart by their words."""
        groups: dict[tuple[int, ...], list[str]] = {}
        for text in dict.fromkeys(texts):
            groups.setdefault(tuple(self.encode(text)), []).append(text)
        return [group for group in groups.values() if len(group) > 1]

    def batch(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """ids (N x longest, PAD-filled) and a bool mask of real tokens.

        Padded to the longest text given, not to max_length: padding tokens cost backbone compute.
        """
        rows = [self.encode(text) for text in texts]
        ids = torch.full((len(texts), max(len(r) for r in rows)), PAD, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
        return ids, ids != PAD
