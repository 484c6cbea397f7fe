"""DiT configuration and size presets (paper Table 5, plus small sizes that train on a CPU)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from worldmodel.errors import InputError

# name -> (hidden size, depth, heads). Each depth level holds one spatial and one temporal block.
DIT_SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (128, 4, 4),
    "small": (192, 6, 6),
    "S": (384, 12, 6),
    "B": (768, 12, 12),
    "L": (1024, 24, 16),
    "XL": (1152, 28, 16),
}


@dataclass
class DiTConfig:
    """Everything that fixes the DiT's parameter shapes and its positional layout."""

    in_channels: int
    grid: tuple[int, int]  # (h, w) latent grid of one view
    action_dim: int  # size of one world-model step's action (already chunk-concatenated)
    size: str = "S"
    hidden_size: int = 384
    depth: int = 12
    num_heads: int = 6
    patch_size: int = 1
    mlp_ratio: float = 4.0
    num_views: int = 1  # views are concatenated along width; spatial RoPE gets a view axis when > 1
    max_frames: int = 10  # temporal context window, new frame included (paper: 10)
    rope_base: float = 10000.0
    # Add the original DiT's fixed 2D sin-cos table to the tokens. RoPE tells attention only relative offsets, so
    # without it no token knows where it is; actions that are absolute positions (PushT's agent targets) need it.
    abs_pos_embed: bool = False
    # Pairs of action dims that are an (x, y) point in [-1, 1] frame coordinates (PushT's targets: one pair per
    # simulator step of the chunk): each token also gets a Gaussian bump of its distance to each point.
    action_points: list[list[int]] = field(default_factory=list)
    action_point_sigma: float = 0.15  # bump width in the same [-1, 1] units (0.15 ~ 7.5% of the frame)
    # > 0: each token also gets each point's bump sampled at subgrid x subgrid positions inside its own patch,
    # with the narrower fine sigma, so that where in the patch the point lies is an input (see action_map.py)
    action_point_subgrid: int = 0
    action_point_fine_sigma: float = 0.06
    wide_head: bool = False  # the shallow-wide head for native high-dimensional latents
    wide_head_dim: int = 2048
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_size(cls, size: str, **kwargs: Any) -> DiTConfig:
        if size not in DIT_SIZES:
            raise InputError(f"dit size '{size}' is unknown; choose one of {', '.join(DIT_SIZES)}")
        hidden, depth, heads = DIT_SIZES[size]
        return cls(size=size, hidden_size=hidden, depth=depth, num_heads=heads, **kwargs)

    def __post_init__(self) -> None:
        self.grid = tuple(self.grid)  # JSON round-trips give lists
        h, w = self.grid
        if h % self.patch_size or w % self.patch_size:
            raise InputError(f"latent grid {self.grid} is not divisible by patch_size={self.patch_size}")
        self.action_points = [list(p) for p in self.action_points]
        bad = [p for p in self.action_points if len(p) != 2 or not all(0 <= d < self.action_dim for d in p)]
        if bad:
            raise InputError(
                f"action_points {bad} must be pairs of action dims in [0, {self.action_dim}): (x, y) of a point"
            )
        if self.action_points and self.num_views != 1:
            raise InputError(
                "action_points need a single view: a point has no meaning across side-by-side views"
            )
        if self.action_point_subgrid < 0:
            raise InputError(f"action_point_subgrid={self.action_point_subgrid} must be >= 0 (0: off)")
        if self.hidden_size % self.num_heads:
            raise InputError(f"hidden_size={self.hidden_size} is not divisible by num_heads={self.num_heads}")
        if self.head_dim % 4:
            raise InputError(f"head dim {self.head_dim} must be divisible by 4 for the 2D rotary embedding")
        if self.max_frames < 2:
            raise InputError(f"max_frames={self.max_frames} must be >= 2 (one context frame and the new one)")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def tokens_grid(self) -> tuple[int, int]:
        """(rows, cols) of tokens per frame, all views side by side."""
        h, w = self.grid
        return h // self.patch_size, self.num_views * w // self.patch_size

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
