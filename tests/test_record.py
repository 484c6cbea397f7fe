"""`wmeval record`: a real LeRobotDataset v3 that LeRobot loads, read back by `load_episodes`; bad input exits 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from policies.replay import ReplayPolicy
from wmeval.cli import main
from wmeval.data.lerobot_episodes import load_episodes
from wmeval.envs.pusht import make_pusht_env
from wmeval.rollout import rollout


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    out = tmp_path_factory.mktemp("rec") / "ds"
    args = ["record", "env=pusht", "policy=pusht/expert_noisy", "episodes=3", "max_steps=12", "seed=3"]
    assert main([*args, f"out={out}", "progress=false"]) == 0
    return out, args


def test_lerobot_loads_the_recording(recorded) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    out, _ = recorded
    ds = LeRobotDataset("local/pusht", root=out, video_backend="pyav")
    assert ds.num_episodes == 3 and ds.num_frames == 3 * 12  # one row per step, LeRobot's layout
    item = ds[0]
    assert item["observation.image"].shape == (3, 96, 96) and 0 <= item["observation.image"].min() <= 1
    for key in (
        "observation.state",
        "observation.environment_state",
        "observation.pose",
        "action",
        "next.reward",
        "next.success",
    ):
        assert key in item
    assert item["task"] == "pusht/expert_noisy"
    assert ds.meta.info["features"]["observation.image"]["dtype"] == "image"  # lossless PNG


def test_reader_gives_arrays_and_replay_reproduces_the_episode(recorded) -> None:
    out, _ = recorded
    eps = load_episodes(out)
    assert [e["episode_index"] for e in eps] == [0, 1, 2]
    ep = eps[0]
    assert ep["frames"].shape == (12, 96, 96, 3) and ep["frames"].dtype == np.uint8
    assert ep["actions"].shape == (12, 2) and ep["states"].shape == (12, 5) and ep["coverage"].shape == (12,)
    assert ep["policy"] == "pusht/expert_noisy" and ep["length"] == 12 and isinstance(ep["success"], bool)
    # The agent position LeRobot stores as observation.state is the first two columns of the reader's states.
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    hf = LeRobotDataset("local/pusht", root=out, video_backend="pyav").hf_dataset.with_format("numpy")
    agent = np.stack(hf["observation.state"])[np.asarray(hf["episode_index"]).ravel() == 0]
    np.testing.assert_array_equal(ep["states"][:, :2], agent)
    assert np.ptp(agent, axis=0).min() > 0  # the agent moved, so a constant column would not pass
    seeds = [e["seed"] for e in eps]
    assert len(set(seeds)) == 3
    # Replaying the recorded actions from the recorded seeds reproduces the recorded states and frames.
    env = make_pusht_env(3, max_episode_steps=12)
    try:
        r = rollout(env, ReplayPolicy([e["actions"] for e in eps]), max_steps=12, seeds=seeds, progress=False)
    finally:
        env.close()
    for i, e in enumerate(eps):  # the observation after the last action is not a row
        np.testing.assert_allclose(r.actions[i], e["actions"], atol=1e-4)
        np.testing.assert_allclose(r.states[i, :-1], e["states"], atol=1e-2)
        np.testing.assert_array_equal(r.frames[i, :-1], e["frames"])
    lines = (out / "meta" / "wmeval_episodes.jsonl").read_text().splitlines()
    assert json.loads(lines[1])["seed"] == seeds[1]


def test_same_seed_same_recording(recorded, tmp_path) -> None:
    """Bit-identical on CPU: actions, states and every pixel of every frame."""
    out, args = recorded
    again = tmp_path / "again"
    assert main([*args, f"out={again}", "progress=false"]) == 0
    for a, b in zip(load_episodes(out), load_episodes(again), strict=True):
        for key in ("actions", "states", "frames", "coverage"):
            np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("env=cartpole", "env='cartpole' is unknown"),
        ("policy=pusht/nope", "unknown policy 'pusht/nope'"),
        ("episodes=0", "episodes=0 must be a positive"),
        ("storage=gif", "storage='gif' is unknown"),
        ("no_such_key=1", "known keys"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, override, message) -> None:
    out = tmp_path / "never"
    code = main(["record", "episodes=1", "max_steps=2", f"out={out}", override])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_non_empty_out_needs_overwrite(tmp_path, capsys) -> None:
    (tmp_path / "keep.txt").write_text("old")
    code = main(["record", "policy=pusht/idle", "episodes=1", "max_steps=2", f"out={tmp_path}"])
    assert code == 2 and "overwrite=true" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "old"


def test_record_policy_play_writes_a_dataset_of_play(tmp_path) -> None:
    out = tmp_path / "play"
    args = ["record", "policy=play", "episodes=2", "max_steps=6", "num_envs=2", "seed=1", "progress=false"]
    assert main([*args, f"out={out}"]) == 0
    eps = load_episodes(out)
    assert len(eps) == 2 and {e["policy"] for e in eps} == {"pusht/play"}
    assert all(e["length"] == 6 for e in eps)
