"""Spread independent rollout units over processes: local worker processes, or torchrun ranks.

A ranking is a list of independent units (one policy in one world, every start state): each unit seeds
itself, so where it runs does not change its numbers. Under torchrun (`WORLD_SIZE` > 1) rank r takes units
r, r + world_size, ... and every rank gets every result back (gloo, so CPU and GPU alike); otherwise `workers`
> 1 runs them in that many spawned local processes, one torch thread each. Either way the results come back
in the units' order, so the report is the one a single process writes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from worldmodel.training.distributed import DistInfo, setup_distributed

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Sharding:
    """How a run's units were spread: `world_size` torchrun processes, each with `workers` local processes."""

    world_size: int = 1
    rank: int = 0
    workers: int = 1
    device: str | None = None  # this process's device under torchrun (one replica per GPU), else None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self, units: int) -> dict[str, Any]:
        """The report's record of the split."""
        return {
            "world_size": self.world_size,
            "workers": self.workers,
            "units": units,
            "unit": "one policy in one world, every start state",
            "split": "round robin over torchrun ranks"
            if self.world_size > 1
            else "dynamic over local workers",
        }


def resolve_workers(workers: int | str) -> int:
    """`auto` -> the CPU cores this process may use; an int >= 1 as given."""
    if workers == "auto":
        return max(
            1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        )
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers={workers!r} must be an integer >= 1 or auto")
    return workers


def current_sharding(workers: int | str = 1, device: str = "cpu") -> tuple[Sharding, DistInfo]:
    """This process's place: joins torchrun's process group when launched by it (then one worker per rank)."""
    info = setup_distributed(device)
    if info.world_size > 1:
        return Sharding(info.world_size, info.rank, 1, str(info.device)), info
    return Sharding(workers=resolve_workers(workers)), info


def _init_worker() -> None:
    torch.set_num_threads(1)  # one process per core; a fixed thread count keeps float paths identical


def map_units(
    fn: Callable[[T], R],
    units: Sequence[T],
    sharding: Sharding,
    *,
    desc: str = "units",
    progress: bool = True,
) -> list[R]:
    """`[fn(u) for u in units]`, spread as `sharding` says; `fn` must be a module-level function."""
    if sharding.world_size > 1:
        mine = {i: fn(units[i]) for i in range(sharding.rank, len(units), sharding.world_size)}
        gathered: list[dict[int, R] | None] = [None] * sharding.world_size
        dist.all_gather_object(gathered, mine)
        merged = {i: r for part in gathered for i, r in (part or {}).items()}
        return [merged[i] for i in range(len(units))]
    workers = min(sharding.workers, len(units))
    if workers <= 1:
        return [fn(u) for u in units]
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
        results = pool.map(fn, units)
        return list(tqdm(results, total=len(units), desc=desc, unit="unit", disable=not progress))
