"""Short sample videos: real | imagined side by side, one row per episode, as an animated GIF."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from wmeval.io import atomic_path


def side_by_side(real: np.ndarray, imagined: np.ndarray) -> np.ndarray:
    """Float `[N, T, 3, H, W]` pairs -> uint8 frames `[T, N*H, 2*W + 2, 3]` (a white bar between the worlds)."""
    n, t, _, h, w = real.shape
    bar = np.ones((n, t, 3, h, 2), dtype=real.dtype)
    rows = np.concatenate((real, bar, imagined), axis=-1)  # [N, T, 3, H, 2W+2]
    grid = rows.transpose(1, 0, 3, 4, 2).reshape(t, n * h, 2 * w + 2, 3)
    return (np.clip(grid, 0, 1) * 255).round().astype(np.uint8)


def write_side_by_side_gif(
    path: str | Path, real: np.ndarray, imagined: np.ndarray, fps: float = 4.0
) -> Path:
    frames = side_by_side(real, imagined)
    with atomic_path(path) as tmp:
        imageio.mimsave(tmp, list(frames), format="GIF", duration=1000 / fps, loop=0)
    return Path(path)
