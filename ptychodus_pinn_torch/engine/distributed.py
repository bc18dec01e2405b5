"""torch.distributed set-up for multi-process training launched by ``torchrun``.

``torchrun --nproc-per-node K pinn-torch train ...`` starts K processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in the environment;
:func:`init_distributed` joins them into one process group (``nccl`` on CUDA, ``gloo``
otherwise) through the ``env://`` rendezvous. A plain single-process run is unaffected.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a (possibly trivial) process group.

    rank/world_size: global; local_rank: index on this node (selects the GPU);
    owns_group: True when :func:`init_distributed` created the group (and so must destroy it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    owns_group: bool = False

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, archives and other outputs."""
        return self.rank == 0


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when unset); ValueError if it is not a number."""
    raw = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(raw)
    except ValueError:
        raise ValueError(
            f"environment WORLD_SIZE={raw!r} is not an integer; launch with torchrun or unset it"
        ) from None


def init_distributed(device_type: str) -> DistContext:
    """Join the torchrun process group if there is one; otherwise a single-process context.

    ``device_type`` is ``"cuda"`` (backend nccl) or anything else (backend gloo). If a process
    group already exists (the caller set it up) it is used as is and not destroyed later.
    """
    if dist.is_available() and dist.is_initialized():
        return DistContext(
            rank=dist.get_rank(),
            world_size=dist.get_world_size(),
            local_rank=int(os.environ.get("LOCAL_RANK", dist.get_rank())),
            backend=str(dist.get_backend()),
            owns_group=False,
        )
    world = env_world_size()
    if world <= 1:
        return DistContext()
    if not dist.is_available():
        raise ValueError("WORLD_SIZE > 1 but this torch build has no torch.distributed support")
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ValueError(
            f"WORLD_SIZE={world} but {', '.join(missing)} not set; launch with "
            "`torchrun --nproc-per-node K pinn-torch train ...`"
        )
    backend = "nccl" if device_type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, init_method="env://")
    return DistContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        backend=backend,
        owns_group=True,
    )


def local_rank_from_env() -> int | None:
    """``LOCAL_RANK`` when launched by torchrun, else None."""
    raw = os.environ.get("LOCAL_RANK")
    return None if raw is None else int(raw)


def _all_reduce(values: torch.Tensor, op: Any, ctx: DistContext) -> torch.Tensor:
    """``dist.all_reduce`` in place. NCCL reduces only CUDA tensors, so a CPU tensor (the
    engine's small loss/flag vectors) travels through this rank's GPU and back."""
    if not ctx.is_distributed:
        return values
    if ctx.backend == "nccl" and values.device.type != "cuda":
        on_gpu = values.to(torch.device("cuda", torch.cuda.current_device()))
        dist.all_reduce(on_gpu, op=op)
        values.copy_(on_gpu.cpu())
    else:
        dist.all_reduce(values, op=op)
    return values


def all_reduce_sum(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum ``values`` over all ranks (in place; a no-op in a single process)."""
    return _all_reduce(values, dist.ReduceOp.SUM, ctx)


def all_reduce_max(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Element-wise maximum over all ranks (in place; a no-op in a single process)."""
    return _all_reduce(values, dist.ReduceOp.MAX, ctx)


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op in a single process)."""
    if ctx.is_distributed:
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    """Destroy the process group if this module created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()
