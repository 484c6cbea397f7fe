"""Recordings in LeRobot's PushT layout: one row per step, one `next.done`, gym-pusht's 16 keypoints as
`observation.environment_state`, which the live env observes too; recordings in wmeval's older layout read
back with the same columns."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pyarrow.parquet as pq
import pytest

from policies.registry import make_policy
from wmeval.cli import main
from wmeval.data.lerobot_episodes import load_episodes
from wmeval.envs.pusht import (
    ENV_ID,
    _import_gym_pusht,
    block_keypoints,
    make_pusht_env,
    pusht_reward,
    recorded_columns,
)
from wmeval.errors import WmevalError
from wmeval.rollout import rollout, to_policy_observation


def keypoint_env() -> gym.Env:
    """gym-pusht as LeRobot's keypoint datasets were made: its own `environment_state` is the 16 keypoints."""
    _import_gym_pusht()
    return gym.make(ENV_ID, obs_type="environment_state_agent_pos", max_episode_steps=1000)


def rows(root) -> dict[str, np.ndarray]:  # noqa: ANN001
    """Every column of the dataset's parquet files, stacked, in row order."""
    table = pq.read_table(sorted((root / "data").glob("chunk-*/file-*.parquet"))).to_pandas()
    return {c: np.stack(table[c].to_numpy()) for c in table.columns if c != "observation.image"}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    out = tmp_path_factory.mktemp("rec") / "ds"
    args = ["record", "policy=pusht/expert_noisy", "episodes=2", "max_steps=20", "num_envs=2", "seed=0"]
    assert main([*args, "progress=false", f"out={out}"]) == 0
    return out


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


def test_one_row_per_step_and_one_done_per_episode(recorded) -> None:
    cols = rows(recorded)
    sidecar = [
        json.loads(line) for line in (recorded / "meta" / "wmeval_episodes.jsonl").read_text().splitlines()
    ]
    for meta in sidecar:
        mine = cols["episode_index"] == meta["episode_index"]
        assert mine.sum() == meta["length"]
        done = cols["next.done"][mine].ravel()
        assert done.sum() == 1 and done[-1]
        cov = cols["next.coverage"][mine].ravel()
        assert cov[-1] == pytest.approx(meta["final_coverage"], abs=1e-6)
        np.testing.assert_allclose(cols["next.reward"][mine].ravel(), pusht_reward(cov), atol=1e-6)
        np.testing.assert_allclose(cols["coverage"][mine].ravel()[1:], cov[:-1])  # next.* leads into row t+1
    assert np.ptp(cols["next.coverage"]) > 0.05  # the block moved, so a shifted column would not pass
    assert "is_final_observation" not in cols
    info = json.loads((recorded / "meta" / "info.json").read_text())
    assert info["features"]["observation.environment_state"]["shape"] == [16]
    assert info["features"]["observation.pose"]["shape"] == [5] and info["robot_type"] == "pusht"


def test_environment_state_is_the_keypoints_a_real_gym_pusht_env_reports(recorded) -> None:
    """Replaying each recorded episode in gym-pusht's own keypoint env gives the recorded rows exactly."""
    eps = load_episodes(
        recorded, state_key="observation.environment_state", with_frames=False, progress=False
    )
    poses = load_episodes(recorded, with_frames=False, progress=False)
    env = keypoint_env()
    try:
        for ep, pose in zip(eps, poses, strict=True):
            assert ep["states"].shape == (ep["length"], 16) and pose["states"].shape == (ep["length"], 5)
            obs, _ = env.reset(seed=ep["seed"])
            seen = []
            for action in ep["actions"]:
                seen.append(obs["environment_state"])
                obs, *_ = env.step(action)
            np.testing.assert_allclose(ep["states"], np.array(seen), atol=1e-3)  # float32 columns
            np.testing.assert_allclose(block_keypoints(pose["states"][:, 2:5]), ep["states"], atol=1e-3)
    finally:
        env.close()


@pytest.mark.parametrize("obs_type", ["state", "pixels_agent_pos"])
def test_the_live_env_observes_what_recordings_and_gym_pushts_keypoint_env_hold(obs_type) -> None:
    """A policy trained on lerobot/pusht_keypoints (or a wmeval recording) gets the 16 keypoints as
    `observation.environment_state` in the live env too, with the 5-d state as `observation.pose`."""
    live = make_pusht_env(2, obs_type=obs_type, max_episode_steps=50)
    theirs = [keypoint_env(), keypoint_env()]
    rng = np.random.default_rng(1)
    try:
        assert live.single_observation_space["environment_state"].shape == (16,)
        assert live.single_observation_space["pose"].shape == (5,)
        obs, info = live.reset(seed=[4, 5])
        expected = [env.reset(seed=s)[0] for env, s in zip(theirs, [4, 5], strict=True)]
        for _ in range(4):
            for key in ("environment_state", "agent_pos"):
                np.testing.assert_allclose(obs[key], np.stack([e[key] for e in expected]), atol=1e-9)
            np.testing.assert_array_equal(obs["pose"], info["state"])
            mapped = to_policy_observation(obs)
            np.testing.assert_allclose(mapped["observation.pose"].numpy(), info["state"], rtol=1e-6)
            assert mapped["observation.environment_state"].shape == (2, 16)
            columns = recorded_columns(info["state"])
            for key, column in (
                ("observation.environment_state", "environment_state"),
                ("observation.state", "agent_pos"),
            ):
                np.testing.assert_allclose(columns[key], obs[column], atol=1e-3)  # float32 columns
            actions = rng.uniform(100, 400, (2, 2)).astype(np.float32)
            obs, _, _, _, info = live.step(actions)
            expected = [env.step(a)[0] for env, a in zip(theirs, actions, strict=True)]
    finally:
        live.close()
        for env in theirs:
            env.close()
    assert np.abs(obs["environment_state"][0] - obs["environment_state"][1]).max() > 10  # distinct episodes


