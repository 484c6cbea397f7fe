"""Policies: registry, family, scripted expert, state estimator, replay/random, LeRobot loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from policies.errors import PolicyError
from policies.pusht.state_estimator import ASSET_DIR, PushTStateEstimator, estimator_errors
from policies.random_policy import RandomPolicy
from policies.registry import family_members, make_policy
from policies.replay import ReplayPolicy
from wmeval.envs.pusht import make_pusht_env
from wmeval.rollout import rollout, to_policy_observation


def test_registry_resolves_names_and_lists_known_ones() -> None:
    members = family_members("pusht")
    assert len(members) >= 7 and members[0] == "pusht/expert"
    assert set(members[-2:]) == {"pusht/idle", "pusht/random"}  # the baselines close the skill order
    assert make_policy("pusht/expert").variant == "state"
    assert make_policy("pusht/expert@image").variant == "image"
    assert make_policy("random", seed=1).name == "random"
    with pytest.raises(PolicyError, match="unknown policy 'pusht/nope'.*pusht/expert.*lerobot:"):
        make_policy("pusht/nope")
    with pytest.raises(PolicyError, match="actions="):
        make_policy("replay")
    with pytest.raises(PolicyError, match="family"):
        family_members("cartpole")


def test_privileged_policy_needs_the_state_key() -> None:
    policy = make_policy("pusht/expert")
    with pytest.raises(PolicyError, match="observation.pose.*@image"):
        policy.select_action({"observation.state": torch.zeros(1, 2)})


def test_expert_solves_an_episode_and_same_seed_same_actions() -> None:
    env = make_pusht_env(2, obs_type="state")
    try:
        expert = rollout(env, make_policy("pusht/expert"), max_steps=70, seeds=[10009, 10000], progress=False)
        noisy = [
            rollout(
                env, make_policy("pusht/expert_noisy", seed=5), max_steps=15, seeds=[1, 2], progress=False
            )
            for _ in range(2)
        ]
    finally:
        env.close()
    assert expert.success.all(), expert.summary()  # real success, not just motion
    np.testing.assert_array_equal(noisy[0].actions, noisy[1].actions)
    assert not np.allclose(noisy[0].actions[:, :5], expert.actions[:, :5])


def test_expert_plays_a_planned_chunk_of_five_targets_per_observation() -> None:
    env = make_pusht_env(2, obs_type="state")
    try:
        obs, _ = env.reset(seed=[3, 4])
    finally:
        env.close()
    observation = to_policy_observation(obs)
    expert, unchunked = make_policy("pusht/expert"), make_policy("pusht/unchunked")
    expert.reset()
    # One observation, then the chunk plays out without reading any (an empty observation would fail).
    chunk = torch.stack([expert.select_action(observation)] + [expert.select_action({}) for _ in range(4)], 1)
    for targets in chunk.numpy():  # a plan, not one held target (a way-point may repeat while it is reached)
        assert len(np.unique(targets.round(3), axis=0)) >= 3, targets
    with pytest.raises(PolicyError, match="observation.pose"):
        expert.select_action({})  # the chunk is spent: the next step reads a fresh observation
    # Without chunks, the same observation gives the same single target, held.
    held = torch.stack([unchunked.select_action(observation) for _ in range(5)], 1)
    assert (held == held[:, :1]).all()


def test_estimator_is_small_and_accurate_on_real_frames() -> None:
    from wmeval.envs.pusht_frames import random_state_frames

    size = sum(p.stat().st_size for p in ASSET_DIR.iterdir())
    assert size < 1_000_000
    model = PushTStateEstimator.from_pretrained(ASSET_DIR)
    frames, states = random_state_frames(48, seed=12345)
    err = estimator_errors(model, frames, states)
    assert err["agent_px"] < 8 and err["block_px"] < 8 and err["angle_deg"] < 5, err


def test_estimator_spread_is_tight_on_real_frames_and_wide_on_unreadable_ones() -> None:
    from wmeval.envs.pusht_frames import random_state_frames

    model = PushTStateEstimator.from_pretrained(ASSET_DIR)
    frames, _ = random_state_frames(16, seed=7)
    real = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    # the block and agent dissolved into speckles, as a failing world model draws them
    speckled = real.clone()
    mask = (real.mean(1, keepdim=True) < 0.85).expand_as(real)  # the non-white pixels (block, agent, goal)
    noise = torch.rand(real.shape, generator=torch.Generator().manual_seed(0))
    speckled[mask] = 1.0
    speckled = torch.where(noise < 0.03, noise * 20, speckled).clamp(0, 1)
    spread_real, spread_bad = model.keypoint_spread(real), model.keypoint_spread(speckled)
    assert spread_real.shape == (16, 5)
    assert spread_real.amax(-1).median() < 40
    assert spread_bad.amax(-1).median() > 2 * spread_real.amax(-1).median()


def test_image_policy_acts_from_frames() -> None:
    env = make_pusht_env(2, max_episode_steps=4)
    try:
        r = rollout(env, make_policy("pusht/expert@image"), max_steps=4, seeds=[0, 1], progress=False)
    finally:
        env.close()
    assert r.actions.shape == (2, 4, 2) and np.isfinite(r.actions).all()
    assert np.abs(r.actions[:, 1:] - r.actions[:, :-1]).max() > 0  # it reacts, it does not idle


def test_random_and_replay_policies() -> None:
    obs = {"observation.state": torch.zeros(3, 2)}
    a, b = RandomPolicy(seed=4), RandomPolicy(seed=4)
    x = a.select_action(obs)
    assert x.shape == (3, 2) and torch.equal(x, b.select_action(obs)) and (x >= 0).all() and (x <= 512).all()
    replay = ReplayPolicy([np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[5.0, 6.0]])])
    steps = [replay.select_action({"observation.state": torch.zeros(2, 2)}) for _ in range(3)]
    assert steps[0].tolist() == [[1, 2], [5, 6]] and steps[2].tolist() == [[3, 4], [5, 6]]
    replay.reset()
    assert replay.select_action({}).tolist() == [[1, 2], [5, 6]]
    with pytest.raises(PolicyError, match="batch has 3"):
        replay.select_action({"observation.state": torch.zeros(3, 2)})


def _save_tiny_diffusion(directory: str) -> None:
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy
    from lerobot.policies.factory import make_pre_post_processors

    cfg = DiffusionConfig(
        input_features={
            "observation.image": PolicyFeature(FeatureType.VISUAL, (3, 96, 96)),
            "observation.state": PolicyFeature(FeatureType.STATE, (2,)),
        },
        output_features={"action": PolicyFeature(FeatureType.ACTION, (2,))},
        down_dims=(8, 16),
        n_obs_steps=2,
        horizon=8,
        n_action_steps=4,
        drop_n_last_frames=3,
        num_inference_steps=2,
        spatial_softmax_num_keypoints=4,
        diffusion_step_embed_dim=8,
        n_groups=4,
        device="cpu",
        push_to_hub=False,
    )
    limits = {"min": torch.zeros(2), "max": torch.full((2,), 512.0)}
    stats = {
        "observation.image": {"mean": torch.full((3, 1, 1), 0.5), "std": torch.full((3, 1, 1), 0.25)},
        "observation.state": limits,
        "action": limits,
    }
    pre, post = make_pre_post_processors(cfg, dataset_stats=stats)
    DiffusionPolicy(cfg).save_pretrained(directory)
    pre.save_pretrained(directory)
    post.save_pretrained(directory)


def test_lerobot_policy_loads_a_saved_policy_and_runs_in_the_env(tmp_path) -> None:
    _save_tiny_diffusion(str(tmp_path))
    policy = make_policy(f"lerobot:{tmp_path}")
    env = make_pusht_env(2, max_episode_steps=5)
    try:
        r = rollout(env, policy, max_steps=5, seeds=[0, 1], progress=False)
    finally:
        env.close()
    assert r.actions.shape == (2, 5, 2) and np.isfinite(r.actions).all()
    assert policy.name == f"lerobot:{tmp_path}"


def test_lerobot_policy_acts_alike_whatever_the_thread_count(tmp_path, one_thread) -> None:
    _save_tiny_diffusion(str(tmp_path))
    env = make_pusht_env(2, max_episode_steps=6)
    actions = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            policy = make_policy(f"lerobot:{tmp_path}", seed=0)  # its noise comes from the global generator
            actions.append(rollout(env, policy, max_steps=6, seeds=[0, 1], progress=False).actions)
    finally:
        env.close()
    np.testing.assert_array_equal(actions[0], actions[1])


def test_lerobot_policy_offline_hub_id_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PolicyError, match="'someone/not-cached-policy'.*lerobot:/path/to/pretrained_model"):
        make_policy("lerobot:someone/not-cached-policy")
    with pytest.raises(PolicyError, match="neither an existing directory"):
        make_policy("lerobot:/no/such/dir")
