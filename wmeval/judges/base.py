"""What a judge is: a map from an episode to a success score in [0, 1].

Real rollouts are judged by the simulator's own flag; imagined rollouts have no simulator behind them,
so they are judged from pixels (a trajectory probe, or a state probe plus the task's rule). Ranking
fidelity is only meaningful when both worlds are scored by the same success rule, so the coverage
thresholds live here, once, for every judge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from wmeval.errors import WmevalError

#: gym-pusht's `success_threshold`: `is_success = coverage > 0.95` (strict inequality).
STRICT_COVERAGE = 0.95
#: A lenient bar for "nearly there", robust to a judge that under-estimates coverage by a few percent.
GRADED_COVERAGE = 0.8

#: How a coverage trace becomes one number: "strict" any step > 0.95, "graded" max >= 0.8 (both 0/1),
#: "coverage" the max coverage itself (continuous).
Outcome = Literal["strict", "graded", "coverage"]
OUTCOMES: tuple[str, ...] = ("strict", "graded", "coverage")


class JudgeError(WmevalError, ValueError):
    """An episode or a judge's configuration that cannot be scored."""


@dataclass
class Episode:
    """One rollout as judges see it.

    frames: uint8 [T, H, W, 3]. states: [T, S] low-dimensional state if known (real rollouts).
    success / coverage: the simulator's per-step flag and task progress, [T] (real rollouts only).
    """

    frames: np.ndarray
    states: np.ndarray | None = None
    success: np.ndarray | None = None
    coverage: np.ndarray | None = None


@runtime_checkable
class Judge(Protocol):
    """Scores episodes; `score` returns one float in [0, 1] per episode, in input order."""

    name: str

    def score(self, episodes: Sequence[Any]) -> np.ndarray: ...


@runtime_checkable
class StepJudge(Judge, Protocol):
    """A judge that can also score every step of one episode (for plots of success over time)."""

    def step_scores(self, episode: Any) -> np.ndarray: ...


def episode_field(episode: Any, name: str) -> Any:
    """Read `name` from an `Episode`, any object with that attribute, or a mapping (None if absent).

    Judges accept all three so that rollout code can hand over its own episode records unchanged.
    """
    if isinstance(episode, Mapping):
        return episode.get(name)
    return getattr(episode, name, None)


def episode_frames(episode: Any) -> np.ndarray:
    """The episode's frames as uint8 [T, H, W, 3], or a JudgeError naming what is wrong."""
    frames = episode_field(episode, "frames")
    if frames is None:
        raise JudgeError("episode has no frames: pixel judges need frames uint8 [T, H, W, 3]")
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise JudgeError(f"episode frames must be [T, H, W, 3] with T >= 1, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise JudgeError(f"episode frames must be uint8, got {frames.dtype}: convert with (x * 255).astype")
    return frames


def check_outcome(outcome: str) -> str:
    if outcome not in OUTCOMES:
        raise JudgeError(f"outcome={outcome!r} is not one of {', '.join(OUTCOMES)}")
    return outcome


def check_coverage(coverage: Any, where: str) -> np.ndarray:
    """A per-step coverage trace as float [T] in [0, 1] (tiny round-off outside is clipped)."""
    cov = np.asarray(coverage, dtype=float).reshape(-1)
    if cov.size == 0 or not np.isfinite(cov).all():
        raise JudgeError(f"{where} must be a non-empty, finite per-step coverage trace")
    if cov.min() < -1e-6 or cov.max() > 1 + 1e-6:
        raise JudgeError(f"{where} must lie in [0, 1], got [{cov.min():.3g}, {cov.max():.3g}]")
    return np.clip(cov, 0.0, 1.0)


def coverage_outcome(coverage: np.ndarray, outcome: str) -> float:
    """Collapse one coverage trace [T] into the chosen outcome (see `Outcome`)."""
    if outcome == "strict":
        return float(np.any(coverage > STRICT_COVERAGE))
    if outcome == "graded":
        return float(coverage.max() >= GRADED_COVERAGE)
    return float(coverage.max())
