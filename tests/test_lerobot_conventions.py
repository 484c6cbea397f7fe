"""wmeval's outputs in LeRobot's conventions: lerobot-eval's eval_info layout, rollout videos, the task string."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from wmeval.envs.pusht import make_pusht_env, pusht_reward
from wmeval.report.eval_info import eval_info, file_name, write_eval_infos
from wmeval.rollout import rollout

PER_EPISODE_KEYS = {"episode_ix", "sum_reward", "max_reward", "success", "seed"}
AGGREGATED_KEYS = {"avg_sum_reward", "avg_max_reward", "pc_success", "eval_s", "eval_ep_s"}


class Drift:
    """Moves the agent a fixed offset each step, so the block may be pushed; remembers what it was fed."""

    name = "drift"

    def __init__(self) -> None:
        self.seen: list[dict] = []

    def reset(self) -> None:
        self.seen.clear()

    def select_action(self, observation: dict) -> torch.Tensor:
        self.seen.append(observation)
        return observation["observation.state"].clone() + torch.tensor([25.0, 40.0])


@pytest.fixture(scope="module")
def state_rollouts():
    env = make_pusht_env(2, obs_type="state", max_episode_steps=8)
    try:
        yield rollout(env, Drift(), max_steps=8, seeds=[36, 38, 4], progress=False)
    finally:
        env.close()


def test_eval_info_sums_the_simulators_own_rewards(state_rollouts):
    """Each episode's sum/max reward equals what gym-pusht itself returns when its actions are replayed
    (seeds 36 and 38 start with the block partly on the goal, so the rewards are not all zero)."""
    r = state_rollouts
    info = eval_info(r, pusht_reward)
    assert set(info) == {"per_episode", "aggregated"}
    assert all(set(ep) == PER_EPISODE_KEYS for ep in info["per_episode"])
    assert set(info["aggregated"]) == AGGREGATED_KEYS
    env = make_pusht_env(1, obs_type="state", max_episode_steps=8)
    try:
        for i, ep in enumerate(info["per_episode"]):
            env.reset(seed=int(r.seeds[i]))
            rewards = [float(env.step(a[None])[1][0]) for a in r.episode(i)["actions"]]
            assert ep["episode_ix"] == i and ep["seed"] == int(r.seeds[i])
            assert ep["sum_reward"] == pytest.approx(sum(rewards))
            assert ep["max_reward"] == pytest.approx(max(rewards))
            assert ep["success"] == bool(r.success[i])
    finally:
        env.close()
    agg = info["aggregated"]
    assert agg["avg_sum_reward"] == pytest.approx(np.mean([e["sum_reward"] for e in info["per_episode"]]))
    assert agg["pc_success"] == pytest.approx(100 * r.success.mean())
    assert agg["eval_s"] > 0 and agg["eval_ep_s"] == pytest.approx(agg["eval_s"] / 3)


def test_eval_info_files_per_world_and_policy(state_rollouts, tmp_path):
    written = write_eval_infos(
        tmp_path, {"real": {"lerobot:me/pol": state_rollouts}, "wm": {"drift": state_rollouts}}, "pusht"
    )
    assert written["real"]["lerobot:me/pol"] == tmp_path / "eval_info" / "real" / "lerobot_me_pol.json"
    saved = json.loads((tmp_path / "eval_info" / "wm" / "drift.json").read_text())
    assert saved["per_episode"] == eval_info(state_rollouts, pusht_reward)["per_episode"]
    assert file_name("pusht/expert@image") == "pusht_expert@image"


def test_episode_videos_show_real_left_and_imagined_right(tmp_path):
    """Decoded MP4s: left half is the real episode, right half the world's; the shorter one holds its end."""
    import imageio.v3 as iio

    from wmeval.report.episodes import EpisodeView, WorldTrace
    from wmeval.report.video import write_episode_videos

    real = np.zeros((5, 32, 32, 3), np.uint8)
    real[:, :, :, 0] = np.arange(5)[:, None, None] * 50  # red ramps up over the real episode
    imagined = np.full((3, 32, 32, 3), 200, np.uint8)  # a grey world that ended after 2 steps
    view = EpisodeView("pusht/expert@image", 1, {"real": WorldTrace(real), "wm": WorldTrace(imagined)})
    paths = write_episode_videos(tmp_path, [view], fps=10)
    assert paths == {"wm": {"pusht/expert@image": ["videos/wm/pusht_expert@image/episode_1.mp4"]}}
    video = iio.imread(tmp_path / paths["wm"]["pusht/expert@image"][0], plugin="pyav")
    assert video.shape == (5, 32, 66, 3)
    left, right = video[:, 4:-4, 4:28].astype(float), video[:, 4:-4, 38:62].astype(float)
    np.testing.assert_allclose(left[..., 0].mean(axis=(1, 2)), np.arange(5) * 50, atol=8)
    np.testing.assert_allclose(right.mean(axis=(1, 2, 3)), 200, atol=8)


def test_policies_get_the_envs_task_in_both_worlds():
    """The rollout loop adds `task` as LeRobot's eval does, from the real env and from the imagined one."""
    from wmeval.envs import make_env
    from wmeval.envs.pusht import TASK_DESCRIPTION
    from wmeval.envs.world_model_env import WorldModelEnv
    from wmeval.judges.frame import FrameJudge
    from worldmodel.baselines import CopyLastFrameWorldModel

    real = make_pusht_env(2, max_episode_steps=3)
    imagined = WorldModelEnv(
        CopyLastFrameWorldModel((16, 16), raw_action_dim=2),
        make_env("pusht", num_envs=2, max_episode_steps=3),
        FrameJudge(lambda px: np.zeros((len(px), 5)), lambda states: np.zeros(len(states)), "zeros"),
    )
    for env in (real, imagined):
        policy = Drift()
        try:
            rollout(env, policy, max_steps=3, seeds=[0, 1], progress=False)
        finally:
            env.close()
        assert [seen["task"] for seen in policy.seen] == [[TASK_DESCRIPTION, TASK_DESCRIPTION]] * 3


def test_a_lerobot_policy_hands_the_task_to_its_preprocessor(tmp_path):
    """Language-conditioned LeRobot policies tokenize `task` in their preprocessor: it must reach it."""
    from policies.registry import make_policy
    from tests.test_policies import _save_tiny_diffusion

    _save_tiny_diffusion(str(tmp_path))
    policy = make_policy(f"lerobot:{tmp_path}")
    seen = []
    inner = policy.preprocessor
    policy.preprocessor = lambda batch: seen.append(batch) or inner(batch)
    observation = {
        "observation.image": torch.rand(2, 3, 96, 96),
        "observation.state": torch.rand(2, 2) * 512,
        "task": ["push it", "push it"],
    }
    policy.reset()
    assert policy.select_action(observation).shape == (2, 2)
    assert seen[0]["task"] == ["push it", "push it"]
