"""Rigid token groups: keep the tokens of one rigid object rigid while a world model samples.

An object-token latent (encoder `object_tokens`, channels 0:2 = each token's (x, y)) may pin several tokens to
points of one rigid body, as PushT's corner tokens are pinned to the tee's keypoints by state supervision. The
DiT denoises every token's position on its own, so over a closed-loop rollout small independent errors add up
and the body bends: the stem drifts off the bar, the judge and the policies then read a pose no rigid tee has,
and pushes land on a shape that does not exist.

With `WorldModelConfig.rigid_groups` each generated frame's group positions are replaced by the least-squares
rigid motion (rotation and translation, no scale: Kabsch) of the group's shape in the rollout's newest real
frame, the one it was reset from. The tokens' features and every token outside a group are left as sampled; the
projected frame is what the KV cache, the next frame's geometry and the renderer see.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from worldmodel.dit.token_geometry import POSITION_CHANNELS
from worldmodel.errors import InputError


class RigidGroups:
    """`groups` of token indices (into the latent's flattened `h * w` grid) that each move as one rigid body.

    Build it with `rigid_groups`, which checks the groups first."""

    def __init__(
        self,
        groups: Sequence[Sequence[int]],
        num_tokens: int,
        position_mean: Sequence[float],
        position_std: Sequence[float],
    ) -> None:
        self.groups = [torch.tensor(list(g), dtype=torch.long) for g in groups]
        self.mean = torch.tensor(list(position_mean), dtype=torch.float32)
        self.std = torch.tensor(list(position_std), dtype=torch.float32)

    def shapes(self, latents: torch.Tensor) -> list[torch.Tensor]:
        """Normalised latents of one frame `[B, h, w, C]` -> each group's centred positions `[B, k, 2]`."""
        positions = self._positions(latents)
        return [p - p.mean(1, keepdim=True) for p in (positions[:, g] for g in self.groups)]

    def project(self, frames: torch.Tensor, shapes: list[torch.Tensor]) -> torch.Tensor:
        """Normalised latents `[B, T, h, w, C]` with each group moved to its shape's best rigid fit."""
        b, t, h, w, c = frames.shape
        flat = frames.reshape(b * t, h * w, c)
        positions = self._positions(flat)
        out = flat.clone()
        for group, shape in zip(self.groups, shapes, strict=True):
            fitted = _fit_rigid(shape.repeat_interleave(t, 0), positions[:, group])
            out[:, group, :POSITION_CHANNELS] = self._normalise(fitted).to(out.dtype)
        return out.reshape(b, t, h, w, c)

    def _positions(self, latents: torch.Tensor) -> torch.Tensor:
        """`[N, ..., C]` normalised latents -> token positions in frame units `[N, tokens, 2]`."""
        pos = latents.reshape(len(latents), -1, latents.shape[-1])[..., :POSITION_CHANNELS].float()
        return pos * self.std.to(pos.device) + self.mean.to(pos.device)

    def _normalise(self, positions: torch.Tensor) -> torch.Tensor:
        return (positions - self.mean.to(positions.device)) / self.std.to(positions.device)


def _fit_rigid(shape: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The rotation + translation of centred `shape [N, k, 2]` closest to `target [N, k, 2]`, applied (Kabsch)."""
    centre = target.mean(1, keepdim=True)
    u, _, vt = torch.linalg.svd(shape.transpose(1, 2) @ (target - centre))
    flip = torch.sign(torch.linalg.det(u @ vt))  # a reflection is not a motion: flip the last axis instead
    fix = torch.diag_embed(torch.stack([torch.ones_like(flip), flip], -1))
    return shape @ (u @ fix @ vt) + centre


def rigid_groups(
    groups: Sequence[Sequence[int]],
    num_tokens: int,
    token_geometry: bool,
    latent_mean: Sequence[float],
    latent_std: Sequence[float],
) -> RigidGroups | None:
    """A model's rigid groups, checked (None without any)."""
    if not groups:
        return None
    check_rigid_groups(groups, token_geometry, num_tokens)
    return RigidGroups(groups, num_tokens, latent_mean[:POSITION_CHANNELS], latent_std[:POSITION_CHANNELS])


def check_rigid_groups(groups: Sequence[Sequence[int]], token_geometry: bool, num_tokens: int | None) -> None:
    """Groups of at least two distinct token indices (below `num_tokens` when known), no token in two groups,
    in a latent whose tokens carry positions."""
    if groups and not token_geometry:
        raise InputError(
            "rigid_groups needs a latent of positioned tokens (an object_tokens encoder with dit.token_geometry): "
            "drop rigid_groups for this model"
        )
    seen: set[int] = set()
    for group in groups:
        try:
            members = [int(i) for i in group]
        except (TypeError, ValueError) as err:
            raise InputError(
                f"rigid_groups: {group!r} must be a list of token indices, like [[1,2,3]]"
            ) from err
        if len(members) < 2 or len(set(members)) != len(members):
            raise InputError(f"rigid_groups: {members} must list at least two distinct token indices")
        bad = [i for i in members if i < 0 or (num_tokens is not None and i >= num_tokens)]
        if bad:
            raise InputError(
                f"rigid_groups: token indices {bad} are outside the latent's {num_tokens} tokens"
            )
        if seen & set(members):
            raise InputError(f"rigid_groups: tokens {sorted(seen & set(members))} are in more than one group")
        seen |= set(members)
