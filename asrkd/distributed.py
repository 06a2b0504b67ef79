"""Process groups under ``torchrun``: gloo on CPU, nccl on GPU (DDP training, and the ranks of
``asrkd evaluate`` and ``cache-targets`` that split a set's utterances).

Without torchrun's environment (``WORLD_SIZE`` unset or 1) everything is a no-op and rank 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: str = "cpu"  # where collective tensors live (nccl needs them on the rank's GPU)

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group torchrun describes in the environment (if any)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    where = f"cuda:{local_rank}" if device.type == "cuda" else "cpu"
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, where)


def all_reduce_sum(values: list[float], info: DistInfo) -> list[float]:
    """Sum a few numbers over all ranks (metrics, flags)."""
    if not info.enabled:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return t.tolist()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def process_rank_world() -> tuple[int, int]:
    """(rank, world size) of the joined process group, (0, 1) when there is none."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def process_barrier() -> None:
    """Wait for every rank of the joined process group (a no-op without one)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def gather_to_main(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable) on rank 0, in rank order; ``[]`` on the other ranks,
    ``[obj]`` without a process group."""
    rank, world = process_rank_world()
    if world == 1:
        return [obj]
    out: list[Any] | None = [None] * world if rank == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out or []
