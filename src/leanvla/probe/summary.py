"""A probe's chunk errors reduced to what the report shows, for one group of probed frames.

Every mean is over frames (and action dimensions, where not split by them), counting only the chunk
steps the demonstration took: the first action of each chunk, the steps a policy executes before it
observes again, and each step of the chunk. The swapped errors are compared with the unswapped
error of the same frames (those with a counterpart).
"""

from __future__ import annotations

import torch

from leanvla.probe.measure import SWAPS


def masked_mean(values: torch.Tensor, weights: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Mean of `values` over `dims`, counting each entry by its 0/1 weight (NaN where none counts)."""
    return (values * weights).sum(dims) / weights.sum(dims)


def as_numbers(values: torch.Tensor) -> list[float | None]:
    """A tensor as JSON numbers, None where nothing was compared."""
    return [None if v != v else float(v) for v in values.tolist()]


def reduce_errors(errors: torch.Tensor, compared: torch.Tensor, executed: int) -> dict:
    """One group's errors (N x H x A, with N x H `compared`): its first action, its first `executed`
    steps, each chunk step and each action dimension."""
    weights = compared[..., None].expand_as(errors).float()
    head = (slice(None), slice(0, executed))
    return {
        "frames": len(errors),
        "first_action": float(errors[:, 0].mean()),  # a chunk's first step is always its frame's own action
        "executed": executed_error(errors, compared, executed),
        "by_step": as_numbers(masked_mean(errors, weights, (0, 2))),
        "by_dimension": as_numbers(masked_mean(errors[head], weights[head], (0, 1))),
    }


def executed_error(errors: torch.Tensor, compared: torch.Tensor, executed: int) -> float:
    """The mean error over the first `executed` steps of every chunk, where compared."""
    weights = compared[:, :executed, None].expand_as(errors[:, :executed]).float()
    return float(masked_mean(errors[:, :executed], weights, (0, 1, 2)))


def summarise(
    as_recorded: tuple[torch.Tensor, torch.Tensor],
    swapped: dict[str, tuple[torch.Tensor, torch.Tensor]],
    has_counterpart: torch.Tensor,
    executed: int,
) -> dict:
    """One group's summary: `as_recorded` (errors, compared) for its frames, and for the frames with a
    counterpart (`has_counterpart`, bool over them) the errors with each input swapped."""
    errors, compared = as_recorded
    out = reduce_errors(errors, compared, executed)
    frames = int(has_counterpart.sum())
    out["swapped"] = {"frames": frames}
    if frames:
        own = executed_error(errors[has_counterpart], compared[has_counterpart], executed)
        out["swapped"]["as_recorded"] = own
        for name, (swapped_errors, swapped_compared) in swapped.items():
            out["swapped"][name] = executed_error(swapped_errors, swapped_compared, executed)
    return out


def swap_ratios(swapped: dict) -> dict[str, float | None]:
    """How many times the same frames' own executed-step error each swap's is (a summary's
    "swapped"); None where no frame had a counterpart or the own error is zero."""
    own = swapped.get("as_recorded")
    return {name: swapped[name] / own if own else None for name in SWAPS}


def per_task(
    measured: tuple[torch.Tensor, torch.Tensor],
    swapped: dict[str, tuple[torch.Tensor, torch.Tensor]],
    has_counterpart: torch.Tensor,
    members: torch.Tensor,
    data,
    rows: torch.Tensor,
    executed: int,
) -> dict[str, dict]:
    """The summary of the probed rows in `members` (bool over them), all together ("all") and per
    task (its instruction). `swapped` holds the errors of the rows with a counterpart only."""
    task_of = data.task_index[rows]
    out = {}
    for task in [None, *sorted(set(task_of[members].tolist()))]:
        chosen = members if task is None else members & (task_of == task)
        paired = chosen[has_counterpart]  # the chosen, among the rows with a counterpart
        out["all" if task is None else data.instructions[task]] = summarise(
            (measured[0][chosen], measured[1][chosen]),
            {name: (errors[paired], compared[paired]) for name, (errors, compared) in swapped.items()},
            has_counterpart[chosen],
            executed,
        )
    return out
