"""`svae`: the S-VAE adapter that squeezes wide encoder tokens into a compact Gaussian latent.

Semantic features (1024-d DINO, 1152-d SigLIP) are hard for a DiT to model directly; the paper maps each frame's
tokens to d=96 channels with a small transformer VAE and models those instead. Per frame on the latent grid:
encoder = `num_layers` pre-LN transformer layers at width D -> LayerNorm -> Linear D -> 2d (mu, logvar) ->
diagonal Gaussian, sampled in training and its mean at eval; decoder = Linear d -> D -> `num_layers` layers ->
LayerNorm. Attention runs over the tokens of one frame (no position embedding: encoder tokens already carry it).
The final LayerNorm suits ViT features (themselves LayerNorm outputs) but forces every token to one norm, which
pixel or VAE tokens do not have (measured on PushT `pixels` tokens: held-out explained variance 0.02 with it,
0.92 without, same 150 steps): `output_norm=False` drops it for such encoders.

Two sets of statistics ride along as buffers, so they are saved in the safetensors file:
- `input_mean` / `input_std` [D]: per-channel standardisation of the encoder's tokens, applied inside `encode`
  and undone by `decode` (wide semantic channels differ in scale by orders of magnitude; without it the
  reconstruction loss fits only the loudest ones). Set by training; identity (0 / 1) for a fresh adapter.
- `latent_mean` / `latent_std` [d]: per-channel statistics of z (the mean) over the training set, which the
  world-model trainer uses to normalise what the DiT sees (`latent_statistics()`).
An optional `PixelDecoder` (`pixel_decoder` config) maps z to RGB for encoders without a decoder of their own.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from worldmodel.adapters.base import Adapter
from worldmodel.adapters.pixel_decoder import PixelDecoder, PixelDecoderConfig
from worldmodel.errors import InputError


def _layers(width: int, num_layers: int, num_heads: int, ffn_dim: int) -> nn.ModuleList:
    """ViT-MAE-style pre-LN layers (GELU FFN, no dropout)."""
    return nn.ModuleList(
        nn.TransformerEncoderLayer(
            width, num_heads, ffn_dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        for _ in range(num_layers)
    )


class SVAEAdapter(Adapter):
    """`[B, h, w, D] -> [B, h, w, d]` (Gaussian, mean at eval) and back; see the module docstring."""

    name = "svae"

    def __init__(
        self,
        in_dim: int,
        latent_dim: int = 96,
        num_layers: int = 3,
        num_heads: int = 12,
        ffn_dim: int = 3072,
        pixel_decoder: dict[str, Any] | None = None,
        output_norm: bool = True,
    ) -> None:
        super().__init__()
        if in_dim < 1 or latent_dim < 1 or num_layers < 0 or num_heads < 1 or ffn_dim < 1:
            raise InputError(
                "svae: in_dim, latent_dim, num_heads and ffn_dim must be positive and num_layers >= 0"
            )
        if in_dim % num_heads:
            raise InputError(
                f"svae: num_heads={num_heads} must divide the encoder width in_dim={in_dim}: pick a divisor"
            )
        self.in_dim, self._latent_dim = int(in_dim), int(latent_dim)
        self.num_layers, self.num_heads, self.ffn_dim = int(num_layers), int(num_heads), int(ffn_dim)
        self.enc_layers = _layers(self.in_dim, self.num_layers, self.num_heads, self.ffn_dim)
        self.enc_norm = nn.LayerNorm(self.in_dim)
        self.to_moments = nn.Linear(self.in_dim, 2 * self._latent_dim)
        self.from_latent = nn.Linear(self._latent_dim, self.in_dim)
        self.dec_layers = _layers(self.in_dim, self.num_layers, self.num_heads, self.ffn_dim)
        self.output_norm = bool(output_norm)
        self.dec_norm = nn.LayerNorm(self.in_dim) if self.output_norm else nn.Identity()
        self.pixel_decoder = (
            None
            if pixel_decoder is None
            else PixelDecoder(self._latent_dim, PixelDecoderConfig(**pixel_decoder))
        )
        self.register_buffer("input_mean", torch.zeros(self.in_dim))
        self.register_buffer("input_std", torch.ones(self.in_dim))
        self.register_buffer("latent_mean", torch.zeros(self._latent_dim))
        self.register_buffer("latent_std", torch.ones(self._latent_dim))
        self.register_buffer(
            "stat_tokens", torch.zeros((), dtype=torch.int64)
        )  # 0: z statistics not measured

    @property
    def latent_dim(self) -> int:
        return self._latent_dim

    @property
    def has_pixel_decoder(self) -> bool:
        return self.pixel_decoder is not None

    # ---- the pieces training needs separately --------------------------------------------------------------
    def normalize_input(self, latents: torch.Tensor) -> torch.Tensor:
        if latents.shape[-1] != self.in_dim:
            raise InputError(
                f"latents must have {self.in_dim} channels last, got shape {tuple(latents.shape)}"
            )
        return (latents - self.input_mean) / self.input_std

    def moments(self, x_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardised tokens `[B, h, w, D]` -> (mu, logvar), each `[B, h, w, d]`."""
        b, h, w, _ = x_norm.shape
        x = x_norm.reshape(b, h * w, self.in_dim)
        for layer in self.enc_layers:
            x = layer(x)
        mu, logvar = self.to_moments(self.enc_norm(x)).chunk(2, dim=-1)
        shape = (b, h, w, self._latent_dim)
        return mu.reshape(shape), logvar.clamp(-30.0, 20.0).reshape(shape)

    def decode_normalized(self, z: torch.Tensor) -> torch.Tensor:
        """z `[B, h, w, d]` -> standardised tokens `[B, h, w, D]` (the space the loss compares in)."""
        if z.ndim != 4 or z.shape[-1] != self._latent_dim:
            raise InputError(f"z must be [B, h, w, {self._latent_dim}], got shape {tuple(z.shape)}")
        b, h, w, _ = z.shape
        x = self.from_latent(z.reshape(b, h * w, self._latent_dim))
        for layer in self.dec_layers:
            x = layer(x)
        return self.dec_norm(x).reshape(b, h, w, self.in_dim)

    def sample(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Reparameterised draw in training, the mean at eval (the paper's deterministic z = mu)."""
        if not self.training:
            return mu
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    # ---- the Adapter contract ------------------------------------------------------------------------------
    def encode(self, latents: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.moments(self.normalize_input(latents))
        return self.sample(mu, logvar)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode_normalized(z) * self.input_std + self.input_mean

    def decode_pixels(self, z: torch.Tensor) -> torch.Tensor:
        if self.pixel_decoder is None:
            return super().decode_pixels(z)
        return self.pixel_decoder(z)

    def latent_statistics(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        if int(self.stat_tokens) == 0:
            return None
        return self.latent_mean, self.latent_std

    def set_input_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.input_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.input_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-6))

    def set_latent_statistics(self, mean: torch.Tensor, std: torch.Tensor, tokens: int) -> None:
        self.latent_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.latent_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-6))
        self.stat_tokens.fill_(int(tokens))

    def get_config(self) -> dict[str, Any]:
        return {
            "type": self.name,
            "in_dim": self.in_dim,
            "latent_dim": self._latent_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "ffn_dim": self.ffn_dim,
            "output_norm": self.output_norm,
            "pixel_decoder": None if self.pixel_decoder is None else self.pixel_decoder.config.to_dict(),
        }
