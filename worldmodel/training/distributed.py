"""One code path for one process, one GPU or many (torchrun sets RANK / WORLD_SIZE / LOCAL_RANK)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclass
class DistInfo:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str = "auto") -> DistInfo:
    """Join the process group when launched by torchrun (NCCL on GPU, gloo on CPU); else a single process."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistInfo(0, 1, torch.device(device))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank, world_size, dev)


def all_reduce_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.world_size > 1:
        value = value.detach().clone()
        dist.all_reduce(value)
        value /= info.world_size
    return value


def on_main(make: Callable[[], T], info: DistInfo) -> T:
    """`make()` on rank 0 only; every process gets its result (or raises its error).

    For side effects that must happen once, like preparing an output folder: with `overwrite=true`
    every process would otherwise delete the folder the others are writing into, and without `out=`
    each could pick a different timestamp. The result must be picklable.
    """
    if info.world_size == 1:
        return make()
    shared: list[object] = [None]
    if info.is_main:
        try:
            shared[0] = ("ok", make())
        except Exception as err:  # every process must leave the broadcast, then raise the same error
            shared[0] = ("error", err)
    dist.broadcast_object_list(shared, src=0)
    status, value = shared[0]  # type: ignore[misc]
    if status == "error":
        raise value  # type: ignore[misc]
    return value  # type: ignore[return-value]


def cleanup_distributed(wait_for_peers: bool = True) -> None:
    """Leave the process group. On success every rank waits for the others first: gloo can abort a rank whose
    peer tore its connections down mid-exit. A failing rank leaves at once (its peers may never arrive)."""
    if dist.is_initialized():
        if wait_for_peers:
            dist.barrier()
        dist.destroy_process_group()
