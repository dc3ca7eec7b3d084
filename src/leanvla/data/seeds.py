"""Episode seeds: one function decides every episode's seed, for recording and for evaluation.

Training and evaluation draw from disjoint streams (the `split` word is part of the seed's
entropy), and evaluation additionally checks the drawn positions against the recorded ones.
"""

from __future__ import annotations

import zlib

import numpy as np

_SPLITS = {"train": 0, "eval": 1}


def episode_seed(base_seed: int, task: str, index: int, attempt: int = 0, split: str = "train") -> int:
    """A 31-bit seed that depends on (base seed, task name, episode index, retry attempt, split)."""
    entropy = [
        int(base_seed) & 0xFFFFFFFF,
        zlib.crc32(task.encode()),
        int(index),
        int(attempt),
        _SPLITS[split],
    ]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] & 0x7FFFFFFF)