def write_old_layout(root, rollouts) -> None:  # noqa: ANN001
    """A dataset in wmeval's layout before LeRobot's: T + 1 rows per episode, the 5-d state as
    `observation.environment_state`, the last row the final observation with the last action repeated."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    one = {"shape": (1,), "names": None}
    features = {
        "observation.image": {
            "dtype": "image",
            "shape": (96, 96, 3),
            "names": ["height", "width", "channels"],
        },
        "observation.state": {"dtype": "float32", "shape": (2,), "names": None},
        "observation.environment_state": {"dtype": "float32", "shape": (5,), "names": None},
        "action": {"dtype": "float32", "shape": (2,), "names": None},
        "next.success": {"dtype": "bool", **one},
        "coverage": {"dtype": "float32", **one},
        "is_final_observation": {"dtype": "bool", **one},
    }
    ds = LeRobotDataset.create("local/old", 10, features, root=root, robot_type="pusht", use_videos=False)
    for i in range(rollouts.num_episodes):
        ep = rollouts.episode(i)
        steps = ep["length"]
        for t in range(steps + 1):
            ds.add_frame(
                {
                    "observation.image": ep["frames"][t],
                    "observation.state": ep["states"][t, :2].astype(np.float32),
                    "observation.environment_state": ep["states"][t].astype(np.float32),
                    "action": ep["actions"][min(t, steps - 1)].astype(np.float32),
                    "next.success": np.array([bool(ep["step_success"][min(t, steps - 1)])]),
                    "coverage": np.array([ep["coverage"][t]], np.float32),
                    "is_final_observation": np.array([t == steps]),
                    "task": "pusht/expert",
                }
            )
        ds.save_episode()
    ds.finalize()


def test_old_layout_reads_with_the_new_columns(tmp_path) -> None:
    env = make_pusht_env(2, max_episode_steps=6)
    try:
        r = rollout(env, make_policy("pusht/expert", seed=0), max_steps=6, seeds=[3, 4], progress=False)
    finally:
        env.close()
    write_old_layout(tmp_path / "old", r)
    pose = load_episodes(tmp_path / "old", progress=False)
    keypoints = load_episodes(tmp_path / "old", state_key="observation.environment_state", progress=False)
    for i, (p, k) in enumerate(zip(pose, keypoints, strict=True)):
        ep = r.episode(i)
        assert p["length"] == ep["length"] == 6 and p["frames"].shape == (
            7,
            96,
            96,
            3,
        )  # final observation kept
        np.testing.assert_allclose(p["states"], ep["states"], atol=1e-3)  # observation.pose: the 5-d state
        assert k["states"].shape == (7, 16)
        np.testing.assert_allclose(k["states"], block_keypoints(ep["states"][:, 2:5]), atol=1e-2)
        np.testing.assert_array_equal(p["actions"][:-1], ep["actions"])  # the last is the never-run repeat


def test_a_list_of_state_keys_reads_the_columns_side_by_side(recorded, tmp_path) -> None:
    both = ["observation.pose", "observation.environment_state"]
    for ep in load_episodes(recorded, state_key=both, with_frames=False, progress=False):
        assert ep["states"].shape == (ep["length"], 21)
        np.testing.assert_allclose(ep["states"][:, 5:], block_keypoints(ep["states"][:, 2:5]), atol=1e-2)
    # an older recording derives the keypoints; a key the data lacks is named instead of falling back
    env = make_pusht_env(1, max_episode_steps=4)
    try:
        r = rollout(env, make_policy("pusht/expert", seed=0), max_steps=4, seeds=[5], progress=False)
    finally:
        env.close()
    write_old_layout(tmp_path / "old", r)
    old = load_episodes(tmp_path / "old", state_key=both, with_frames=False, progress=False)[0]
    np.testing.assert_allclose(old["states"][:, :5], r.episode(0)["states"], atol=1e-3)
    np.testing.assert_allclose(old["states"][:, 5:], block_keypoints(old["states"][:, 2:5]), atol=1e-2)
    with pytest.raises(WmevalError, match="observation.nothing is not in data"):
        load_episodes(recorded, state_key=["observation.pose", "observation.nothing"], progress=False)
