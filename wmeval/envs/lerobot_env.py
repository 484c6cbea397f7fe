"""A `WorldModelEnv` in the shape LeRobot's eval loop (`lerobot.scripts.lerobot_eval.rollout`) expects.

LeRobot's loop reads more than the gymnasium vector API: `env.envs[i]` (the task attributes),
`env.call(name)` (`_max_episode_steps`, `task_description`), and success only from
`info["final_info"]["is_success"]`, which its own vector envs (autoreset `SAME_STEP`) report when an episode
ends; its reward is the real env's (for PushT a function of coverage, where `WorldModelEnv` returns the
coverage itself). `LeRobotVectorEnv` adds exactly that surface around a `WorldModelEnv`; `WorldModelSingleEnv` is one
imagined episode as a plain `gym.Env`, for `gym.make` and for LeRobot's `make_env`, which vectorises
single envs itself (each with its own copy of the world model).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from wmeval.envs.registry import get_task
from wmeval.envs.world_model_env import WorldModelEnv
from wmeval.errors import ConfigError

Reward = Callable[[np.ndarray], np.ndarray]  # judged coverage [...] -> the env's reward [...]


def env_reward(name: str) -> Reward:
    """`name`'s reward as a function of coverage, so a world model's reward is the real env's formula
    applied to the judged coverage (and lerobot-eval numbers agree between the worlds)."""
    reward = get_task(name).reward
    if reward is None:
        raise ConfigError(f"env={name!r} declares no reward formula (its Task's `reward`)")
    return reward


def _declared_task(real: Any) -> tuple[str, str]:
    """(task, task_description) as the real env that starts the episode declares them ("" when it does not)."""
    task = str(getattr(real, "task", ""))
    return task, str(getattr(real, "task_description", task))


class _SubEnv:
    """Episode `i` of a batch, as LeRobot's eval inspects a sub-env: its task and time limit."""

    def __init__(self, env: WorldModelEnv, i: int) -> None:
        self.task, self.task_description = _declared_task(env.start_env.envs[i])
        self._max_episode_steps = env.max_episode_steps


class LeRobotVectorEnv(gym.vector.VectorWrapper):
    """`WorldModelEnv` + the SyncVectorEnv surface LeRobot's `rollout`/`eval_policy` use (see the module doc)."""

    def __init__(self, env: WorldModelEnv, fps: int, reward: Reward) -> None:
        super().__init__(env)
        self.reward = reward
        env.metadata = {**env.metadata, "render_fps": fps}  # eval_policy reads env.unwrapped.metadata
        self.envs = [_SubEnv(env, i) for i in range(env.num_envs)]

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Each episode's attribute `name` (what LeRobot asks for: task, time limit)."""
        return tuple(getattr(sub, name) for sub in self.envs)

    def step(self, actions: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, _, terminated, truncated, info = self.env.step(actions)
        reward = self.reward(info["coverage"])
        ended = np.asarray(terminated) | np.asarray(truncated)
        if ended.any():  # gymnasium's SAME_STEP layout: values per env, `_key` masks where they apply
            info = {**info, "final_info": {"is_success": info["is_success"] & ended, "_is_success": ended}}
        return obs, reward, terminated, truncated, info


class WorldModelSingleEnv(gym.Env):
    """One imagined episode as a `gym.Env` (a one-episode `WorldModelEnv` underneath)."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, env: WorldModelEnv, fps: int, reward: Reward) -> None:
        if env.num_envs != 1:
            raise ValueError(f"WorldModelSingleEnv wraps a one-episode WorldModelEnv, got {env.num_envs}")
        self.env, self.reward = env, reward
        self.metadata = {**self.metadata, "render_fps": fps}
        self.render_mode = "rgb_array"
        self.observation_space = env.single_observation_space
        self.action_space = env.single_action_space
        self.task, self.task_description = _declared_task(env.start_env.envs[0])
        self._max_episode_steps = env.max_episode_steps
        self._pixels: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        obs, info = self.env.reset(seed=None if seed is None else [seed], options=options)
        return self._first(obs), self._first(info)

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        obs, _, terminated, truncated, info = self.env.step(np.asarray(action)[None])
        reward = float(self.reward(info["coverage"][:1])[0])
        return self._first(obs), reward, bool(terminated[0]), bool(truncated[0]), self._first(info)

    def render(self) -> np.ndarray | None:
        return self._pixels

    def _first(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        out = {k: np.asarray(v)[0] for k, v in batch.items()}
        if "pixels" in out:
            self._pixels = out["pixels"]
        return out

    def close(self) -> None:
        self.env.close()
