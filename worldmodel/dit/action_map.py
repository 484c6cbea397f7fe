"""Spatial action conditioning for actions that are points in the frame (PushT's absolute agent targets).

adaLN gives every token the same action vector; a token must then work out on its own whether a target lies
near it, which a small model learns slowly (measured on PushT: after 1,250 CPU steps a tiny DiT still drew the
agent in the same place for three far-apart targets). When the dataset says which action dims are an (x, y)
point in normalised frame coordinates, this module adds to each token a Gaussian bump of its distance to each
point, projected to the hidden size: the target is then where the tokens are, as in heatmap conditioning.

A token covers a whole patch (8x8 pixels of PushT's 64x64 frame: the agent is a 4-pixel disc inside one), and
a bump sampled at token centres says only roughly where in the patch a target lies. With `subgrid > 0` each
token also sees each point's bump sampled at `subgrid x subgrid` positions inside its own patch, with the
narrower `fine_sigma` (about the agent's radius): the sub-token offset is then an input, not something the
network must infer from neighbouring tokens (measured: with centre bumps only, a tiny DiT after 4,500 CPU steps
still erased the agent instead of drawing it at the commanded target). That projection starts at zero, so a
model warm-started from one without it (`init_from`) begins exactly where that model was.
"""

from __future__ import annotations

import torch
from torch import nn


class ActionPointMap(nn.Module):
    """`actions [B, T, A]` -> per-token features `[B, T, N, dim]` from the (x, y) points among the action dims.

    `points` lists pairs of action dims (x, y) in [-1, 1] across the frame (x to the right, y down); tokens sit
    at the centres of a `rows x cols` grid. Frames whose action is null get no bump.
    """

    def __init__(
        self,
        points: list[list[int]],
        rows: int,
        cols: int,
        hidden_size: int,
        sigma: float,
        subgrid: int = 0,
        fine_sigma: float = 0.06,
    ) -> None:
        super().__init__()
        self.register_buffer("point_dims", torch.tensor(points, dtype=torch.long), persistent=False)
        ys = (torch.arange(rows, dtype=torch.float32) + 0.5) / rows * 2 - 1
        xs = (torch.arange(cols, dtype=torch.float32) + 0.5) / cols * 2 - 1
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        token_xy = torch.stack((grid_x, grid_y), -1).reshape(-1, 2)
        self.register_buffer("token_xy", token_xy, persistent=False)
        self.sigma = sigma
        self.proj = nn.Linear(len(points), hidden_size)
        self.fine_proj: nn.Linear | None = None
        if subgrid > 0:
            offsets = (torch.arange(subgrid, dtype=torch.float32) + 0.5) / subgrid - 0.5  # within a token
            off_y, off_x = torch.meshgrid(offsets, offsets, indexing="ij")
            cell = torch.tensor([2.0 / cols, 2.0 / rows])  # a token's (width, height) in [-1, 1] units
            sub = token_xy[:, None] + torch.stack((off_x, off_y), -1).reshape(1, -1, 2) * cell
            self.register_buffer("sub_xy", sub, persistent=False)  # [N, subgrid^2, 2]
            self.fine_sigma = fine_sigma
            self.fine_proj = nn.Linear(len(points) * subgrid * subgrid, hidden_size)

    def forward(self, actions: torch.Tensor, null: torch.Tensor | None) -> torch.Tensor:
        xy = actions[..., self.point_dims]  # [B, T, P, 2]
        out = self.proj(self._bumps(self.token_xy, xy, self.sigma, null))
        if self.fine_proj is not None:
            fine = self._bumps(self.sub_xy.flatten(0, 1), xy, self.fine_sigma, null)  # [B, T, N * S^2, P]
            out = out + self.fine_proj(fine.reshape(*fine.shape[:2], len(self.token_xy), -1))
        return out

    def _bumps(
        self, where: torch.Tensor, xy: torch.Tensor, sigma: float, null: torch.Tensor | None
    ) -> torch.Tensor:
        """Gaussian of the distance from each position `where [M, 2]` to each point: `[B, T, M, P]`."""
        dist2 = ((where[:, None] - xy[:, :, None]) ** 2).sum(-1)
        heat = torch.exp(-dist2 / (2 * sigma**2))
        if null is not None:
            heat = heat.masked_fill(null[:, :, None, None], 0.0)
        return heat.to(self.proj.weight.dtype)
