"""The real simulator's own verdict: ground truth for ranking fidelity, available only for real rollouts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from wmeval.judges.base import (
    JudgeError,
    check_coverage,
    check_outcome,
    coverage_outcome,
    episode_field,
)


class SimFlagJudge:
    """Scores episodes from the per-step `success` flag and `coverage` the env recorded.

    outcome="strict": 1 if any step's recorded `success` is true (falls back to coverage > 0.95 when
    no flag was recorded). "graded": max coverage >= 0.8. "coverage": max coverage. Use the same
    outcome as the imagined-side judge, or fidelity compares two different tasks.
    """

    def __init__(self, outcome: str = "strict", name: str = "sim_flag") -> None:
        self.outcome = check_outcome(outcome)
        self.name = name

    def score(self, episodes: Sequence[Any]) -> np.ndarray:
        return np.array([self._score_one(ep, k) for k, ep in enumerate(episodes)], dtype=float)

    def step_scores(self, episode: Any) -> np.ndarray:
        """Per-step coverage when recorded, else the per-step success flag as 0/1."""
        coverage = episode_field(episode, "coverage")
        if coverage is not None:
            return check_coverage(coverage, "episode coverage")
        return self._flags(episode, "episode").astype(float)

    def _score_one(self, episode: Any, k: int) -> float:
        where = f"episode {k}"
        if self.outcome == "strict" and episode_field(episode, "success") is not None:
            return float(self._flags(episode, where).any())
        coverage = episode_field(episode, "coverage")
        if coverage is None:
            needs = "a success flag or coverage" if self.outcome == "strict" else "coverage"
            raise JudgeError(
                f"{where} has no recorded {needs}: record info['coverage'] / info['is_success'] per step"
            )
        return coverage_outcome(check_coverage(coverage, f"{where} coverage"), self.outcome)

    @staticmethod
    def _flags(episode: Any, where: str) -> np.ndarray:
        flags = episode_field(episode, "success")
        if flags is None:
            raise JudgeError(f"{where} has no recorded success flag: record info['is_success'] per step")
        flags = np.asarray(flags).reshape(-1)
        if flags.size == 0:
            raise JudgeError(f"{where} has an empty success flag trace")
        return flags.astype(bool)
