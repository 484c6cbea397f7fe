"""The one rollout loop: masking after the end, obs_every, action validation, PushT success rule."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from policies.replay import ReplayPolicy
from wmeval.envs import make_env
from wmeval.envs.pusht import GOAL_POSE, make_pusht_env, pusht_coverage, pusht_success, state_success
from wmeval.errors import WmevalError
from wmeval.rollout import Rollouts, rollout


class ProbePolicy:
    """Holds still and remembers every observation it was fed."""

    name = "probe"

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def reset(self) -> None:
        self.seen.clear()

    def select_action(self, observation: dict[str, torch.Tensor]) -> torch.Tensor:
        self.seen.append(observation["observation.pose"].clone())
        return observation["observation.state"].clone() + 40.0  # drift right/down: states keep changing


class BadPolicy:
    name = "bad-policy"

    def __init__(self, out: torch.Tensor) -> None:
        self.out = out

    def reset(self) -> None:
        pass

    def select_action(self, observation: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.out


@pytest.fixture(scope="module")
def state_env():
    env = make_pusht_env(2, obs_type="state", max_episode_steps=6)
    yield env
    env.close()


def test_episodes_stop_at_time_limit_and_are_masked(state_env) -> None:
    r = rollout(state_env, ProbePolicy(), max_steps=10, seeds=[3, 4, 5], progress=False)
    assert r.num_episodes == 3 and r.actions.shape == (3, 10, 2)
    assert list(r.lengths) == [6, 6, 6]  # the env's time limit ends them, not max_steps
    assert np.all(r.actions[:, 6:] == 0) and np.all(r.mask()[:, :6]) and not r.mask()[:, 6:].any()
    assert r.states.shape == (3, 11, 5)
    assert np.all(
        r.states[:, 6:] == r.states[:, 6:7]
    )  # after the end: the last real state, not a new episode
    assert r.frames is None  # state-only env has no pixels
    ep = r.episode(0)
    assert ep["actions"].shape == (6, 2) and ep["states"].shape == (7, 5) and ep["seed"] == 3


def test_obs_every_refeeds_the_held_observation(state_env) -> None:
    probe = ProbePolicy()
    rollout(state_env, probe, max_steps=5, seeds=[1, 2], obs_every=2, progress=False)
    seen = probe.seen
    assert torch.equal(seen[0], seen[1]) and torch.equal(seen[2], seen[3])
    assert not torch.equal(seen[1], seen[2])


def test_bad_actions_name_the_policy(state_env) -> None:
    with pytest.raises(WmevalError, match="bad-policy.*shape"):
        rollout(state_env, BadPolicy(torch.zeros(3, 2)), max_steps=2, seeds=[0, 1], progress=False)
    with pytest.raises(WmevalError, match="bad-policy.*NaN"):
        rollout(
            state_env, BadPolicy(torch.full((2, 2), float("nan"))), max_steps=2, seeds=[0, 1], progress=False
        )


def test_replay_reproduces_states_and_seeds_are_deterministic(state_env) -> None:
    first = rollout(state_env, ProbePolicy(), max_steps=6, seeds=[7, 8], progress=False)
    again = rollout(state_env, ReplayPolicy(first.actions), max_steps=6, seeds=[7, 8], progress=False)
    np.testing.assert_array_equal(first.actions, again.actions)
    np.testing.assert_allclose(first.states, again.states)


class StartOnGoal(gym.Wrapper):
    """Resets with the block exactly on the goal (gym_pusht sets position, then rotates about the CoG)."""

    def reset(self, **kwargs):
        theta = GOAL_POSE[2]
        cog = np.array([0.0, 45.0])
        rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        xy = GOAL_POSE[:2] - cog + rot @ cog
        return self.env.reset(seed=kwargs.get("seed"), options={"reset_to_state": [60.0, 60.0, *xy, theta]})


def test_success_stops_an_episode_and_pixels_are_recorded() -> None:
    env = make_pusht_env(2, max_episode_steps=20)
    env.envs[0] = StartOnGoal(env.envs[0])
    try:
        r = rollout(
            env,
            BadPolicy(torch.tensor([[60.0, 60.0], [60.0, 60.0]])),
            max_steps=5,
            seeds=[0, 1],
            progress=False,
        )
    finally:
        env.close()
    assert list(r.lengths) == [1, 5] and list(r.success) == [True, False]
    assert r.step_success[0, 0] and not r.step_success[0, 1:].any()
    assert r.frames.shape == (2, 6, 96, 96, 3) and r.frames.dtype == np.uint8
    np.testing.assert_array_equal(r.frames[0, 1], r.frames[0, 5])  # held after the end
    assert r.coverage[0, 1] > 0.95


def test_coverage_matches_the_simulator_and_success_rule() -> None:
    env = make_pusht_env(1, obs_type="state")
    try:
        _, info = env.reset(seed=11)
        rng = np.random.default_rng(0)
        for _ in range(5):
            _, _, _, _, info = env.step(rng.uniform(0, 512, size=(1, 2)))
            assert np.isclose(pusht_coverage(info["block_pose"][0]), info["coverage"][0])
    finally:
        env.close()
    assert pusht_coverage(GOAL_POSE) == pytest.approx(1.0)
    poses = np.array([GOAL_POSE, GOAL_POSE + [3.0, 0, 0], GOAL_POSE + [0, 0, 0.2], [100.0, 100.0, 0.0]])
    np.testing.assert_array_equal(pusht_success(poses), [True, False, False, False])
    assert state_success(np.array([0.0, 0.0, *GOAL_POSE])) is True


def test_rollouts_helpers_and_unknown_env() -> None:
    r = Rollouts(
        actions=np.zeros((2, 3, 2), np.float32),
        coverage=np.array([[0.1, 0.9, 0.5, 0.5], [0.0, 0.2, 0.3, 0.96]]),
        step_success=np.array([[False] * 3, [False, False, True]]),
        success=np.array([False, True]),
        lengths=np.array([3, 3]),
        seeds=np.array([0, 1]),
    )
    assert r.success_rate() == 0.5
    np.testing.assert_allclose(r.max_coverage(), [0.9, 0.96])
    assert r.summary()["max_coverage_ge_0.8"] == 1.0
    with pytest.raises(WmevalError, match="env='cartpole' is unknown"):
        make_env("cartpole")
