"""PushT's block keypoints are gym-pusht's own: LeRobot's PushT datasets store them as
`observation.environment_state`."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from wmeval.envs.pusht import ENV_ID, _import_gym_pusht, block_keypoints


def keypoint_env() -> gym.Env:
    """gym-pusht as LeRobot's keypoint datasets were made: its own `environment_state` is the 16 keypoints."""
    _import_gym_pusht()
    return gym.make(ENV_ID, obs_type="environment_state_agent_pos", max_episode_steps=1000)


def test_block_keypoints_are_gym_pushts_own_at_many_states() -> None:
    env = keypoint_env()
    try:
        rng = np.random.default_rng(0)
        poses, expected = [], []
        for theta in (0.0, 0.7, -2.5, 3 * np.pi + 0.4):  # unwrapped angles too, as the env reports them
            state = [*rng.uniform(50, 450, 4), theta]
            obs, info = env.reset(seed=0, options={"reset_to_state": state})
            for _ in range(3):
                poses.append(info["block_pose"])
                expected.append(obs["environment_state"])
                obs, _, _, _, info = env.step(rng.uniform(0, 512, 2))
    finally:
        env.close()
    poses, expected = np.array(poses), np.array(expected)
    np.testing.assert_allclose(block_keypoints(poses), expected, atol=1e-9)
    assert np.ptp(expected, axis=0).min() > 1  # the states differ, so a constant answer would not pass
    batched = block_keypoints(poses.reshape(3, 4, 3))
    assert batched.shape == (3, 4, 16)
    np.testing.assert_allclose(batched.reshape(-1, 16), expected, atol=1e-9)
