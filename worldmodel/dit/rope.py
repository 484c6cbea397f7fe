"""Position embeddings: rotary (axial 2D over the token grid, 3D with a view axis, 1D over time) and the
original DiT's fixed 2D sin-cos table, for models that need absolute positions in the tokens themselves."""

from __future__ import annotations

import torch


def axis_split(head_dim: int, num_axes: int) -> list[int]:
    """How many of head_dim's channels rotate with each axis (all even, summing to head_dim).

    Two axes (rows, cols) split equally; a third (view) axis takes about a third, as in the paper's
    multi-view RoPE (20 view / 22 / 22 for head_dim 64).
    """
    if num_axes == 1:
        return [head_dim]
    if num_axes == 2:
        half = head_dim // 2 // 2 * 2
        return [half, head_dim - half]
    view = head_dim // 3 // 2 * 2
    row = (head_dim - view) // 2 // 2 * 2
    return [row, head_dim - view - row, view]


def rope_angles(positions: torch.Tensor, axis_dims: list[int], base: float) -> torch.Tensor:
    """Angles `[..., head_dim / 2]` for positions `[..., num_axes]` (grid indices or continuous coordinates)."""
    parts = []
    for axis, dim in enumerate(axis_dims):
        freqs = base ** (-torch.arange(0, dim, 2, dtype=torch.float64, device=positions.device) / dim)
        parts.append(positions[..., axis, None].double() * freqs)
    return torch.cat(parts, dim=-1)


def rope_cos_sin(
    angles: torch.Tensor, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate `x [..., L, head_dim]` (rotate-half pairing: channel i rotates with channel i + head_dim/2)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


def spatial_positions(rows: int, cols: int, num_views: int) -> torch.Tensor:
    """Positions `[rows * cols, axes]` of tokens laid out row-major, views side by side along the width.

    With one view the axes are (row, col); with several, (row, col within its view, view index).
    """
    r, c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    r, c = r.flatten(), c.flatten()
    if num_views == 1:
        return torch.stack((r, c), dim=-1)
    per_view = cols // num_views
    return torch.stack((r, c % per_view, c // per_view), dim=-1)


def sincos_2d(positions: torch.Tensor, dim: int, base: float = 10000.0) -> torch.Tensor:
    """The original DiT's fixed table `[L, dim]` for (row, col) `positions [L, >=2]`: half the channels per axis."""
    quarter = dim // 4
    freqs = base ** (-torch.arange(quarter, dtype=torch.float64) / quarter)
    parts = []
    for axis in range(2):
        angles = positions[:, axis, None].double() * freqs[None]
        parts += [angles.sin(), angles.cos()]
    return torch.cat(parts, dim=-1).float()
