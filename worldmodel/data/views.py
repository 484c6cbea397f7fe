"""Turn cached encoder latents into what the DiT models: adapted (per view), views side by side, statistics.

The latent cache stores raw encoder latents, one cache per camera, so one encoding serves every adapter and
every view combination. An adapter is applied to each view separately (the S-VAE attends over one frame's
tokens, as it was trained), then views are concatenated along the grid width, the layout the DiT's 3D RoPE
expects.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from worldmodel.adapters.base import Adapter
from worldmodel.errors import InputError


@torch.inference_mode()
def adapt_latents(
    adapter: Adapter, latents: np.ndarray, batch_size: int = 64, device: str | torch.device | None = None
) -> np.ndarray:
    """Encoder latents `[T, h, w, D]` -> the adapter's deterministic latents `[T, h, w, d]` (float32)."""
    dev = torch.device(device) if device is not None else _device(adapter)
    was_training = adapter.training
    adapter.eval()
    try:
        parts = [
            adapter.encode(
                torch.from_numpy(np.ascontiguousarray(latents[i : i + batch_size])).to(dev).float()
            )
            .float()
            .cpu()
            .numpy()
            for i in range(0, len(latents), batch_size)
        ]
    finally:
        adapter.train(was_training)
    return np.concatenate(parts)


def concat_views(views: Sequence[np.ndarray]) -> np.ndarray:
    """Per-view grids `[T, h, w, C]` -> `[T, h, V * w, C]` (view 0 leftmost); one view is returned as is."""
    if len(views) == 1:
        return views[0]
    shapes = {tuple(v.shape) for v in views}
    if len(shapes) != 1:
        raise InputError(f"every view must have the same latent shape and length, got {sorted(shapes)}")
    return np.concatenate(views, axis=2)


def channel_stats(arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and population std over every frame and grid cell of `[..., C]` arrays (float64 sums)."""
    if not arrays:
        raise InputError("no latents to measure: the training split is empty")
    c = arrays[0].shape[-1]
    total, total_sq, count = np.zeros(c), np.zeros(c), 0
    for a in arrays:
        flat = np.asarray(a, dtype=np.float64).reshape(-1, c)
        total += flat.sum(0)
        total_sq += np.square(flat).sum(0)
        count += len(flat)
    mean = total / count
    return mean, np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))


def _device(module: torch.nn.Module) -> torch.device:
    param = next(module.parameters(), None)
    return param.device if param is not None else torch.device("cpu")
