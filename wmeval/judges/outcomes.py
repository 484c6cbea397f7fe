"""The outcome rules: how a coverage trace becomes success, for every world and every judge.

Ranking fidelity is only meaningful when both worlds are scored by the same rule, so the thresholds live
here, once. Real rollouts carry the simulator's own per-step flag and coverage; imagined ones carry the
frame judge's (`wmeval.judges.frame`), which applies the same `is_success` to coverage read off the frames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

from wmeval.errors import ConfigError

if TYPE_CHECKING:
    from wmeval.rollout import Rollouts

#: gym-pusht's `success_threshold`: `is_success = coverage > 0.95` (strict inequality).
STRICT_COVERAGE = 0.95
#: A lenient bar for "nearly there", robust to a judge that under-estimates coverage by a few percent.
GRADED_COVERAGE = 0.8

#: How an episode becomes one number: "strict" the success flag (some step's coverage > STRICT_COVERAGE),
#: "graded" max coverage >= GRADED_COVERAGE (both 0/1), "coverage" the max coverage itself (continuous).
Outcome = Literal["strict", "graded", "coverage"]
OUTCOMES: tuple[str, ...] = ("strict", "graded", "coverage")


def check_outcome(outcome: str) -> str:
    if outcome not in OUTCOMES:
        raise ConfigError(f"outcome={outcome!r} is unknown: choose one of {', '.join(OUTCOMES)}")
    return outcome


def is_success(coverage: np.ndarray) -> np.ndarray:
    """The strict success flag of each coverage value."""
    return np.asarray(coverage) > STRICT_COVERAGE


def is_graded(coverage: np.ndarray) -> np.ndarray:
    """The graded outcome of each (maximum) coverage value."""
    return np.asarray(coverage) >= GRADED_COVERAGE


def episode_outcomes(rollouts: Rollouts, outcome: str) -> np.ndarray:
    """Per-episode outcome in [0, 1] from the flags and coverage each episode recorded (see `Outcome`)."""
    check_outcome(outcome)
    if outcome == "strict":
        return rollouts.success.astype(float)
    if outcome == "graded":
        return is_graded(rollouts.max_coverage()).astype(float)
    return np.clip(rollouts.max_coverage(), 0.0, 1.0)
