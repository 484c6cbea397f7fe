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

from worldmodel.encoders.frozen import KLVAEEncoder, check_chunk_size
from worldmodel.errors import InputError, MissingWeightsError


class SD3VAEEncoder(KLVAEEncoder):
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
        self.set_size(image_size)
        self.finish_loading(fingerprint)

    def options(self) -> dict[str, Any]:
        return {"image_size": list(self._size), "latent": self.latent}
