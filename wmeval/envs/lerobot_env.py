"""A `WorldModelEnv` in the shape LeRobot's eval loop (`lerobot.scripts.lerobot_eval.rollout`) expects.

LeRobot's loop reads more than the gymnasium vector API: `env.envs[i]` (the task attributes, `render()`),
`env.call(name)` (`_max_episode_steps`, `task_description`), and success only from
`info["final_info"]["is_success"]`, which its own vector envs (autoreset `SAME_STEP`) report when an episode
ends. `LeRobotVectorEnv` adds exactly that surface around a `WorldModelEnv`; `WorldModelSingleEnv` is one
imagined episode as a plain `gym.Env`, for `gym.make` and for LeRobot's `make_env`, which vectorises
single envs itself (each with its own copy of the world model).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from wmeval.envs.world_model_env import WorldModelEnv


def _declared_task(real: Any) -> tuple[str, str]:
    """(task, task_description) as the real env that starts the episode declares them ("" when it does not)."""
    task = str(getattr(real, "task", ""))
    return task, str(getattr(real, "task_description", task))


class _SubEnv:
    """Episode `i` of a batch, as LeRobot's eval inspects a sub-env: task, time limit, current frame."""

    def __init__(self, parent: LeRobotVectorEnv, i: int) -> None:
        self._parent, self._i = parent, i
        self.task, self.task_description = _declared_task(parent.env.start_env.envs[i])
        self._max_episode_steps = parent.env.max_episode_steps

    def render(self) -> np.ndarray:
        return self._parent.last_observation["pixels"][self._i]


class LeRobotVectorEnv(gym.vector.VectorWrapper):
    """`WorldModelEnv` + the SyncVectorEnv surface LeRobot's `rollout`/`eval_policy` use (see the module doc)."""

    def __init__(self, env: WorldModelEnv, fps: int) -> None:
        super().__init__(env)
        env.metadata = {**env.metadata, "render_fps": fps}  # eval_policy reads env.unwrapped.metadata
        self.envs = [_SubEnv(self, i) for i in range(env.num_envs)]
        self.last_observation: dict[str, np.ndarray] = {}

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        values = [getattr(sub, name) for sub in self.envs]
        return tuple(v(*args, **kwargs) if callable(v) else v for v in values)

    def reset(self, **kwargs: Any) -> tuple[dict, dict]:
        obs, info = self.env.reset(**kwargs)
        self.last_observation = obs
        return obs, info

    def step(self, actions: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, reward, terminated, truncated, info = self.env.step(actions)
        self.last_observation = obs
        ended = np.asarray(terminated) | np.asarray(truncated)
        if ended.any():  # gymnasium's SAME_STEP layout: values per env, `_key` masks where they apply
            info = {**info, "final_info": {"is_success": info["is_success"] & ended, "_is_success": ended}}
        return obs, reward, terminated, truncated, info


class WorldModelSingleEnv(gym.Env):
    """One imagined episode as a `gym.Env` (a one-episode `WorldModelEnv` underneath)."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, env: WorldModelEnv, fps: int) -> None:
        if env.num_envs != 1:
            raise ValueError(f"WorldModelSingleEnv wraps a one-episode WorldModelEnv, got {env.num_envs}")
        self.env = env
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
        obs, reward, terminated, truncated, info = self.env.step(np.asarray(action)[None])
        return self._first(obs), float(reward[0]), bool(terminated[0]), bool(truncated[0]), self._first(info)

    def render(self) -> np.ndarray | None:
        return self._pixels

    def _first(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        out = {k: np.asarray(v)[0] for k, v in batch.items()}
        if "pixels" in out:
            self._pixels = out["pixels"]
        return out

    def close(self) -> None:
        self.env.close()
