"""LDM-style CNN that turns an adapter's compact latent grid back into RGB.

Semantic encoders (DINO, SigLIP, V-JEPA) have no pixel decoder of their own, so the S-VAE carries one to make
imagined frames visible. Layout, walked from the innermost level outward like the LDM decoder:
1x1 conv d -> base * mult[-1]; mid ResBlock + self-attention + ResBlock; per level `num_res_blocks` ResBlocks
(GroupNorm-SiLU-conv) with attention where the resolution is in `attn_resolutions`, then nearest x2 upsample +
conv between levels; GroupNorm-SiLU-3x3 conv-sigmoid. The paper's sizes are the defaults (16x16x96 -> 256 px,
about 177 M parameters); a tiny config (base 16, mult (1, 2)) trains on a CPU. When `image_size` is not
grid * 2**(levels - 1) (e.g. 224 from a 16x16 SigLIP grid), the output is resized bilinearly to it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from worldmodel.errors import InputError


@dataclass
class PixelDecoderConfig:
    """Architecture of the pixel decoder for latents on `grid`; `image_size` None means grid * 2**(levels - 1)."""

    grid: tuple[int, int] = (16, 16)
    base_channels: int = 128
    channel_multipliers: tuple[int, ...] = field(default=(1, 1, 2, 4, 8))
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = field(default=(16,))
    attn_heads: int = 4
    norm_groups: int = 32
    image_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        self.channel_multipliers = tuple(int(m) for m in self.channel_multipliers)
        self.attn_resolutions = tuple(int(r) for r in self.attn_resolutions)
        self.grid = tuple(int(g) for g in self.grid)
        if self.image_size is not None:
            size = self.image_size
            self.image_size = (int(size), int(size)) if isinstance(size, int) else tuple(int(s) for s in size)
        if not self.channel_multipliers or self.base_channels < 1 or self.num_res_blocks < 1:
            raise InputError(
                "pixel_decoder needs base_channels >= 1, num_res_blocks >= 1 and at least one channel multiplier"
            )
        bad = [m for m in self.channel_multipliers if (self.base_channels * m) % self.norm_groups]
        if bad:
            raise InputError(
                f"pixel_decoder: base_channels * multiplier must be divisible by norm_groups={self.norm_groups} "
                f"(fails for multipliers {bad}): change base_channels or norm_groups"
            )
        if (self.base_channels * self.channel_multipliers[-1]) % self.attn_heads:
            raise InputError(f"pixel_decoder: attn_heads={self.attn_heads} must divide the innermost width")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["channel_multipliers"] = list(self.channel_multipliers)
        out["attn_resolutions"] = list(self.attn_resolutions)
        out["grid"] = list(self.grid)
        out["image_size"] = None if self.image_size is None else list(self.image_size)
        return out


class ResBlock(nn.Module):
    """Two GroupNorm-SiLU-3x3 conv layers with a (1x1 when widths differ) skip."""

    def __init__(self, c_in: int, c_out: int, groups: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2, self.conv2 = nn.GroupNorm(groups, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """Multi-head self-attention over all positions of a feature map, residual."""

    def __init__(self, channels: int, heads: int, groups: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 conv (avoids the checkerboard of transposed convs)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class PixelDecoder(nn.Module):
    """`[B, h, w, d]` latents -> `[B, 3, H, W]` frames in [0, 1]."""

    def __init__(self, latent_dim: int, config: PixelDecoderConfig | dict[str, Any] | None = None) -> None:
        super().__init__()
        cfg = config if isinstance(config, PixelDecoderConfig) else PixelDecoderConfig(**(config or {}))
        self.config, self.latent_dim = cfg, int(latent_dim)
        mults, base, g = cfg.channel_multipliers, cfg.base_channels, cfg.norm_groups
        width = base * mults[-1]
        self.conv_in = nn.Conv2d(self.latent_dim, width, 1)
        self.mid = nn.Sequential(
            ResBlock(width, width, g), AttnBlock(width, cfg.attn_heads, g), ResBlock(width, width, g)
        )
        self.levels = nn.ModuleList()
        res = min(cfg.grid)
        for i in reversed(range(len(mults))):
            level = nn.Module()
            level.blocks, level.attns = nn.ModuleList(), nn.ModuleList()
            for _ in range(cfg.num_res_blocks):
                level.blocks.append(ResBlock(width, base * mults[i], g))
                width = base * mults[i]
                use_attn = res in cfg.attn_resolutions
                level.attns.append(AttnBlock(width, cfg.attn_heads, g) if use_attn else nn.Identity())
            level.upsample = Upsample(width) if i > 0 else nn.Identity()
            res *= 2 if i > 0 else 1
            self.levels.append(level)
        self.norm_out = nn.GroupNorm(g, width)
        self.conv_out = nn.Conv2d(width, 3, 3, padding=1)

    @property
    def output_size(self) -> tuple[int, int]:
        """(H, W) of the frames it returns."""
        if self.config.image_size is not None:
            return self.config.image_size
        f = 2 ** (len(self.config.channel_multipliers) - 1)
        return self.config.grid[0] * f, self.config.grid[1] * f

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h, w = self.config.grid
        if z.ndim != 4 or tuple(z.shape[1:]) != (h, w, self.latent_dim):
            raise InputError(f"pixel decoder expects [B, {h}, {w}, {self.latent_dim}], got {tuple(z.shape)}")
        size = self.output_size
        x = self.mid(self.conv_in(z.permute(0, 3, 1, 2)))
        for level in self.levels:
            for block, attn in zip(level.blocks, level.attns, strict=True):
                x = attn(block(x))
            x = level.upsample(x)
        x = self.conv_out(F.silu(self.norm_out(x)))
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return torch.sigmoid(x)
