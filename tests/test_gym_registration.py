"""`wmeval/WorldModel-v0`: built by gymnasium from its id, and driven by LeRobot's own eval rollout."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from lerobot.scripts.lerobot_eval import rollout as lerobot_rollout

from tests.wm_fixtures import pusht_shaped_world_model
from wmeval.envs.pusht import TASK_DESCRIPTION, pusht_reward
from wmeval.envs.registration import ENV_ID
from wmeval.judges.frame import FrameJudge
from wmeval.rollout import rollout


class Still(torch.nn.Module):
    """An nn.Module policy (LeRobot's rollout asserts one) that pushes right and remembers its inputs."""

    name = "still"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict] = []

    def reset(self) -> None:
        self.seen.clear()

    def select_action(self, observation: dict) -> torch.Tensor:
        self.seen.append(observation)
        return observation["observation.state"].clone() + torch.tensor([30.0, 0.0])


def identity(x):  # noqa: ANN001, ANN201  (LeRobot's env/policy processors, none needed here)
    return x


def lerobot(env: gym.vector.VectorEnv, policy: Still, seeds: list[int]) -> dict:
    return lerobot_rollout(env, policy, identity, identity, identity, identity, seeds=seeds)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return pusht_shaped_world_model(tmp_path_factory.mktemp("wm") / "model")


def test_make_vec_builds_a_world_model_env_lerobots_rollout_drives(model_dir):
    """LeRobot's loop on the registered env sees the task, stops at the time limit and gets the judge's
    coverage as gym-pusht's reward: the same numbers wmeval's own loop records in the same env from the same seeds."""
    env = gym.make_vec(ENV_ID, num_envs=2, world_model=model_dir, max_episode_steps=6, seed=3)
    try:
        policy = Still()
        # seeds 36 and 38 start with the block partly on the goal: the judged coverage is not all zero
        ours = rollout(env, policy, max_steps=6, seeds=[36, 38], progress=False, keep_frames=False)
        assert policy.seen[-1]["observation.pose"].shape == (2, 5)  # wmeval's loop maps the env's `pose`
        theirs = lerobot(env, policy, [36, 38])
        spaces = env.single_observation_space
    finally:
        env.close()
    assert spaces["environment_state"].shape == (16,) and spaces["pose"].shape == (5,)
    assert policy.seen[-1]["observation.environment_state"].shape == (2, 16)  # the keypoints, as LeRobot maps
    assert policy.seen[0]["task"] == [TASK_DESCRIPTION, TASK_DESCRIPTION]
    assert theirs["reward"].shape == (2, 6) and theirs["done"][:, -1].all()
    assert theirs["reward"].max() > 0.1
    np.testing.assert_allclose(theirs["reward"].numpy(), pusht_reward(ours.coverage[:, 1:]), rtol=1e-6)
    np.testing.assert_allclose(theirs["action"].numpy(), ours.actions, rtol=1e-6)


def test_make_builds_one_episode_that_matches_the_batched_env(model_dir):
    single = gym.make(ENV_ID, world_model=model_dir, max_episode_steps=6, seed=3)
    batched = gym.make_vec(ENV_ID, num_envs=1, world_model=model_dir, max_episode_steps=6, seed=3)
    try:
        obs, _ = single.reset(seed=7)
        vobs, _ = batched.reset(seed=[7])
        np.testing.assert_array_equal(obs["pixels"], vobs["pixels"][0])
        for _ in range(6):
            action = np.array([300.0, 200.0], np.float32)
            obs, reward, terminated, truncated, _ = single.step(action)
            vobs, vreward, *_ = batched.step(action[None])
            np.testing.assert_array_equal(obs["pixels"], vobs["pixels"][0])
            assert reward == pytest.approx(float(vreward[0]))
        assert truncated and single.unwrapped.task == TASK_DESCRIPTION
        assert single.render().shape == obs["pixels"].shape
    finally:
        single.close()
        batched.close()


def test_lerobots_rollout_reads_success_where_the_judge_sees_it():
    """LeRobot reads success only from `final_info`: an imagined success at step 2 must show there."""
    from wmeval.envs import make_env
    from wmeval.envs.lerobot_env import LeRobotVectorEnv
    from wmeval.envs.world_model_env import WorldModelEnv
    from worldmodel.baselines import CopyLastFrameWorldModel

    class Brightening(CopyLastFrameWorldModel):
        """Frame k is grey level k/2 for the first episode, dark for the second: the fake judge reads it."""

        def step(self, actions: torch.Tensor, num_steps: int | None = None) -> torch.Tensor:
            self.k += 1
            frames = torch.zeros((len(actions), 3, *self.image_size))
            frames[0] = min(1.0, self.k / 2)
            return frames

    wm = Brightening((16, 16), raw_action_dim=2)
    wm.k = 0
    level = lambda px: px[:, 0, 0, 0] / 255.0  # noqa: E731
    imagined = WorldModelEnv(
        wm,
        make_env("pusht", num_envs=2, max_episode_steps=4),
        FrameJudge(lambda px: np.repeat(level(px)[:, None], 5, axis=1), lambda states: states[:, 0], "level"),
        max_episode_steps=4,
    )
    env = LeRobotVectorEnv(imagined, fps=10, reward=pusht_reward)
    try:
        out = lerobot(env, Still(), [0, 1])
    finally:
        env.close()
    assert out["success"].tolist() == [[False, True, True, True], [False, False, False, False]]
    assert out["done"][0].tolist() == [False, True, True, True] and out["done"][1, -1]


def test_lerobot_eval_policy_in_a_world_model_agrees_with_wmevals_eval_info(model_dir, tmp_path):
    """LeRobot's own `eval_policy` (a saved LeRobot policy, its processors) on the registered env reports
    the same per-episode numbers as the eval_info wmeval writes for that world."""
    from lerobot.scripts.lerobot_eval import eval_policy

    from policies.registry import make_policy
    from tests.test_policies import _save_tiny_diffusion
    from wmeval.report.eval_info import eval_info

    _save_tiny_diffusion(str(tmp_path / "policy"))
    policy = make_policy(f"lerobot:{tmp_path / 'policy'}")
    env = gym.make_vec(ENV_ID, num_envs=2, world_model=model_dir, max_episode_steps=6, seed=3)
    try:
        torch.manual_seed(0)
        theirs = eval_policy(
            env,
            policy.policy,
            identity,
            identity,
            policy.preprocessor,
            policy.postprocessor,
            2,
            start_seed=36,
        )
        torch.manual_seed(0)
        ours = eval_info(rollout(env, policy, max_steps=6, seeds=[36, 37], progress=False), pusht_reward)
    finally:
        env.close()
    assert theirs["per_episode"][0]["sum_reward"] > 0.1
    for mine, lerobots in zip(ours["per_episode"], theirs["per_episode"], strict=True):
        assert mine == pytest.approx(lerobots)
    for key in ("avg_sum_reward", "avg_max_reward", "pc_success"):
        assert ours["aggregated"][key] == pytest.approx(theirs["aggregated"][key])
