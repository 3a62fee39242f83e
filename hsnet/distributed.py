"""Several processes via PyTorch's own engine: process group from torchrun's environment, rank helpers, sums.

``torchrun --nproc_per_node N -m hsnet evaluate ...`` (or ``train``) sets RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT; ``init_distributed`` joins the group over NCCL on CUDA and gloo on CPU.
Without those variables everything runs as one process and the helpers are no-ops.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, TypeVar

import torch
import torch.distributed as dist

from .errors import HSNetError
from .runtime import resolve_device

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank among ``world_size`` and the device it computes on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 prints, logs and saves."""
        return self.rank == 0


def rank_device(device: str | torch.device, local_rank: int = 0) -> torch.device:
    """This process's device: ``device`` (text is resolved by ``hsnet.runtime.resolve_device``), a bare ``cuda``
    made this rank's own GPU."""
    resolved = device if isinstance(device, torch.device) else resolve_device(device)
    return torch.device("cuda", local_rank) if resolved.type == "cuda" and resolved.index is None else resolved


def init_distributed(device: str | torch.device = "auto") -> DistContext:
    """Join torchrun's process group when WORLD_SIZE > 1 (idempotent); returns this process's context."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = rank_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistContext(rank, world_size, local_rank, dev)


def shutdown() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_initialized():
        dist.destroy_process_group()


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The elementwise sum of ``tensor`` over all ranks (a new tensor on its device; itself with one process)."""
    if world_size() == 1:
        return tensor
    on_gpu = dist.get_backend() == "nccl"
    work = tensor.to(torch.device("cuda", torch.cuda.current_device())) if on_gpu else tensor.clone()
    dist.all_reduce(work, op=dist.ReduceOp.SUM)
    return work.to(tensor.device)


def shard(count: int, rank_: int, world: int) -> list[int]:
    """The indices of ``count`` items that one rank handles: every ``world``-th one from ``rank_`` (no padding)."""
    return list(range(rank_, count, world))


def main_first(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 first (downloads, cache writes), then on the others; a failure stops every rank."""
    if world_size() == 1:
        return fn()
    if rank() == 0:
        try:
            result = fn()
        except BaseException:
            all_reduce_sum(torch.ones(1))
            raise
        all_reduce_sum(torch.zeros(1))
        return result
    if all_reduce_sum(torch.zeros(1)).item() > 0:
        raise HSNetError("rank 0 failed while preparing the run; see its message")
    return fn()


def barrier() -> None:
    """Wait for every rank (no-op with one process)."""
    if world_size() > 1:
        dist.barrier()
