"""`sd3_vae`: the Stable Diffusion 3 VAE (diffusers `AutoencoderKL`, default
`stabilityai/stable-diffusion-3-medium-diffusers`, subfolder `vae`), the paper's reconstruction baseline "VAE".

Latent (paper/seed): frames in [0, 1] -> x * 2 - 1 -> posterior **sample** (not the mode) times the config's
`scaling_factor` (1.5305 for SD3; SD3's `shift_factor` is *not* subtracted, as in the seed). 256x256 -> 32x32x16
(8x downsampling), which the DiT patchifies with p=2 into the same 256 tokens per frame as the other encoders.
`latent="mode"` gives the posterior mean instead (deterministic, so a latent cache is reproducible without a
seed). Sampling draws from the global torch RNG, or from `encode(frames, generator=...)`.

Frames of another size are resized (antialiased bilinear) to `image_size` first; `decode` divides by the scaling
factor, decodes and maps back to [0, 1] at `image_size`. Frames (and latents) go through the VAE in chunks of
`chunk_size` (64, as the seed), a memory setting that does not change the latent space and is not in the config.

Weights: a diffusers pipeline directory with `vae/` (or a Hub snapshot of one; only `vae/*` is fetched), or an
`AutoencoderKL` directory written by `save_pretrained`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import torch

from worldmodel.encoders.common import parse_size, resize_frames
from worldmodel.encoders.frozen import FrozenEncoder, check_chunk_size, chunked
from worldmodel.errors import InputError, MissingWeightsError


class SD3VAEEncoder(FrozenEncoder):
    """Frozen SD3 `AutoencoderKL`; see the module docstring for the latent convention."""

    name = "sd3_vae"
    default_pretrained = "stabilityai/stable-diffusion-3-medium-diffusers"
    hub_files = ["vae/*", "config.json", "diffusion_pytorch_model*"]

    def __init__(
        self,
        pretrained: str | None = None,
        image_size: int | Sequence[int] = 256,
        latent: str = "sample",
        chunk_size: int = 64,
        dtype: str = "float32",
        fingerprint: str | None = None,
    ) -> None:
        from diffusers import AutoencoderKL

        if latent not in ("sample", "mode"):
            raise InputError(
                f"latent must be 'sample' (the paper) or 'mode' (posterior mean), got {latent!r}"
            )
        super().__init__(pretrained, dtype)
        self.latent, self.chunk_size = latent, check_chunk_size(chunk_size)
        directory = self.resolve()
        folder = directory / "vae" if (directory / "vae" / "config.json").is_file() else directory
        if not (folder / "config.json").is_file():
            raise MissingWeightsError(
                f"{self.what}: neither {directory}/vae nor {directory} has a config.json: pass a diffusers "
                "pipeline directory (with vae/) or an AutoencoderKL directory written by save_pretrained"
            )
        try:
            self.vae = AutoencoderKL.from_pretrained(folder)
        except (OSError, ValueError, json.JSONDecodeError) as err:
            raise MissingWeightsError(
                f"{self.what}: could not load AutoencoderKL from {folder} ({err})"
            ) from err
        self._size = parse_size(image_size)
        down = self.downsample
        if self._size[0] % down or self._size[1] % down:
            raise InputError(f"{self.what}: image_size {self._size} must be divisible by {down}")
        self.finish_loading(fingerprint)

    @property
    def image_size(self) -> tuple[int, int]:
        return self._size

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        f = self.downsample
        return (self._size[0] // f, self._size[1] // f, int(self.vae.config.latent_channels))

    def encode(self, frames: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = resize_frames(self.check_frames(frames), self._size)
        p = self.model_param()
        x = x.to(device=p.device, dtype=p.dtype) * 2.0 - 1.0

        def one(chunk: torch.Tensor) -> torch.Tensor:
            dist = self.vae.encode(chunk).latent_dist
            return dist.sample(generator) if self.latent == "sample" else dist.mode()

        with torch.no_grad():
            z = chunked(one, x, self.chunk_size) * self.scaling_factor
        return z.permute(0, 2, 3, 1).float().contiguous()

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        p = self.model_param()
        z = (
            self.check_latents(latents).permute(0, 3, 1, 2).to(device=p.device, dtype=p.dtype)
            / self.scaling_factor
        )
        with torch.no_grad():
            x = chunked(lambda c: self.vae.decode(c).sample, z, self.chunk_size)
        return ((x.float() + 1.0) * 0.5).clamp(0.0, 1.0)

    def options(self) -> dict[str, Any]:
        return {"image_size": list(self._size), "latent": self.latent}
