"""`cosmos`: NVIDIA Cosmos Tokenizer CI16x16, the continuous image tokenizer, from its TorchScript files.

Loading: `torch.jit.load` of `encoder.jit` and `decoder.jit` in a directory (the release format; default Hub id
`nvidia/Cosmos-0.1-Tokenizer-CI16x16`, only those two files are fetched). No `cosmos_tokenizer` package needed.
A directory without `decoder.jit` still encodes; `decode` then raises `NoDecoderError`.

Latent (seed): frames in [0, 1] -> x * 2 - 1 -> the encoder's latent (first element when the script returns a
tuple), unscaled: 256x256 -> 16x16x16 (16x spatial compression, 16 channels). `decode` runs the decoder and maps
[-1, 1] back to [0, 1]. Frames are resized (antialiased bilinear) to `image_size` and encoded in chunks of
`chunk_size` (a memory setting, not in the config). `spatial_compression` / `latent_channels` describe the
tokenizer (16 / 16 for CI16x16, 8 / 16 for CI8x8) and are checked against what the script actually returns.
The seed cast the scripts to bfloat16 (`dtype="bfloat16"`); whether the released scripts have dtype or device
constants baked in that resist casting or CPU use is unverified here.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch

from worldmodel.encoders.base import NoDecoderError
from worldmodel.encoders.common import parse_size, resize_frames
from worldmodel.encoders.frozen import FrozenEncoder, check_chunk_size, chunked
from worldmodel.errors import InputError, MissingWeightsError


def first(out: Any) -> torch.Tensor:
    """Cosmos scripts return a tensor or a tuple whose first element is the tensor (`(latent,)`)."""
    return out[0] if isinstance(out, (tuple, list)) else out


class CosmosEncoder(FrozenEncoder):
    """Frozen Cosmos continuous image tokenizer (TorchScript); see the module docstring."""

    name = "cosmos"
    default_pretrained = "nvidia/Cosmos-0.1-Tokenizer-CI16x16"
    hub_files = ["encoder.jit", "decoder.jit"]

    def __init__(
        self,
        pretrained: str | None = None,
        image_size: int | Sequence[int] = 256,
        spatial_compression: int = 16,
        latent_channels: int = 16,
        chunk_size: int = 64,
        dtype: str = "float32",
        fingerprint: str | None = None,
    ) -> None:
        super().__init__(pretrained, dtype)
        self.chunk_size = check_chunk_size(chunk_size)
        self.compression, self.channels = int(spatial_compression), int(latent_channels)
        self._size = parse_size(image_size)
        if self._size[0] % self.compression or self._size[1] % self.compression:
            raise InputError(f"{self.what}: image_size {self._size} must be divisible by {self.compression}")
        directory = self.resolve()
        enc_path, dec_path = directory / "encoder.jit", directory / "decoder.jit"
        if not enc_path.is_file():
            raise MissingWeightsError(
                f"{self.what}: {directory} has no encoder.jit: pass the Cosmos tokenizer directory holding "
                "encoder.jit and decoder.jit"
            )
        try:
            with warnings.catch_warnings():  # TorchScript is deprecated, but it is the format Cosmos ships
                warnings.filterwarnings("ignore", message=".*torch.jit.load.*", category=DeprecationWarning)
                self.jit_encoder = torch.jit.load(str(enc_path), map_location="cpu")
                self.jit_decoder = (
                    torch.jit.load(str(dec_path), map_location="cpu") if dec_path.is_file() else None
                )
        except RuntimeError as err:
            raise MissingWeightsError(
                f"{self.what}: could not torch.jit.load from {directory} ({err})"
            ) from err
        self.finish_loading(fingerprint)

    @property
    def image_size(self) -> tuple[int, int]:
        return self._size

    @property
    def has_decoder(self) -> bool:
        return self.jit_decoder is not None

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        c = self.compression
        return (self._size[0] // c, self._size[1] // c, self.channels)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        x = resize_frames(self.check_frames(frames), self._size)
        p = self.model_param()
        x = x.to(device=p.device, dtype=p.dtype) * 2.0 - 1.0
        with torch.no_grad():
            z = chunked(lambda c: first(self.jit_encoder(c)), x, self.chunk_size)
        h, w, d = self.latent_shape
        if tuple(z.shape[1:]) != (d, h, w):
            raise InputError(
                f"{self.what}: the encoder returned latents {tuple(z.shape)}, expected [B, {d}, {h}, {w}]: set "
                "spatial_compression / latent_channels to match this tokenizer"
            )
        return z.permute(0, 2, 3, 1).float().contiguous()

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        if self.jit_decoder is None:
            raise NoDecoderError(
                f"{self.what}: {self.pretrained} has no decoder.jit: add it to decode latents"
            )
        p = self.model_param()
        z = self.check_latents(latents).permute(0, 3, 1, 2).to(device=p.device, dtype=p.dtype)
        with torch.no_grad():
            x = chunked(lambda c: first(self.jit_decoder(c)), z, self.chunk_size)
        return ((x.float() + 1.0) * 0.5).clamp(0.0, 1.0)

    def options(self) -> dict[str, Any]:
        return {
            "image_size": list(self._size),
            "spatial_compression": self.compression,
            "latent_channels": self.channels,
        }
