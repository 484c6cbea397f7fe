"""`WorldModelEnv`: a world model behind the gymnasium vector-env API, shaped exactly like a real env.

Start states come from the real env itself (reset with the same seeds), so imagined and real rollouts start
from identical states. The world model advances one frame per `sim_steps_per_frame` actions (made into one
world-model action by its `action_mode`: concatenated, or the first one sampled); between frames the env holds
the last observation, which matches the rollout loop's `obs_every` protocol. What a real env reads off its
simulator comes from one judge (`wmeval.judges.frame.FrameJudge`) applied to the generated frames: estimated
state, coverage and success, as DIAMOND's env takes its reward/end model. `state_keys` compute the real env's
low-dimensional observations from the estimated state (PushT's `agent_pos`, `pose` and keypoint
`environment_state`), so a policy reads the same keys in both worlds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from wmeval.envs.registry import StateObservation
from wmeval.errors import WmevalError
from wmeval.judges.frame import FrameJudge
from worldmodel.data.actions import step_action_dim, step_actions
from worldmodel.data.frames import to_model_frames
from worldmodel.threads import one_thread


class WorldModelEnv(gym.vector.VectorEnv):
    """Imagined rollouts of `start_env.num_envs` episodes at once, one batched world-model call per frame."""

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        world_model: Any,
        start_env: gym.vector.VectorEnv,
        judge: FrameJudge,
        *,
        state_keys: Mapping[str, StateObservation] | None = None,
        max_episode_steps: int = 300,
        num_steps: int | None = None,
        seed: int = 0,
    ) -> None:
        self.world_model = world_model
        self.start_env = start_env
        self.judge = judge
        self.state_keys = dict(state_keys or {})
        self.max_episode_steps = max_episode_steps
        self.num_steps, self.seed = num_steps, seed
        self.num_envs = start_env.num_envs
        self.single_observation_space = start_env.single_observation_space
        self.observation_space = start_env.observation_space
        self.single_action_space = start_env.single_action_space
        self.action_space = start_env.action_space
        raw_dim = int(np.prod(self.single_action_space.shape))
        if world_model.action_dim != step_action_dim(raw_dim, self.sim_steps_per_frame, self.action_mode):
            raise WmevalError(
                f"world model action_dim {world_model.action_dim} does not fit env action dim {raw_dim} at "
                f"{self.sim_steps_per_frame} sim steps per frame ({self.action_mode}): it was trained for another env"
            )
        self.frame_shape = self.single_observation_space["pixels"].shape  # (H, W, 3)
        self._buffer: list[np.ndarray] = []
        self._obs: dict[str, np.ndarray] = {}
        self._info: dict[str, np.ndarray] = {}
        self._t = 0

    @property
    def sim_steps_per_frame(self) -> int:
        return int(self.world_model.config.sim_steps_per_frame)

    @property
    def action_mode(self) -> str:
        return str(self.world_model.config.action_mode)

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None) -> tuple[dict, dict]:
        with one_thread():  # resizes and generated frames round by thread count (worldmodel/threads.py)
            return self._reset(seed, options)

    def _reset(self, seed: int | list[int] | None, options: dict | None) -> tuple[dict, dict]:
        obs, info = self.start_env.reset(seed=seed, options=options)
        frames = to_model_frames(obs["pixels"], self.world_model.image_size)[:, None]
        seeds = np.atleast_1d(seed if seed is not None else 0)
        self.world_model.reset(frames.to(self.world_model.device), seed=int(self.seed + seeds.sum() % 2**31))
        self._buffer, self._t = [], 0
        self._obs = {k: np.asarray(v).copy() for k, v in obs.items()}
        self._update_info(self._obs["pixels"], at_reset=True)
        return self._copy_obs(), dict(self._info)

    def step(self, actions: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray, dict]:
        with one_thread():
            return self._step(actions)

    def _step(self, actions: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray, dict]:
        actions = np.asarray(actions, dtype=np.float32).reshape(self.num_envs, -1)
        self._buffer.append(actions)
        self._t += 1
        if len(self._buffer) == self.sim_steps_per_frame:
            chunk = torch.from_numpy(
                step_actions(np.stack(self._buffer, axis=1), self.sim_steps_per_frame, self.action_mode)[:, 0]
            )
            self._buffer = []
            frames = self.world_model.step(chunk.to(self.world_model.device), num_steps=self.num_steps)
            pixels = self._to_pixels(frames.cpu())
            self._update_info(pixels)
            self._obs["pixels"] = pixels
            for key, observe in self.state_keys.items():
                self._obs[key] = np.asarray(observe(self._info["state"])).astype(self._obs[key].dtype)
        success = self._info["is_success"]
        truncated = np.full(self.num_envs, self._t >= self.max_episode_steps)
        reward = self._info["coverage"].astype(np.float64)
        return self._copy_obs(), reward, success.copy(), truncated, dict(self._info)

    def _to_pixels(self, frames: torch.Tensor) -> np.ndarray:
        """Generated `[N, 3, h, w]` in [0, 1] -> uint8 `[N, H, W, 3]` at the real env's observation size."""
        h, w = self.frame_shape[:2]
        if tuple(frames.shape[-2:]) != (h, w):
            frames = F.interpolate(frames, size=(h, w), mode="bilinear", align_corners=False)
        # contiguous [N, H, W, 3] (one copy here): every step's observation copy reads it several times faster
        # than a strided view. The resize stays channels-first: its channels-last kernel rounds differently
        return (frames.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()

    def _update_info(self, pixels: np.ndarray, at_reset: bool = False) -> None:
        """Judge `pixels`; start frames are real, so they are judged whatever their spread."""
        reading = self.judge.read(pixels, None if at_reset else self._info["coverage"])
        self._info = {
            "state": reading.states,
            "coverage": reading.coverage,
            "is_success": self.judge.success(reading.coverage),
            "readable": reading.readable,
        }

    def _copy_obs(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self._obs.items()}

    def close(self, **kwargs: Any) -> None:
        self.start_env.close()
