"""Judge imagined frames by estimating the simulator state and applying the task's own success rule.

Why: a world model's pixels carry no success flag, but if the block pose can be read off the frames,
the real task geometry (e.g. PushT's T-block coverage of the goal) scores them exactly as the simulator
would. The estimator and the rule are injected callables, so this file knows no task geometry; PushT's
rule comes from `wmeval/envs/pusht.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from wmeval.judges.base import (
    GRADED_COVERAGE,
    STRICT_COVERAGE,
    JudgeError,
    check_coverage,
    check_outcome,
    coverage_outcome,
    episode_field,
    episode_frames,
)

#: PushT state layout the estimator must return, one row per frame.
STATE_NAMES = ("agent_x", "agent_y", "block_x", "block_y", "block_theta")

#: frames uint8 [T, H, W, 3] -> states float [T, 5] (STATE_NAMES order).
StateEstimator = Callable[[np.ndarray], np.ndarray]
#: states [T, 5] -> per-step coverage (or 0/1 success) [T] in [0, 1].
SuccessRule = Callable[[np.ndarray], np.ndarray]


class StateProbeJudge:
    """frames -> estimated states -> task rule -> per-step coverage -> episode outcome.

    `score` returns the chosen `outcome` ("strict": any step > 0.95, "graded": max >= 0.8, "coverage":
    max coverage); `evaluate` returns all three plus, where episodes carry true states, the estimator's
    error, which is what bounds this judge's trustworthiness.
    """

    def __init__(
        self,
        estimator: StateEstimator,
        rule: SuccessRule,
        *,
        outcome: str = "strict",
        name: str = "state_probe",
    ) -> None:
        self.estimator = estimator
        self.rule = rule
        self.outcome = check_outcome(outcome)
        self.name = name

    def estimate_states(self, episode: Any) -> np.ndarray:
        """Estimated states [T, 5] for the episode's frames."""
        frames = episode_frames(episode)
        states = np.asarray(self.estimator(frames), dtype=float)
        if states.shape != (frames.shape[0], len(STATE_NAMES)):
            raise JudgeError(
                f"state estimator returned shape {states.shape}, expected ({frames.shape[0]}, "
                f"{len(STATE_NAMES)}) = one ({', '.join(STATE_NAMES)}) row per frame"
            )
        return states

    def step_scores(self, episode: Any) -> np.ndarray:
        """Per-step coverage [T] under the task rule, from estimated states."""
        states = self.estimate_states(episode)
        coverage = np.asarray(self.rule(states), dtype=float).reshape(-1)
        if coverage.size != states.shape[0]:
            raise JudgeError(
                f"success rule returned {coverage.size} values for {states.shape[0]} steps: "
                "it must return one coverage per step"
            )
        return check_coverage(coverage, "success rule output")

    def score(self, episodes: Sequence[Any]) -> np.ndarray:
        return np.array([coverage_outcome(self.step_scores(ep), self.outcome) for ep in episodes])

    def evaluate(self, episodes: Sequence[Any]) -> dict[str, Any]:
        """Every outcome per episode and their means; state error when true states are available.

        Keys: strict, graded, max_coverage (per-episode lists), strict_rate, graded_rate,
        mean_max_coverage, thresholds, and state_mae ({name: mean abs error}, block_theta wrapped to
        [-pi, pi]) over the episodes that carry `states`, or None if none do.
        """
        max_cov, errors = [], []
        for ep in episodes:
            max_cov.append(float(self.step_scores(ep).max()))
            true_states = episode_field(ep, "states")
            if true_states is not None:
                errors.append(_state_errors(self.estimate_states(ep), np.asarray(true_states, float)))
        if not max_cov:
            raise JudgeError("no episodes to evaluate: pass at least one episode")
        max_cov_arr = np.array(max_cov)
        # strict needs "any step > 0.95", which is the same as "max coverage > 0.95".
        strict = (max_cov_arr > STRICT_COVERAGE).astype(float)
        graded = (max_cov_arr >= GRADED_COVERAGE).astype(float)
        state_mae = None
        if errors:
            stacked = np.concatenate(errors, axis=0)
            state_mae = {n: float(v) for n, v in zip(STATE_NAMES, stacked.mean(axis=0), strict=True)}
        return {
            "strict": strict.tolist(),
            "graded": graded.tolist(),
            "max_coverage": max_cov_arr.tolist(),
            "strict_rate": float(strict.mean()),
            "graded_rate": float(graded.mean()),
            "mean_max_coverage": float(max_cov_arr.mean()),
            "thresholds": {"strict": STRICT_COVERAGE, "graded": GRADED_COVERAGE},
            "state_mae": state_mae,
        }


def _state_errors(estimated: np.ndarray, true: np.ndarray) -> np.ndarray:
    """|estimated - true| per step and state dim [T, 5]; the angle error is wrapped to [-pi, pi]."""
    if true.shape != estimated.shape:
        raise JudgeError(
            f"episode states have shape {true.shape}, expected {estimated.shape}: "
            f"pass ({', '.join(STATE_NAMES)}) per frame"
        )
    err = estimated - true
    err[:, 4] = (err[:, 4] + np.pi) % (2 * np.pi) - np.pi
    return np.abs(err)
