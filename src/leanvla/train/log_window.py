"""Running sums of the losses logged every --log-every steps, kept on the training device.

Each step adds detached tensors; nothing is read back to the host until the window closes. Reading a
CUDA tensor (`float(x)`) waits for every queued kernel, so doing it per step would stall the GPU
pipeline once a step; and under torchrun one all-reduce of every sum at the window's close replaces
one per term per step.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


class LogWindow:
    """Window sums by name; `means` gives each name's mean per step over the global batch.

    Every process must `add` the same names in the same order (they run the same loop), because the
    sums travel as one stacked tensor.
    """

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.steps = 0

    def add(self, name: str, value: torch.Tensor) -> None:
        """Add one step's value of `name` (a scalar; this process's mean over its slice)."""
        value = value.detach().float()
        self.sums[name] = self.sums[name] + value if name in self.sums else value

    def step(self) -> None:
        self.steps += 1

    def means(self, world_size: int = 1) -> dict[str, float]:
        """Each name's mean per step, averaged over the processes (their slices are of equal size),
        then the window starts again."""
        if not self.sums:
            self.steps = 0
            return {}
        names = list(self.sums)
        totals = torch.stack([self.sums[n] for n in names])
        if world_size > 1:
            dist.all_reduce(totals)
            totals = totals / world_size
        per_step = (totals / max(self.steps, 1)).tolist()
        self.sums, self.steps = {}, 0
        return dict(zip(names, per_step))
