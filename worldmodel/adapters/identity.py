"""`identity`: the DiT models the encoder's latents as they are (VAE-family and "native" semantic runs)."""

from __future__ import annotations

from typing import Any

import torch

from worldmodel.adapters.base import Adapter
from worldmodel.errors import InputError


class IdentityAdapter(Adapter):
    """Pass-through that still checks the channel count, so a wrong encoder/adapter pairing fails early."""

    name = "identity"

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        if in_dim < 1:
            raise InputError(f"in_dim must be positive, got {in_dim}")
        self.in_dim = int(in_dim)

    @property
    def latent_dim(self) -> int:
        return self.in_dim

    def _check(self, x: torch.Tensor, what: str) -> torch.Tensor:
        if x.shape[-1] != self.in_dim:
            raise InputError(f"{what} must have {self.in_dim} channels last, got shape {tuple(x.shape)}")
        return x

    def encode(self, latents: torch.Tensor) -> torch.Tensor:
        return self._check(latents, "latents")

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self._check(z, "z")

    def get_config(self) -> dict[str, Any]:
        return {"type": self.name, "in_dim": self.in_dim}
