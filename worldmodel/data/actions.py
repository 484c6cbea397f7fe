"""Action layouts: how one dataset's raw actions become the DiT's action units, dimension by dimension.

A world model must see the same action units in training and in every rollout, so the layout travels inside
the world model (`WorldModelConfig.action_layout`) instead of living in a training script. Per dimension:
`(raw - offset) / scale`, then optionally clipped to `[lo, hi]`, then optionally rounded to -1 / +1 (a binary
gripper). Bridge V2's rescaling (xyz [-0.05, 0.05] -> +/-1.75, rpy [-0.25, 0.25] -> +/-1.4
with a 0.01 safety margin, gripper -> closedness in {-1, +1}) is one such layout; min/max or mean/std
statistics give the affine-only ones.

The null action (frames whose incoming action is unknown, and the classifier-free-guidance token) is the
DiT's learned null embedding: `null_action = "learned"`. It plays the role of the research code's zero
vector with a trailing flag set to 1, without spending an action dimension on the flag.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from worldmodel.errors import InputError

NULL_ACTIONS = ("learned",)

#: How a world-model step spanning k sim steps gets its one action from their k recorded actions.
ACTION_MODES = ("concat", "sampled")


def step_action_dim(raw_dim: int, k: int, mode: str) -> int:
    """Width of one world-model step's action: k concatenated raw actions, or one sampled raw action."""
    return raw_dim * k if mode == "concat" else raw_dim


def step_actions(raw: np.ndarray | torch.Tensor, k: int, mode: str) -> np.ndarray | torch.Tensor:
    """Per-sim-step actions `[..., n * k, a]` -> one action per world-model step `[..., n, A]`.

    `concat`: the step's k actions concatenated (A = k * a). `sampled`: the action taken at its first sim
    step, the step of the frame it leaves (A = a); the rest are dropped, as the paper's clips train it.
    """
    if mode not in ACTION_MODES:
        raise InputError(f"action_mode={mode!r} is unknown: use one of {', '.join(ACTION_MODES)}")
    steps = raw.reshape(*raw.shape[:-2], raw.shape[-2] // k, k, raw.shape[-1])
    return steps.reshape(*steps.shape[:-2], -1) if mode == "concat" else steps[..., 0, :]


@dataclass
class ActionLayout:
    names: list[str]
    offset: list[float]
    scale: list[float]
    clip: list[list[float] | None] = field(default_factory=list)  # per dim [lo, hi] after scaling, or None
    binary: list[bool] = field(default_factory=list)  # per dim: round to -1 / +1 after scaling
    null_action: str = "learned"

    def __post_init__(self) -> None:
        n = len(self.offset)
        self.clip = list(self.clip) or [None] * n
        self.binary = list(self.binary) or [False] * n
        self.names = list(self.names) or [f"a{i}" for i in range(n)]
        lengths = {len(self.names), len(self.scale), len(self.clip), len(self.binary)}
        if lengths != {n}:
            raise InputError(
                f"action layout has {n} offsets but names/scale/clip/binary of lengths {sorted(lengths)}"
            )
        if any(float(s) == 0 for s in self.scale):
            raise InputError(f"action layout scale must be non-zero in every dimension, got {self.scale}")
        if self.null_action not in NULL_ACTIONS:
            raise InputError(
                f"null_action={self.null_action!r} is not supported: use 'learned' (the DiT's null embedding)"
            )

    @classmethod
    def affine(cls, offset: Any, scale: Any, names: list[str] | None = None) -> ActionLayout:
        """Only `(raw - offset) / scale`: the layout of every world model trained before layouts existed."""
        off = np.asarray(offset, np.float64).reshape(-1)
        return cls(
            names=names or [], offset=off.tolist(), scale=np.asarray(scale, np.float64).reshape(-1).tolist()
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ActionLayout:
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def dim(self) -> int:
        return len(self.offset)

    def normalize(self, raw: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Raw actions `[..., k * dim]` (k concatenated steps) -> action units, same type and shape."""
        is_torch = isinstance(raw, torch.Tensor)
        if raw.shape[-1] % self.dim:
            raise InputError(
                f"actions of width {raw.shape[-1]} are not a multiple of the layout's {self.dim} dims"
            )
        steps = raw.reshape(*raw.shape[:-1], raw.shape[-1] // self.dim, self.dim)
        if is_torch:
            offset = torch.tensor(self.offset, dtype=torch.float32, device=raw.device)
            scale = torch.tensor(self.scale, dtype=torch.float32, device=raw.device)
            out = (steps.float() - offset) / scale
        else:
            out = (np.asarray(steps, np.float32) - np.float32(self.offset)) / np.float32(self.scale)
        for i, (bounds, binary) in enumerate(zip(self.clip, self.binary, strict=True)):
            if bounds is not None:
                out[..., i] = out[..., i].clip(bounds[0], bounds[1])
            if binary:
                out[..., i] = (
                    torch.where(out[..., i] >= 0, 1.0, -1.0)
                    if is_torch
                    else np.where(out[..., i] >= 0, 1.0, -1.0)
                )
        return out.reshape(raw.shape)
