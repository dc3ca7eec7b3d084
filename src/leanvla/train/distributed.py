"""Data parallelism with torch.distributed, started by torchrun (gloo on CPU, NCCL on GPU).

Every process draws the same global batch from the same seeded generator and trains on its slice,
so N processes see exactly the samples one process would; DDP averages the gradients.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, global_batch: int) -> tuple[int, int]:
        """This process's [start, stop) of a global batch."""
        per = global_batch // self.size
        return self.rank * per, (self.rank + 1) * per


def init_world() -> World:
    """Join the process group when launched by torchrun; otherwise a world of one."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
        return World(device=torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    rank, size = dist.get_rank(), dist.get_world_size()
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    return World(rank, size, device)


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()


def shutdown(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()
