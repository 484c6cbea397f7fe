"""The encoder contract every latent space implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import torch
from torch import nn

from worldmodel.errors import WorldModelError


class NoDecoderError(WorldModelError, NotImplementedError):
    """Raised by `Encoder.decode` for encoders that cannot map latents back to pixels themselves (a user error:
    the message names the fix, so the CLI prints it as one line)."""


class Encoder(nn.Module, ABC):
    """A frozen (or separately trained) map from frames to a grid of latent tokens.

    Frames follow LeRobot's convention: float in [0, 1], shape `[B, 3, H, W]`, at any resolution (the encoder
    resizes to what its model needs). Latents are channels-last grids `[B, h, w, D]`, the layout the DiT and
    the latent cache use.
    """

    #: registry name, e.g. "pixels"; recorded in latent caches and world-model configs
    name: str = ""

    @property
    @abstractmethod
    def latent_shape(self) -> tuple[int, int, int]:
        """(h, w, D) of one frame's latent grid."""

    @property
    @abstractmethod
    def image_size(self) -> tuple[int, int]:
        """(H, W) the encoder works at; `decode` returns frames of this size."""

    @property
    def has_decoder(self) -> bool:
        return True

    @property
    def render_dtype(self) -> torch.dtype | None:
        """The dtype `decode` computes in at inference where the encoder picks one for speed (None: its weights')."""
        return None

    @abstractmethod
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """`[B, 3, H, W]` in [0, 1] -> `[B, h, w, D]`."""

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """`[B, h, w, D]` -> `[B, 3, H, W]` in [0, 1]."""
        raise NoDecoderError(
            f"encoder '{self.name}' has no pixel decoder: decode through an adapter with a pixel decoder instead"
        )

    @abstractmethod
    def get_config(self) -> dict[str, Any]:
        """Everything needed to rebuild this encoder with `load_encoder(**config)` (JSON-serialisable).

        It also identifies the latent space: a latent cache refuses to mix latents of different configs.
        """

    def save_pretrained(self, directory: str | Path) -> None:
        """Save trainable weights (if any) so that `load_encoder(name, pretrained=directory)` restores them."""

    def check_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """Validate frames at the API edge with a message that says what was expected."""
        if not isinstance(frames, torch.Tensor):
            raise TypeError(f"frames must be a torch.Tensor, got {type(frames).__name__}")
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"frames must be [B, 3, H, W], got shape {tuple(frames.shape)}")
        if not frames.is_floating_point():
            raise TypeError(
                f"frames must be float in [0, 1], got dtype {frames.dtype}; divide uint8 frames by 255"
            )
        return frames
