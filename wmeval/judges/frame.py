"""The frame judge: how an imagined world's frames become state, coverage and success.

A world model's pixels carry no success flag, but if the task's state can be read off a frame, the task's own
rule (e.g. PushT's coverage of the goal by the T block) scores it exactly as the simulator would. The judge is
assembled from three parts a task provides (`wmeval.envs.registry.Task.frame_judge`): a state reader, the
task's coverage rule and, optionally, a spread reader that says how sharply the state reader reads each frame.

With `max_spread` (`gated`), a frame read less sharply than that does not move the judged coverage: it keeps
the episode's last judged value, so success is read only from frames as readable as real ones, never from a
dissolved block's centre of mass (see `wmeval.judges.readability`). The default reads every frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch

from wmeval.judges.base import JudgeError
from wmeval.judges.outcomes import is_success

if TYPE_CHECKING:
    from wmeval.rollout import Rollouts

StateReader = Callable[[np.ndarray], np.ndarray]  # uint8 frames [N, H, W, 3] -> states [N, S]
CoverageRule = Callable[[np.ndarray], np.ndarray]  # states [N, S] -> coverage [N] in [0, 1]
SpreadReader = Callable[[np.ndarray], np.ndarray]  # uint8 frames [N, H, W, 3] -> reader's spread [N]

EVERY_FRAME = ", read on every generated frame"
GATED = (
    ", frames the estimator cannot read as sharply as real ones SKIPPED (readable_only=true, a diagnostic: "
    "they keep the last readable coverage)"
)


def batched_reader(read: Callable[[torch.Tensor], torch.Tensor], batch_size: int = 256) -> Any:
    """An image model `read(images [b, 3, H, W] in [0, 1]) -> [b, ...]` as a reader of uint8 frames
    `[N, H, W, 3]` -> numpy `[N, ...]`, a batch at a time."""

    def reader(frames: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(frames), batch_size):
            images = torch.from_numpy(frames[i : i + batch_size]).permute(0, 3, 1, 2).float() / 255.0
            out.append(read(images).cpu().numpy())
        return np.concatenate(out)

    return reader


class FrameReading(NamedTuple):
    """One judged batch of frames: raw estimated `states` [N, S], judged `coverage` [N], `readable` [N]."""

    states: np.ndarray
    coverage: np.ndarray
    readable: np.ndarray


@dataclass(frozen=True)
class FrameJudge:
    """frames -> estimated states -> the task's coverage rule -> success (`is_success`), optionally gated.

    `description` names the state reader and rule for reports; `describe()` adds how frames were read.
    """

    state_reader: StateReader
    coverage_rule: CoverageRule
    description: str
    spread_reader: SpreadReader | None = None
    max_spread: float | None = None

    def __post_init__(self) -> None:
        if self.max_spread is not None and self.spread_reader is None:
            raise JudgeError("max_spread needs a spread_reader to measure each frame's spread")

    def gated(self, max_spread: float | None) -> FrameJudge:
        """The same judge skipping frames read with a spread above `max_spread` (None: every frame)."""
        return replace(self, max_spread=max_spread)

    def describe(self) -> str:
        """What the report says judged the imagined worlds, including whether frames were skipped."""
        return self.description + (GATED if self.max_spread is not None else EVERY_FRAME)

    def read(self, frames: np.ndarray, last_coverage: np.ndarray | None = None) -> FrameReading:
        """Judge uint8 frames [N, H, W, 3]. With a gate and `last_coverage` (each episode's last judged
        coverage), unreadable frames keep it; without `last_coverage` (start frames, which are real) every
        frame is judged whatever its spread."""
        states = np.asarray(self.state_reader(frames), dtype=np.float64)
        if states.ndim != 2 or len(states) != len(frames):
            raise JudgeError(
                f"state reader returned shape {states.shape} for {len(frames)} frames: one row each"
            )
        coverage = self.coverage(states)
        readable = np.ones(len(frames), dtype=bool)
        if self.max_spread is not None and last_coverage is not None:
            readable = self.spreads(frames) <= self.max_spread
            coverage = np.where(readable, coverage, last_coverage)
        return FrameReading(states, coverage, readable)

    def coverage(self, states: np.ndarray) -> np.ndarray:
        """The task's coverage of estimated states [N, S] -> [N]."""
        coverage = np.asarray(self.coverage_rule(states), dtype=np.float64)
        if coverage.shape != (len(states),):
            raise JudgeError(
                f"coverage rule returned shape {coverage.shape} for {len(states)} states: one each"
            )
        return coverage

    def spreads(self, frames: np.ndarray) -> np.ndarray:
        """How widely the state reader's reading of each frame spreads [N] (larger: less sure)."""
        if self.spread_reader is None:
            raise JudgeError("this frame judge has no spread reader: it cannot say how readable a frame is")
        return np.asarray(self.spread_reader(frames))

    def success(self, coverage: np.ndarray) -> np.ndarray:
        return is_success(coverage)

    def read_every_frame(self, rollouts: Rollouts) -> Rollouts:
        """The same rollouts as this judge would score them reading every frame, unreadable ones included.

        Imagined rollouts keep the raw reading of each frame (`states`), so this costs no rollout; an episode a
        false success on an unreadable frame would have ended early still runs its full length.
        """
        n, t, dim = rollouts.states.shape
        coverage = self.coverage(rollouts.states.reshape(n * t, dim)).reshape(n, t)
        coverage[:, 0] = rollouts.coverage[:, 0]
        return replace(rollouts, coverage=coverage, success=self.success(coverage.max(axis=1)))
