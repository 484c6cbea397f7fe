"""Pieces every encoder trainer shares: frame tensors, the LR schedule, the output-directory check, PSNR."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from worldmodel.encoders.base import Encoder
from worldmodel.encoders.common import resize_frames
from worldmodel.errors import InputError


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_out_dir(out_dir: str | Path | None, overwrite: bool) -> None:
    """Refuse to train into a non-empty `out_dir` (a trained model is never replaced by accident)."""
    if out_dir is None or overwrite or not Path(out_dir).exists():
        return
    if Path(out_dir).is_file() or any(Path(out_dir).iterdir()):
        raise InputError(f"out_dir={out_dir} exists and is not empty: pass overwrite=True or choose another")


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warmup, then cosine from 1 down to 0.1."""
    if step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))


def frames_to_tensor(frames: np.ndarray, size: tuple[int, int], field_name: str) -> torch.Tensor:
    """uint8 `[N, H, W, 3]` -> uint8 `[N, 3, h, w]` at the model's size (resized once, not every step)."""
    arr = np.asarray(frames)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3 or len(arr) == 0:
        raise InputError(f"{field_name} must be non-empty uint8 [N, H, W, 3], got {arr.dtype} {arr.shape}")
    x = torch.from_numpy(arr).permute(0, 3, 1, 2)
    if tuple(x.shape[-2:]) == size:
        return x.contiguous()
    chunks = [
        resize_frames(x[i : i + 256].float() / 255.0, size).mul(255.0).round().clamp(0, 255).to(torch.uint8)
        for i in range(0, len(x), 256)
    ]
    return torch.cat(chunks)


def reconstruction_psnr(encoder: Encoder, data: torch.Tensor, batch_size: int) -> float:
    """Mean per-frame PSNR (dB, peak 1.0) of encode -> decode of uint8 `[N, 3, h, w]` at the model's size."""
    if len(data) == 0:
        return float("nan")
    dev = next(encoder.parameters()).device
    values = []
    for i in range(0, len(data), batch_size):
        x = data[i : i + batch_size].to(dev).float() / 255.0
        mse = ((encoder.decode(encoder.encode(x)) - x) ** 2).flatten(1).mean(1).clamp_min(1e-10)
        values.append(-10.0 * torch.log10(mse))
    return float(torch.cat(values).mean())
