"""The adapter contract: a (frozen) map between an encoder's latents and the compact space the DiT models."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import nn


class Adapter(nn.Module, ABC):
    """Per-token map `[B, h, w, D] -> [B, h, w, d]` and back. Trained before the DiT, frozen while it trains."""

    name: str = ""

    @property
    @abstractmethod
    def latent_dim(self) -> int:
        """d, the channel count the DiT sees."""

    @abstractmethod
    def encode(self, latents: torch.Tensor) -> torch.Tensor:
        """`[B, h, w, D] -> [B, h, w, d]` (deterministic: the mean at eval)."""

    @abstractmethod
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """`[B, h, w, d] -> [B, h, w, D]`."""

    @property
    def has_pixel_decoder(self) -> bool:
        return False

    def decode_pixels(self, z: torch.Tensor) -> torch.Tensor:
        """`[B, h, w, d] -> [B, 3, H, W]` in [0, 1], for adapters that carry a pixel decoder."""
        raise NotImplementedError(f"adapter '{self.name}' has no pixel decoder")

    def latent_statistics(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Per-channel (mean, std) of `encode` over the adapter's training set, when it measured them.

        The world-model trainer normalises DiT inputs with these, so every DiT on one adapter shares a scale.
        """
        return None

    @abstractmethod
    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable config that rebuilds this adapter with `build_adapter(**config)`."""
