"""Small helpers every encoder family shares: image-size parsing, the one resize they all use, and the latent
geometry of the families built on a diffusers `AutoencoderKL`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


class AutoencoderKLGeometry:
    """Sizes of an encoder that runs a diffusers `AutoencoderKL` (`self.vae`) at `self._size` (conv_vae, sd3_vae,
    vavae): read off the VAE's config, so a loaded checkpoint, not a constructor default, decides the grid."""

    vae: Any
    _size: tuple[int, int]

    @property
    def image_size(self) -> tuple[int, int]:
        return self._size

    @property
    def downsample(self) -> int:
        """Every level but the last halves the resolution."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        f = self.downsample
        return (self._size[0] // f, self._size[1] // f, int(self.vae.config.latent_channels))
