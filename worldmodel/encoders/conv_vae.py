"""`conv_vae`: a small trainable convolutional VAE (diffusers `AutoencoderKL`), the offline learned latent space.

Default geometry: 96x96 RGB -> 24x24x8 (three encoder levels, two 2x downsamplings, block_out_channels
(32, 64, 128), latent_channels 8). A 4x reduction keeps PushT's thin T edges and the agent disc legible, which
an 8x VAE (12x12) blurs into blobs; a DiT with patch size 2 then sees 12x12 = 144 tokens of 32 channels per
frame, the paper's SD3-VAE recipe (32x32 grid, p=2) at small scale. Add a level for 12x12 if wanted.

Latents are the posterior mean (deterministic, so a cache is reproducible) times `scaling_factor`, which is
stored in the diffusers config (`config.json`) and set by `train_conv_vae` to 1 / std of the training latents,
so latents come out near unit variance. Frames go in as [0, 1] (mapped to [-1, 1] inside) and `decode` returns
[0, 1]. Weights are saved and loaded with diffusers' own `save_pretrained` / `from_pretrained` (safetensors).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL

from worldmodel.encoders.base import Encoder
from worldmodel.encoders.common import AutoencoderKLGeometry, parse_size, resize_frames
from worldmodel.errors import InputError, MissingWeightsError
from worldmodel.hub import fingerprint_module, resolve_pretrained
from worldmodel.io import atomic_path
from worldmodel.reading import read_json, read_tensors

#: the weights file diffusers' save_pretrained writes (safetensors)
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"


@dataclass
class ConvVAEConfig:
    """Architecture of a fresh `conv_vae`; `scaling_factor` is filled in by training."""

    image_size: int | tuple[int, int] = 96
    block_out_channels: tuple[int, ...] = field(default=(32, 64, 128))
    latent_channels: int = 8
    layers_per_block: int = 1
    norm_num_groups: int = 32
    mid_block_attention: bool = False
    scaling_factor: float = 1.0

    def build(self) -> AutoencoderKL:
        """A randomly initialised `AutoencoderKL` of this shape (uses the global torch RNG)."""
        size = parse_size(self.image_size)
        levels = len(self.block_out_channels)
        if levels < 1:
            raise InputError("block_out_channels must name at least one level, e.g. (32, 64, 128)")
        bad = [c for c in self.block_out_channels if c % self.norm_num_groups]
        if bad:
            raise InputError(
                f"block_out_channels {tuple(self.block_out_channels)} must be multiples of "
                f"norm_num_groups={self.norm_num_groups}: change one of them"
            )
        down = 2 ** (levels - 1)
        if size[0] % down or size[1] % down:
            raise InputError(f"image_size {size} must be divisible by {down} for {levels} encoder levels")
        return AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * levels,
            up_block_types=("UpDecoderBlock2D",) * levels,
            block_out_channels=tuple(int(c) for c in self.block_out_channels),
            layers_per_block=self.layers_per_block,
            latent_channels=self.latent_channels,
            norm_num_groups=self.norm_num_groups,
            sample_size=size[0],
            scaling_factor=float(self.scaling_factor),
            mid_block_add_attention=self.mid_block_attention,
            force_upcast=False,
        )


class ConvVAEEncoder(AutoencoderKLGeometry, Encoder):
    """Wraps an `AutoencoderKL`; see the module docstring for the latent convention."""

    name = "conv_vae"

    def __init__(
        self,
        image_size: int | Sequence[int] = 96,
        block_out_channels: Sequence[int] = (32, 64, 128),
        latent_channels: int = 8,
        layers_per_block: int = 1,
        norm_num_groups: int = 32,
        mid_block_attention: bool = False,
        scaling_factor: float = 1.0,
        fingerprint: str | None = None,
        vae: AutoencoderKL | None = None,
        pretrained: str | None = None,
    ) -> None:
        """Fresh, untrained weights unless `vae` is given: this is the training entry point.

        `fingerprint` (from a saved `get_config()`) is checked against the weights, so a config that names
        trained weights can never silently come back as a random model.
        """
        super().__init__()
        if vae is None:
            cfg = ConvVAEConfig(
                image_size=parse_size(image_size),
                block_out_channels=tuple(block_out_channels),
                latent_channels=latent_channels,
                layers_per_block=layers_per_block,
                norm_num_groups=norm_num_groups,
                mid_block_attention=mid_block_attention,
                scaling_factor=scaling_factor,
            )
            vae = cfg.build()
        self.vae = vae
        self.pretrained = pretrained
        self._size = (int(vae.config.sample_size), int(vae.config.sample_size))
        if fingerprint is not None and fingerprint != fingerprint_module(vae):
            where = (
                f"the weights in {pretrained}/{WEIGHTS_NAME}" if pretrained else "freshly initialised weights"
            )
            raise MissingWeightsError(
                f"encoder 'conv_vae': config names weights with fingerprint {fingerprint} but {where} differ: "
                "pass pretrained=<the directory those weights were saved to with save_pretrained>"
            )

    @classmethod
    def from_pretrained(cls, pretrained: str, fingerprint: str | None = None, **arch: Any) -> ConvVAEEncoder:
        """Load diffusers-format weights from a local directory or a cached Hub id (never random weights).

        Architecture options in `arch` (present in a saved `get_config()`) are accepted but the directory's own
        `config.json` is authoritative; the `fingerprint`, when given, must match the loaded weights.
        """
        what = "encoder 'conv_vae'"
        unknown = sorted(set(arch) - set(ConvVAEConfig.__dataclass_fields__))
        if unknown:
            raise InputError(f"{what} does not take option(s) {', '.join(unknown)}")
        directory = resolve_pretrained(pretrained, what)
        if not (directory / "config.json").is_file():
            raise MissingWeightsError(
                f"{what}: {directory} has no config.json: pass a directory written by save_pretrained "
                "or train_conv_vae"
            )
        fix = "re-save them with save_pretrained"
        config_path, weights_path = directory / "config.json", directory / WEIGHTS_NAME
        read_json(config_path, fix)  # diffusers would take a damaged one for a Hub id and try to download it
        read_tensors(weights_path, fix)
        try:
            vae = AutoencoderKL.from_pretrained(directory, use_safetensors=True)
        except (OSError, ValueError, TypeError) as err:
            first = str(err).strip().splitlines()[0].split(". ")[0]  # diffusers then suggests random weights
            raise InputError(
                f"{what}: {weights_path} does not match {config_path} ({first}): it holds another "
                f"architecture's weights; {fix}"
            ) from err
        return cls(vae=vae.eval(), pretrained=str(pretrained), fingerprint=fingerprint)

    def set_scaling_factor(self, value: float) -> None:
        """Record the latent scale in the diffusers config, so it is saved with the weights."""
        self.vae.register_to_config(scaling_factor=float(value))

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        x = resize_frames(self.check_frames(frames), self._size)
        param = next(self.vae.parameters())
        x = x.to(device=param.device, dtype=param.dtype) * 2.0 - 1.0
        mean = self.vae.encode(x).latent_dist.mean
        return (mean * self.scaling_factor).permute(0, 2, 3, 1).contiguous()

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        h, w, d = self.latent_shape
        if latents.ndim != 4 or tuple(latents.shape[1:]) != (h, w, d):
            raise InputError(f"latents must be [B, {h}, {w}, {d}], got shape {tuple(latents.shape)}")
        param = next(self.vae.parameters())
        z = latents.permute(0, 3, 1, 2).to(device=param.device, dtype=param.dtype) / self.scaling_factor
        return ((self.vae.decode(z).sample + 1.0) * 0.5).clamp(0.0, 1.0)

    def architecture(self) -> ConvVAEConfig:
        """The dataclass config of the wrapped model (for building a fresh twin, e.g. in training)."""
        c = self.vae.config
        return ConvVAEConfig(
            image_size=int(c.sample_size),
            block_out_channels=tuple(c.block_out_channels),
            latent_channels=int(c.latent_channels),
            layers_per_block=int(c.layers_per_block),
            norm_num_groups=int(c.norm_num_groups),
            mid_block_attention=bool(c.mid_block_add_attention),
            scaling_factor=float(c.scaling_factor),
        )

    def get_config(self) -> dict[str, Any]:
        """Architecture + where the weights live + a weight fingerprint that identifies the latent space."""
        arch = asdict(self.architecture())
        arch["image_size"] = list(self._size)
        arch["block_out_channels"] = list(arch["block_out_channels"])
        return {
            "type": self.name,
            "pretrained": self.pretrained,
            **arch,
            "fingerprint": fingerprint_module(self.vae),
        }

    def save_pretrained(self, directory: str | Path) -> None:
        """diffusers format (config.json + diffusion_pytorch_model.safetensors), written atomically."""
        with atomic_path(directory) as tmp:
            self.vae.save_pretrained(tmp, safe_serialization=True)
