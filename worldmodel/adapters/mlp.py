"""`mlp`: a per-token MLP autoencoder that squeezes wide latents (e.g. 1152-d SigLIP) to a compact d.

Paper-notes 1.3: encoder and mirrored decoder are each Linear -> GELU -> Linear -> GELU -> Linear,
D -> hidden -> d (hidden defaults to (D + d) / 2). Deterministic, so there is nothing to sample at eval.
With `input_norm=True` the adapter standardises the encoder's tokens itself (per-channel `input_mean` /
`input_std` buffers, set by training and saved with the weights) and undoes it in `decode`, so it can be fed
raw encoder latents, as `WorldModel` does.
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

    def __init__(
        self, in_dim: int, latent_dim: int, hidden_dim: int | None = None, input_norm: bool = False
    ) -> None:
        super().__init__()
        if in_dim < 1 or latent_dim < 1:
            raise InputError(f"in_dim and latent_dim must be positive, got {in_dim} and {latent_dim}")
        self.in_dim = int(in_dim)
        self._latent_dim = int(latent_dim)
        self.hidden_dim = int(hidden_dim) if hidden_dim else (self.in_dim + self._latent_dim) // 2
        self.encoder = _mlp(self.in_dim, self.hidden_dim, self._latent_dim)
        self.decoder = _mlp(self._latent_dim, self.hidden_dim, self.in_dim)
        self.input_norm = bool(input_norm)
        if self.input_norm:
            self.register_buffer("input_mean", torch.zeros(self.in_dim))
            self.register_buffer("input_std", torch.ones(self.in_dim))

    @property
    def latent_dim(self) -> int:
        return self._latent_dim

    def normalize_input(self, latents: torch.Tensor) -> torch.Tensor:
        """Standardised tokens (the space training compares in); a no-op without `input_norm`."""
        if latents.shape[-1] != self.in_dim:
            raise InputError(
                f"latents must have {self.in_dim} channels last, got shape {tuple(latents.shape)}"
            )
        return (latents - self.input_mean) / self.input_std if self.input_norm else latents

    def set_input_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        if not self.input_norm:
            raise InputError("this mlp adapter was built with input_norm=False: it has no input statistics")
        self.input_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.input_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-6))

    def encode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.normalize_input(latents))

    def decode_normalized(self, z: torch.Tensor) -> torch.Tensor:
        if z.shape[-1] != self._latent_dim:
            raise InputError(f"z must have {self._latent_dim} channels last, got shape {tuple(z.shape)}")
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self.decode_normalized(z)
        return out * self.input_std + self.input_mean if self.input_norm else out

    def get_config(self) -> dict[str, Any]:
        return {
            "type": self.name,
            "in_dim": self.in_dim,
            "latent_dim": self._latent_dim,
            "hidden_dim": self.hidden_dim,
            **({"input_norm": True} if self.input_norm else {}),
        }
