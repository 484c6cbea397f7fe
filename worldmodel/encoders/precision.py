"""Which precision a renderer runs in at inference, and how reports and benchmarks name a dtype."""

from __future__ import annotations

from functools import cache

import torch

RENDER_DTYPES = ("auto", "float32", "bfloat16")


@cache
def native_cpu_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX); elsewhere bf16 is emulated, slower."""
    cpu = torch._C._cpu
    return any(
        getattr(cpu, name, lambda: False)()
        for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )


def resolve_render_dtype(name: str, device: torch.device) -> torch.dtype:
    """A `render_dtype` setting -> the dtype a renderer's convolutions run in on `device` (auto: bf16 on CPUs
    that have it natively; a GPU keeps float32, the renderer is not its bottleneck)."""
    if name == "auto":
        return torch.bfloat16 if device.type == "cpu" and native_cpu_bf16() else torch.float32
    return getattr(torch, name)


def dtype_name(dtype: torch.dtype) -> str:
    """`torch.bfloat16` -> "bfloat16", as reports and benchmarks print it."""
    return str(dtype).removeprefix("torch.")
