"""torch.distributed helpers: set up from ``torchrun``'s environment, reduce, gather, barrier.

A script that uses these runs unchanged as one process (``python train.py``) or as N processes
(``torchrun --nproc_per_node=N train.py``): ``torchrun`` sets ``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``, and ``init_distributed`` reads them. The backend
is NCCL on CUDA and Gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "DistributedContext",
    "all_gather_objects",
    "barrier",
    "broadcast_object",
    "init_distributed",
    "mean_across_ranks",
    "shutdown_distributed",
]


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in the job.

    Attributes:
        rank: global rank, 0 .. world_size - 1.
        local_rank: rank on this machine (picks the GPU).
        world_size: number of processes.
        device: the device this process trains on.
        backend: ``"nccl"``, ``"gloo"`` or ``None`` when not distributed.
        owns_process_group: whether ``init_distributed`` created the process group (and
            ``shutdown_distributed`` should destroy it).
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None
    owns_process_group: bool = False

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only process that writes files and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def init_distributed(device: str | torch.device | None = None) -> DistributedContext:
    """Join the process group described by ``torchrun``'s environment variables, if any.

    Args:
        device: ``"cpu"``, ``"cuda"`` or None (CUDA when available). Under several processes on
            CUDA each process takes GPU ``LOCAL_RANK``.

    Returns:
        The context; a single-process context when ``WORLD_SIZE`` is unset or 1.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank if world_size > 1 else torch.cuda.current_device())
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size <= 1:
        return DistributedContext(device=dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
        owns = True
    return DistributedContext(
        rank=dist.get_rank(),
        local_rank=local_rank,
        world_size=dist.get_world_size(),
        device=dev,
        backend=str(dist.get_backend()),
        owns_process_group=owns,
    )


def shutdown_distributed(ctx: DistributedContext) -> None:
    """Destroy the process group if ``init_distributed`` created it."""
    if ctx.owns_process_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistributedContext) -> None:
    """Wait for every rank (no-op in a single process)."""
    if ctx.distributed:
        if ctx.backend == "nccl":
            dist.barrier(device_ids=[ctx.device.index or 0])
        else:
            dist.barrier()


def mean_across_ranks(value: torch.Tensor, ctx: DistributedContext) -> torch.Tensor:
    """The mean of ``value`` over all ranks (``value`` itself in a single process)."""
    if not ctx.distributed:
        return value
    out = value.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / ctx.world_size


def all_gather_objects(obj: Any, ctx: DistributedContext) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` in a single process."""
    if not ctx.distributed:
        return [obj]
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(obj: Any, ctx: DistributedContext, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]
