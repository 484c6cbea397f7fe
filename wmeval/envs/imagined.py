"""Imagined counterparts of the real envs: the task-specific wiring of `WorldModelEnv`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from wmeval.envs.world_model_env import WorldModelEnv
from wmeval.errors import ConfigError


def _batched(frames: np.ndarray, read: Any, batch_size: int) -> np.ndarray:
    """`read(images [b, 3, H, W] in [0, 1])` over uint8 frames `[N, H, W, 3]`, a batch at a time."""
    out = []
    for i in range(0, len(frames), batch_size):
        images = torch.from_numpy(frames[i : i + batch_size]).permute(0, 3, 1, 2).float() / 255.0
        out.append(read(images).cpu().numpy())
    return np.concatenate(out)


def pusht_state_reader(estimator: Any, batch_size: int = 256) -> Any:
    """Frames uint8 `[N, H, W, 3]` -> estimated PushT states `[N, 5]` (agent xy, block xy, block angle)."""
    return lambda frames: _batched(frames, estimator.predict_state, batch_size)


def pusht_spread_reader(estimator: Any, batch_size: int = 256) -> Any:
    """Frames uint8 `[N, H, W, 3]` -> the estimator's widest keypoint spread per frame `[N]` (simulator units)."""
    return lambda frames: _batched(frames, lambda x: estimator.keypoint_spread(x).amax(-1), batch_size)


def make_judge_spread(name: str) -> Any:
    """How widely `name`'s imagined judge reads each frame (see `wmeval.judges.readability`), or None."""
    if name != "pusht":
        return None
    from policies.pusht.state_estimator import load_default_estimator

    return pusht_spread_reader(load_default_estimator())


def imagined_coverage_rule(name: str) -> Any:
    """`name`'s success rule on estimated states `[N, 5]` -> coverage `[N]` (the judge's last step)."""
    if name != "pusht":
        raise ConfigError(f"env={name!r} has no imagined counterpart yet: the known one is pusht")
    from wmeval.envs.pusht import pusht_coverage

    return lambda states: np.asarray(pusht_coverage(states[:, 2:5]))


def make_imagined_env(
    name: str,
    world_model: Any,
    num_envs: int,
    *,
    max_episode_steps: int = 300,
    max_spread: float | None = None,
    **kwargs: Any,
) -> WorldModelEnv:
    """`name`'s real env provides start states and spaces; the world model provides everything after.

    `max_spread`: judge success only on frames the state estimator reads within this spread (see
    `WorldModelEnv`); None reads every frame.
    """
    rule = imagined_coverage_rule(name)
    from policies.pusht.state_estimator import load_default_estimator
    from wmeval.envs import make_env

    estimator = load_default_estimator()
    start_env = make_env(name, num_envs=num_envs, max_episode_steps=max_episode_steps)
    return WorldModelEnv(
        world_model,
        start_env,
        pusht_state_reader(estimator),
        rule,
        state_keys={"agent_pos": (0, 2)},
        max_episode_steps=max_episode_steps,
        spread_reader=pusht_spread_reader(estimator) if max_spread is not None else None,
        max_spread=max_spread,
        **kwargs,
    )
