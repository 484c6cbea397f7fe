"""Small helpers every encoder family shares: image-size parsing and the one resize they all use."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from worldmodel.errors import InputError


def parse_size(image_size: int | Sequence[int], field: str = "image_size") -> tuple[int, int]:
    """`96` or `(96, 96)` or `[96, 96]` -> `(96, 96)`; JSON configs round-trip tuples as lists."""
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        size = (image_size, image_size)
    else:
        try:
            size = tuple(int(s) for s in image_size)  # type: ignore[union-attr]
        except TypeError as err:
            raise InputError(f"{field} must be an int or (H, W), got {image_size!r}") from err
    if len(size) != 2 or min(size) <= 0:
        raise InputError(f"{field} must be a positive int or (H, W), got {image_size!r}")
    return size  # type: ignore[return-value]


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of `[B, C, H, W]` to `size`; a no-op (same tensor) when already there.

    Antialiasing matters when downsampling (96 -> 64): without it thin PushT edges alias into moire that the
    world model would then have to learn.
    """
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    return F.interpolate(frames, size=size, mode="bilinear", antialias=True, align_corners=False)
