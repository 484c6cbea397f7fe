"""Real environments as gymnasium vector envs with LeRobot observation keys; each task declared in its own
module and named in `wmeval.envs.registry`."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from wmeval.envs import registration  # noqa: F401  (registers wmeval/WorldModel-v0 with gymnasium)
from wmeval.envs.registry import get_task


def make_env(name: str, num_envs: int = 1, **kwargs: Any) -> gym.vector.VectorEnv:
    """The real vector env of the task registered as `name`; unknown names are a one-line error listing the
    known ones."""
    return get_task(name).make_env(num_envs, **kwargs)
