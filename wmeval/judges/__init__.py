"""Judges: map an episode (frames, optional states) to a success score in [0, 1]."""

from wmeval.judges.base import (
    GRADED_COVERAGE,
    STRICT_COVERAGE,
    Episode,
    Judge,
    JudgeError,
    StepJudge,
)
from wmeval.judges.sim_flag import SimFlagJudge
from wmeval.judges.state_probe import StateProbeJudge
from wmeval.judges.trajectory_probe import TrajectoryProbe, grid_pool, pool_time

__all__ = [
    "GRADED_COVERAGE",
    "STRICT_COVERAGE",
    "Episode",
    "Judge",
    "JudgeError",
    "SimFlagJudge",
    "StateProbeJudge",
    "StepJudge",
    "TrajectoryProbe",
    "grid_pool",
    "pool_time",
]
