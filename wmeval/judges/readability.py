"""How much of each world's frames the state-probe judge can actually read: a trust signal for imagined numbers.

A state probe turns frames into success only as well as it reads them. On a frame it cannot read (a world
model that dissolved the pushed block into speckles), a soft-argmax estimator still returns a position: the
centre of mass of a spread-out heat map, which for PushT lies near the middle of the arena, where the goal is,
so unreadable frames inflate coverage instead of failing loudly. Measured on the 8,750-step PushT model, before
this check existed: the random policy's imagined coverage was 0.35 against 0.08 real, with the block keypoints of
its generated frames spread over 150 px (median) against 22 px on real frames.

Readability is calibrated per run on the real rollouts: a frame is readable when its widest keypoint spread is
within the `quantile` of the real frames' spread, so about 99% of real frames pass by construction and a
world model's share says how often its frames look as readable as reality's to the judge. The same threshold
gates the frame judge with `readable_only=true` (`FrameJudge.gated`): a frame it cannot read does not move the
judged state, so success is read only from frames that look as readable as reality's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from wmeval.judges.base import JudgeError
from wmeval.judges.frame import FrameJudge, SpreadReader
from wmeval.rollout import Rollouts

#: The share of real frames that are readable by construction.
READABLE_QUANTILE = 0.99


def real_spreads(real: Mapping[str, Rollouts], spread: SpreadReader, every: int) -> np.ndarray:
    """The judge's spread on every real frame observed at the world model's cadence."""
    return np.concatenate([spread(_frames(r, every)) for r in real.values()])


def judge_readability(
    real_spread: np.ndarray,
    imagined: Mapping[str, Mapping[str, Rollouts]],
    spread: SpreadReader,
    every: int,
    quantile: float = READABLE_QUANTILE,
) -> dict[str, Any]:
    """Share of readable frames per world, over the frames a world model generates (every `every` steps),
    against the threshold set by `real_spread` (`real_spreads` of the paired real rollouts).

    Returns {"threshold": spread limit, "quantile": q, "real": share, "worlds": {world model: share},
    "policies": {world model: {policy: share}}}.
    """
    threshold = float(np.quantile(real_spread, quantile))
    per_policy = {
        name: {policy: spread(_frames(r, every)) <= threshold for policy, r in by_policy.items()}
        for name, by_policy in imagined.items()
    }
    return {
        "threshold": threshold,
        "quantile": quantile,
        "real": float(np.mean(real_spread <= threshold)),
        "worlds": {name: float(np.concatenate(list(ok.values())).mean()) for name, ok in per_policy.items()},
        "policies": {name: {p: float(v.mean()) for p, v in ok.items()} for name, ok in per_policy.items()},
    }


def _frames(rollouts: Rollouts, every: int) -> np.ndarray:
    """The frames observed at the world model's cadence (steps 0, every, 2 * every, ...) while episodes ran."""
    if rollouts.frames is None:
        raise JudgeError(f"rollouts of {rollouts.policy_name!r} kept no frames: readability needs them")
    steps = np.arange(0, rollouts.frames.shape[1], every)
    live = steps[None, :] <= rollouts.lengths[:, None]
    return rollouts.frames[:, steps][live]


def reconstruction_readability(
    judge: FrameJudge, real: np.ndarray, decoded: np.ndarray, quantile: float = READABLE_QUANTILE
) -> dict[str, Any]:
    """How the judge reads an encoder's reconstructions `decoded` of the uint8 frames `real` (both
    `[N, H, W, 3]`): the share read as sharply as real frames (the threshold calibrated on `real`, as for a
    world model's frames) and how far the judged coverage moves. A world model's frames can be no more readable
    than its decoder's reconstructions, so this bounds what a latent space can give the judge.
    """
    if real.shape != decoded.shape:
        raise JudgeError(f"decoded frames {decoded.shape} do not match the real ones {real.shape}")
    real_spread, spread = judge.spreads(real), judge.spreads(decoded)
    threshold = float(np.quantile(real_spread, quantile))
    coverage_gap = np.abs(judge.read(decoded).coverage - judge.read(real).coverage)
    return {
        "frames": len(real),
        "threshold": threshold,
        "quantile": quantile,
        "readable": float(np.mean(spread <= threshold)),
        "readable_real": float(np.mean(real_spread <= threshold)),
        "coverage_abs_diff": float(coverage_gap.mean()),
    }
