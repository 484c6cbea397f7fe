"""Real environments as gymnasium vector envs with LeRobot observation keys."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from wmeval.envs import registration  # noqa: F401  (registers wmeval/WorldModel-v0 with gymnasium)
from wmeval.errors import ConfigError

KNOWN_ENVS = ("pusht",)


def make_env(name: str, num_envs: int = 1, **kwargs: Any) -> gym.vector.VectorEnv:
    """Vector env by name (`pusht`); unknown names are a one-line error listing the known ones."""
    if name == "pusht":
        from wmeval.envs.pusht import make_pusht_env

        return make_pusht_env(num_envs, **kwargs)
    raise ConfigError(f"env={name!r} is unknown: choose one of {', '.join(KNOWN_ENVS)}")
