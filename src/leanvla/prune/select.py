"""Which layers to remove: redundancy criteria and the greedy / contiguous-block selection.

Every criterion is a similarity between representations: CKA, mean cosine (ShortGPT's block
influence is 1 - cosine), or 1 - angular distance (Gromov et al.). Layer i (1-based; it maps h_{i-1}
to h_i) is redundant when sim(h_{i-1}, h_i) is close to 1.

Greedy removal uses the whole similarity matrix from the one calibration pass: once layer i is
gone, the next kept layer j reads what layer i read, so its redundancy becomes sim(h_prev, h_j)
with h_prev the output of the last kept layer before it. The first and last layers are never
removed. `drop-last` is the naive baseline: truncate the deepest layers.
"""

from __future__ import annotations

import math

import torch

from leanvla.errors import require

CRITERIA = ("cka", "block-influence", "angular", "drop-last")


def similarity_matrix(accumulator, criterion: str, unbiased: bool = False) -> torch.Tensor:
    """R x R similarity under `criterion` (higher = more alike = more redundant)."""
    if criterion == "cka":
        return accumulator.cka(unbiased)
    if criterion == "block-influence":
        return accumulator.mean_cosine()
    if criterion == "angular":
        return 1.0 - accumulator.angular_distance()
    raise ValueError(f"no similarity for criterion '{criterion}'")


def layers_to_remove(
    num_layers: int, keep: float | None = None, threshold: float | None = None
) -> int | None:
    """How many layers a keep ratio removes (None when a threshold decides instead)."""
    if threshold is not None:
        return None
    require(keep is not None, "give --keep (fraction of layers to keep) or --threshold")
    require(0.0 < keep <= 1.0, f"--keep must be in (0, 1], got {keep}")
    kept = max(1, math.ceil(keep * num_layers - 1e-9))
    return num_layers - kept


def check_removable(stack: str, num_layers: int, count: int, criterion: str) -> None:
    """A removal count that would empty the stack (or cut its first/last layer) is bad input."""
    protected = 0 if criterion == "drop-last" else min(num_layers, 2)
    require(
        count <= num_layers - max(protected, 1),
        f"stack '{stack}' has {num_layers} layers; removing {count} would leave "
        f"{num_layers - count}, but {criterion} must keep at least {max(protected, 1)} "
        f"({'the first and the last' if protected == 2 else 'one'}): raise --keep",
    )


def greedy_removal(
    similarity: torch.Tensor, count: int | None = None, threshold: float | None = None
) -> list[int]:
    """0-based indices of layers to remove, most redundant first.

    similarity: R x R over representations h_0..h_L (R = L + 1). Stops after `count` removals, or
    (with `threshold`) while the best candidate's similarity is >= threshold.
    """
    num_layers = similarity.shape[0] - 1
    kept = list(range(1, num_layers + 1))  # 1-based layer i produces h_i
    removed: list[int] = []
    while True:
        if count is not None and len(removed) >= count:
            break
        best, best_sim = None, -math.inf
        for pos in range(1, len(kept) - 1):  # never the first or the last layer
            prev = kept[pos - 1]
            value = float(similarity[prev, kept[pos]])
            if value > best_sim:
                best, best_sim = pos, value
        if best is None or (threshold is not None and best_sim < threshold):
            break
        removed.append(kept.pop(best) - 1)
    return removed


def contiguous_removal(similarity: torch.Tensor, count: int) -> list[int]:
    """Remove the block of `count` consecutive layers whose input and output are most alike
    (Gromov et al.'s rule with the chosen similarity), never touching the first or last layer."""
    num_layers = similarity.shape[0] - 1
    if count == 0:
        return []
    best_start, best_sim = None, -math.inf
    # A block covers 1-based layers start+1 .. start+count: input h_start, output h_{start+count}.
    for start in range(1, num_layers - count):
        value = float(similarity[start, start + count])
        if value > best_sim:
            best_start, best_sim = start, value
    require(
        best_start is not None, f"no block of {count} layers fits between the first and last of {num_layers}"
    )
    return list(range(best_start, best_start + count))


def drop_last(num_layers: int, count: int) -> list[int]:
    """The baseline: remove the deepest `count` layers."""
    return list(range(num_layers - count, num_layers))
