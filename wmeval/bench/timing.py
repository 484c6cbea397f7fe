"""Small timing helpers shared by the benchmarks."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable

import torch

from worldmodel.encoders.precision import dtype_name


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(fn: Callable[[], object], device: torch.device, repeats: int = 3, warmup: int = 1) -> float:
    """Fastest of `repeats` runs in seconds (the minimum is the least noisy estimate on a shared machine)."""
    for _ in range(warmup):
        fn()
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def environment(device: torch.device, dtype: torch.dtype) -> dict[str, str | int]:
    """What every bench entry names: device, dtype and versions."""
    info: dict[str, str | int] = {
        "device": str(device),
        "dtype": dtype_name(dtype),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda or ""
    return info


def matmul_flops(device: torch.device, dtype: torch.dtype, n: int = 2048) -> float:
    """Dense matmul FLOP/s at this dtype in this process: the denominator of MFU."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    seconds = best_time(lambda: a @ b, device, repeats=5)
    return 2 * n**3 / seconds
