"""DiT configuration and size presets (paper Table 5, plus small sizes that train on a CPU)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from worldmodel.errors import InputError

# name -> (hidden size, depth, heads). Each depth level holds one spatial and one temporal block.
DIT_SIZES: dict[str, tuple[int, int, int]] = {
    "micro": (64, 2, 2),  # for a few object tokens per frame: many cheap updates on a CPU
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
    # a token is a patch_size x patch_size block of latent cells, or rows x cols with [rows, cols]: [1, K] makes
    # a 1 x K row of object tokens one token per frame, so the DiT does its per-token work once per frame
    patch_size: int | list[int] = 1
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
    # Object tokens (channels 0:2 = each token's (x, y) in [-1, 1] frame units): spatial attention and action
    # points use those positions as relative geometry instead of grid slots (see token_geometry.py).
    token_geometry: bool = False
    position_mean: list[float] = field(default_factory=lambda: [0.0, 0.0])  # of channels 0:2, to un-normalise
    position_std: list[float] = field(default_factory=lambda: [1.0, 1.0])
    geometry_rope_scale: float = 64.0  # the fastest rotary pair's angle per frame unit (frame spans 2 units)
    geometry_rope_base: float = 64.0  # fastest / slowest rotary frequency along each axis
    action_point_bands: int = 6  # octaves of sin/cos features of (action point - token position)
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
        self._check_patch()
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
        if self.token_geometry:
            self._check_token_geometry()
        if self.hidden_size % self.num_heads:
            raise InputError(f"hidden_size={self.hidden_size} is not divisible by num_heads={self.num_heads}")
        if self.head_dim % 4:
            raise InputError(f"head dim {self.head_dim} must be divisible by 4 for the 2D rotary embedding")
        if self.max_frames < 2:
            raise InputError(f"max_frames={self.max_frames} must be >= 2 (one context frame and the new one)")

    def _check_patch(self) -> None:
        size = self.patch_size
        if not isinstance(size, int):  # JSON and Hydra give lists
            size = self.patch_size = [int(v) for v in size]
        if (isinstance(size, list) and len(size) != 2) or min(self.patch) < 1:
            raise InputError(f"patch_size={size} must be a positive int or [rows, cols] of positive ints")
        (h, w), (ph, pw) = self.grid, self.patch
        if h % ph or w % pw:
            raise InputError(f"latent grid {self.grid} is not divisible by patch_size={size} (rows, cols)")

    def _check_token_geometry(self) -> None:
        self.position_mean = [float(v) for v in self.position_mean]
        self.position_std = [float(v) for v in self.position_std]
        if self.in_channels < 3:
            raise InputError(
                f"token_geometry needs latents of (x, y) + features, got in_channels={self.in_channels}"
            )
        if self.patch != (1, 1) or self.num_views != 1 or self.abs_pos_embed or self.action_point_subgrid:
            raise InputError(
                "token_geometry takes one view of tokens as they are: set patch_size=1, num_views=1, "
                "abs_pos_embed=false and action_point_subgrid=0"
            )
        if len(self.position_mean) != 2 or len(self.position_std) != 2 or min(self.position_std) <= 0:
            raise InputError(
                f"position_mean={self.position_mean} / position_std={self.position_std} must be 2 values each "
                "(the latent statistics of channels 0:2), std > 0"
            )

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def patch(self) -> tuple[int, int]:
        """(rows, cols) of latent cells per token."""
        size = self.patch_size
        if isinstance(size, int):
            return size, size
        return size[0], size[1]

    @property
    def tokens_grid(self) -> tuple[int, int]:
        """(rows, cols) of tokens per frame, all views side by side."""
        (h, w), (ph, pw) = self.grid, self.patch
        return h // ph, self.num_views * w // pw

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
