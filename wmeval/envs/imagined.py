"""Imagined counterparts of the real envs: a task's real env for start states, its frame judge for the rest."""

from __future__ import annotations

from typing import Any

from wmeval.envs.registry import get_task
from wmeval.envs.world_model_env import WorldModelEnv
from wmeval.judges.frame import FrameJudge


def make_imagined_env(
    name: str,
    world_model: Any,
    num_envs: int,
    *,
    max_episode_steps: int = 300,
    max_spread: float | None = None,
    judge: FrameJudge | None = None,
    **kwargs: Any,
) -> WorldModelEnv:
    """`name`'s real env provides start states and spaces; the world model provides everything after.

    `judge`: the task's frame judge, built from its shipped estimator when not given (pass one to share it).
    `max_spread`: judge success only on frames the state estimator reads within this spread (see
    `FrameJudge.gated`); None reads every frame.
    """
    task = get_task(name)
    judge = judge if judge is not None else task.judge()
    if max_spread is not None:
        judge = judge.gated(max_spread)
    start_env = task.make_env(num_envs, max_episode_steps=max_episode_steps)
    return WorldModelEnv(
        world_model,
        start_env,
        judge,
        state_keys=dict(task.state_keys),
        max_episode_steps=max_episode_steps,
        **kwargs,
    )
