"""Token geometry: a DiT over object tokens that attends with the tokens' positions, not their grid slots.

An object-token latent (encoder `object_tokens`) is a `1 x K` grid whose channels 0:2 are each token's (x, y)
in [-1, 1] frame coordinates (x right, y down) and whose other channels are its features. With
`DiTConfig.token_geometry` the DiT reads those positions as geometry:

- Spatial attention rotates queries and keys by a 2D RoPE evaluated at each token's continuous (x, y), so an
  attention score depends on where two tokens are relative to each other ("the pusher is just left of the T"),
  not on their slot indices or on where in the frame the pair sits.
- Each action point (`action_points`: PushT's agent targets) reaches each token as Fourier features of
  (point - token position): the offset a contact model needs, with no pixel grid in between.
- Slots are the same object in every frame (the encoder's token order), so a learned per-slot embedding says
  which token is which; temporal attention already runs per slot.

Which positions. A frame being generated is noise, so its own position channels say little until the last
Euler step. Every frame therefore takes its reference positions from the clean frame before it: in training
the ground-truth previous frame (teacher forcing, passed as `previous`), in a rollout the last committed
frame (the KV cache keeps it) or the context frame before it (uncached). The first frame of a sequence is
context and is its own reference. The same choice matches the residual x0 head, which predicts the change
from that previous frame.

Units. `WorldModel` normalises every latent channel with its stored mean and std, and the DiT keeps working on
normalised latents: positions then weigh as much in the flow-matching loss as features and get noise of the
same scale. Geometry needs frame units, shared with the normalised actions, so the reference positions are
un-normalised here with `position_mean` / `position_std` (the same statistics, copied into the DiT config).

Translation invariance. A token's input position is given relative to its reference, `x - (1 - t) * ref`
(the clean part of a noisy latent `(1 - t) x0 + t eps` moves with the reference, the noise does not), and the
global adaLN action embedding leaves out the point dims. The network's output is then unchanged when every
clean position and every action point moves by the same offset: with the residual head the predicted change
is the same wherever in the frame the scene sits. What it gives up is absolute position (a wall's location).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from worldmodel.dit.configuration_dit import DiTConfig
from worldmodel.dit.rope import axis_split, rope_angles, rope_cos_sin

POSITION_CHANNELS = 2  # (x, y) lead every token's channels


class RelativeActionMap(nn.Module):
    """`actions [B, T, A]`, token positions `[B, T, N, 2]` -> per-token features `[B, T, N, dim]`.

    Each (x, y) action point's offset from each token, raw and as sin/cos at `bands` octaves (the finest
    resolves a fraction of a token's width), through a small MLP. Frames whose action is null get zeros in.
    """

    def __init__(self, points: list[list[int]], hidden_size: int, bands: int) -> None:
        super().__init__()
        self.register_buffer("point_dims", torch.tensor(points, dtype=torch.long), persistent=False)
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(bands), persistent=False)
        in_dim = len(points) * POSITION_CHANNELS * (1 + 2 * bands)
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size)
        )

    def forward(
        self, actions: torch.Tensor, positions: torch.Tensor, null: torch.Tensor | None
    ) -> torch.Tensor:
        xy = actions[..., self.point_dims]  # [B, T, P, 2]
        rel = xy[:, :, None] - positions[:, :, :, None]  # [B, T, N, P, 2]
        angles = rel[..., None] * self.freqs
        feats = torch.cat((rel, angles.sin().flatten(-2), angles.cos().flatten(-2)), -1).flatten(-2)
        if null is not None:
            feats = feats.masked_fill(null[:, :, None, None], 0.0)
        return self.mlp(feats.to(self.mlp[0].weight.dtype))


class TokenGeometry(nn.Module):
    """What the DiT does with token positions when `config.token_geometry` is on (see the module docstring)."""

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        rows, cols = config.tokens_grid
        self.register_buffer(
            "mean", torch.tensor(config.position_mean, dtype=torch.float32), persistent=False
        )
        self.register_buffer("std", torch.tensor(config.position_std, dtype=torch.float32), persistent=False)
        self.slot_embed = nn.Parameter(torch.zeros(rows * cols, config.hidden_size))
        self.axis_dims = axis_split(config.head_dim, 2)
        self.rope_scale = config.geometry_rope_scale
        self.rope_base = config.geometry_rope_base
        self.action_map = (
            RelativeActionMap(config.action_points, config.hidden_size, config.action_point_bands)
            if config.action_points
            else None
        )
        point_mask = torch.zeros(config.action_dim, dtype=torch.bool)
        for pair in config.action_points:
            point_mask[pair] = True
        self.register_buffer("point_mask", point_mask, persistent=False)

    @staticmethod
    def previous_frames(
        x: torch.Tensor, previous: torch.Tensor | None, last: torch.Tensor | None
    ) -> torch.Tensor:
        """The clean frame before each frame of `x [B, T, h, w, C]`: `previous` when given, else `x` shifted by
        one, led by `last` (the cache's last committed frame) or, with nothing before, the first frame itself."""
        if previous is not None:
            return previous
        first = last if last is not None else x[:, :1]
        return torch.cat((first, x[:, :-1]), dim=1)

    def center(self, x: torch.Tensor, t: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Position channels relative to the reference: `x - (1 - t) * ref`, translation-invariant at any t."""
        keep = (1 - t)[:, :, None, None, None].to(x.dtype)
        pos = x[..., :POSITION_CHANNELS] - keep * reference[..., :POSITION_CHANNELS]
        return torch.cat((pos, x[..., POSITION_CHANNELS:]), dim=-1)

    def positions(self, reference: torch.Tensor) -> torch.Tensor:
        """Normalised reference latents `[B, T, h, w, C]` -> token (x, y) in frame units `[B, T, N, 2]`."""
        b, t = reference.shape[:2]
        pos = reference[..., :POSITION_CHANNELS].reshape(b, t, -1, POSITION_CHANNELS)
        return pos.float() * self.std + self.mean

    def rope(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin `[B * T, 1, N, head_dim / 2]` for spatial attention at continuous positions.

        `geometry_rope_scale` is the fastest pair's angle per frame unit; frequencies fall geometrically by
        `geometry_rope_base` across each axis's pairs, so the slowest ones vary little across the frame.
        """
        angles = rope_angles(positions * self.rope_scale, self.axis_dims, self.rope_base)
        cos, sin = rope_cos_sin(angles, dtype)
        return cos.flatten(0, 1)[:, None], sin.flatten(0, 1)[:, None]

    def token_features(
        self, positions: torch.Tensor, actions: torch.Tensor, null: torch.Tensor | None
    ) -> torch.Tensor:
        """Slot identity plus the relative action features, to add to the tokens `[B, T, N, dim]`."""
        out = self.slot_embed.expand(*positions.shape[:2], -1, -1)
        if self.action_map is not None:
            out = out + self.action_map(actions, positions, null)
        return out

    def global_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """The actions the adaLN condition sees: point dims zeroed (they are absolute positions; the tokens get
        them relative), so the condition cannot break translation invariance."""
        return actions.masked_fill(self.point_mask, 0.0)
