"""Frames with exact state labels, rendered by the simulator at sampled states: training data for the
PushT state estimator (which must read states both from real frames and from world-model frames)."""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from wmeval.envs.pusht import ENV_ID, GOAL_POSE, _import_gym_pusht, state_vector


def sample_states(n: int, rng: np.random.Generator, near_goal: float = 0.35) -> np.ndarray:
    """States [n, 5] to render: uniform over the arena, plus a share near the goal (where precision matters)."""
    states = np.empty((n, 5))
    states[:, :2] = rng.uniform(25, 487, size=(n, 2))
    states[:, 2:4] = rng.uniform(70, 440, size=(n, 2))
    states[:, 4] = rng.uniform(-np.pi, np.pi, size=n)
    near = rng.random(n) < near_goal
    k = int(near.sum())
    states[near, 2:4] = GOAL_POSE[:2] + rng.normal(0, 25, size=(k, 2))
    states[near, 4] = GOAL_POSE[2] + rng.normal(0, 0.4, size=k)
    return states


def render_states(states: np.ndarray, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Render frames uint8 [n, 96, 96, 3] and return them with the states the simulator actually settled in
    (setting a state runs one physics step, which can push the block off an overlapping agent)."""
    import gymnasium as gym

    _import_gym_pusht()
    env = gym.make(ENV_ID, obs_type="pixels_agent_pos", render_mode="rgb_array")
    frames = np.empty((len(states), 96, 96, 3), np.uint8)
    actual = np.empty((len(states), 5))
    try:
        for i, s in enumerate(tqdm(states, desc="render", disable=not progress)):
            obs, info = env.reset(options={"reset_to_state": s})
            frames[i] = obs["pixels"]
            actual[i] = state_vector(info)
    finally:
        env.close()
    actual[:, 4] = np.angle(np.exp(1j * actual[:, 4]))  # wrap to (-pi, pi]
    return frames, actual


def random_state_frames(n: int, seed: int = 0, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """n labelled frames from seeded random states."""
    return render_states(sample_states(n, np.random.default_rng(seed)), progress=progress)
