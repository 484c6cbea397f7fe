"""`mlp`: a per-token MLP autoencoder that squeezes wide latents (e.g. 1152-d SigLIP) to a compact d.

Paper-notes 1.3: encoder and mirrored decoder are each Linear -> GELU -> Linear -> GELU -> Linear,
D -> hidden -> d (hidden defaults to (D + d) / 2). Deterministic, so there is nothing to sample at eval.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from worldmodel.adapters.base import Adapter
from worldmodel.errors import InputError


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, d_out)
    )


class MLPAdapter(Adapter):
    """`[..., D] -> [..., d]` and back, applied to every token independently."""

    name = "mlp"

    def __init__(self, in_dim: int, latent_dim: int, hidden_dim: int | None = None) -> None:
        super().__init__()
        if in_dim < 1 or latent_dim < 1:
            raise InputError(f"in_dim and latent_dim must be positive, got {in_dim} and {latent_dim}")
        self.in_dim = int(in_dim)
        self._latent_dim = int(latent_dim)
        self.hidden_dim = int(hidden_dim) if hidden_dim else (self.in_dim + self._latent_dim) // 2
        self.encoder = _mlp(self.in_dim, self.hidden_dim, self._latent_dim)
        self.decoder = _mlp(self._latent_dim, self.hidden_dim, self.in_dim)

    @property
    def latent_dim(self) -> int:
        return self._latent_dim

    def encode(self, latents: torch.Tensor) -> torch.Tensor:
        if latents.shape[-1] != self.in_dim:
            raise InputError(
                f"latents must have {self.in_dim} channels last, got shape {tuple(latents.shape)}"
            )
        return self.encoder(latents)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if z.shape[-1] != self._latent_dim:
            raise InputError(f"z must have {self._latent_dim} channels last, got shape {tuple(z.shape)}")
        return self.decoder(z)

    def get_config(self) -> dict[str, Any]:
        return {
            "type": self.name,
            "in_dim": self.in_dim,
            "latent_dim": self._latent_dim,
            "hidden_dim": self.hidden_dim,
        }
