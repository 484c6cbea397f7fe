"""The task registry is the one place asked what an env is: a second, toy task registered here is built, judged,
ranked and its policy sets resolved by every module without any of them naming it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from wmeval.envs.registry import TASKS, Task, get_task
from wmeval.errors import ConfigError
from wmeval.judges.frame import EVERY_FRAME, FrameJudge
from worldmodel.baselines import CopyLastFrameWorldModel

SIZE = 16


class LevelEnv(gym.Env):
    """A grey frame whose level is the coverage; each action sets the level to its first entry."""

    metadata = {"render_fps": 5}

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Dict(
            {
                "pixels": gym.spaces.Box(0, 255, (SIZE, SIZE, 3), np.uint8),
                "agent_pos": gym.spaces.Box(0.0, 1.0, (2,), np.float64),
            }
        )
        self.action_space = gym.spaces.Box(0.0, 1.0, (2,), np.float32)
        self.level = 0.0

    def _out(self) -> tuple[dict, dict]:
        pixels = np.full((SIZE, SIZE, 3), round(self.level * 255), np.uint8)
        state = np.array([self.level, self.level])
        info = {"state": state, "coverage": self.level, "is_success": self.level > 0.95}
        return {"pixels": pixels, "agent_pos": state.copy()}, info

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        self.level = float(self.np_random.uniform(0.1, 0.3))
        return self._out()

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        self.level = float(action[0])
        obs, info = self._out()
        return obs, self.level, bool(info["is_success"]), False, info


def _make_env(num_envs: int = 1, *, max_episode_steps: int = 300, **_: object) -> gym.vector.VectorEnv:
    def factory() -> gym.Env:
        return gym.wrappers.TimeLimit(LevelEnv(), max_episode_steps)

    return gym.vector.SyncVectorEnv([factory] * num_envs)


def _frame_judge(estimator: str) -> FrameJudge:
    assert estimator == "toy estimator"
    level = lambda f: f[:, 0, 0, 0] / 255.0  # noqa: E731
    return FrameJudge(lambda f: np.stack([level(f), level(f)], 1), lambda s: s[:, 0], "toy level reader")


TASK = Task(
    name="toy",
    make_env=_make_env,
    real_judge="toy simulator",
    fps=LevelEnv.metadata["render_fps"],
    state_keys={"agent_pos": lambda states: states[:, 0:2]},
    policy_sets={"family": lambda: ["toy/high", "toy/low"]},
    load_estimator=lambda directory: "toy estimator",
    frame_judge=_frame_judge,
)


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> Task:
    monkeypatch.setitem(TASKS, "toy", __name__)  # one registry line: the module that defines TASK
    return get_task("toy")


class ConstantPolicy:
    def __init__(self, level: float) -> None:
        self.level = level

    def reset(self) -> None:
        pass

    def select_action(self, observation: dict) -> torch.Tensor:
        return torch.full((len(observation["observation.state"]), 2), self.level)


def test_unknown_names_are_one_line_listing_every_registered_task(toy: Task) -> None:
    assert toy is TASK
    with pytest.raises(ConfigError, match=r"^env='cartpole' is unknown: choose one of pusht, toy$"):
        get_task("cartpole")
    with pytest.raises(ConfigError, match=r"^eval.state_reader=\['a'\] is unknown"):
        get_task(["a"], key="eval.state_reader")


def test_the_real_and_imagined_envs_come_from_the_registered_task(toy: Task) -> None:
    from wmeval.envs import make_env
    from wmeval.envs.imagined import make_imagined_env

    real = make_env("toy", num_envs=2, max_episode_steps=5)
    assert isinstance(real.envs[0].unwrapped, LevelEnv)
    imagined = make_imagined_env("toy", CopyLastFrameWorldModel((SIZE, SIZE), raw_action_dim=2), 2)
    assert imagined.judge.description == "toy level reader" and imagined.state_keys == TASK.state_keys
    obs, info = imagined.reset(seed=[0, 1])
    start = real.reset(seed=[0, 1])[1]["coverage"]
    np.testing.assert_allclose(info["coverage"], start, atol=0.01)  # the toy judge read the real start frames
    obs, reward, _, _, info = imagined.step(np.full((2, 2), 0.9, np.float32))
    np.testing.assert_allclose(reward, start, atol=0.01)  # copy-last holds the start frame
    np.testing.assert_allclose(obs["agent_pos"], np.stack([start, start], 1), atol=0.01)


def test_the_imagined_env_judges_and_resizes_on_one_thread(toy: Task) -> None:
    """Resizes and frames round by thread count; one thread keeps a seed's imagined rollouts whatever `threads=`."""
    from dataclasses import replace

    from wmeval.envs.imagined import make_imagined_env

    imagined = make_imagined_env("toy", CopyLastFrameWorldModel((SIZE // 2, SIZE // 2), raw_action_dim=2), 2)
    seen: list[int] = []

    def reader(frames: np.ndarray) -> np.ndarray:
        seen.append(torch.get_num_threads())
        return imagined_reader(frames)

    imagined_reader = imagined.judge.state_reader
    imagined.judge = replace(imagined.judge, state_reader=reader)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        imagined.reset(seed=[0, 1])
        imagined.step(np.full((2, 2), 0.9, np.float32))
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {1}
    assert after == 2


def test_policy_sets_and_estimators_are_asked_of_the_task(toy: Task) -> None:
    from wmeval.commands.record import resolve_policies
    from wmeval.ranking.inputs import resolve_policy_sets

    assert resolve_policy_sets("toy", ["family", "random"]) == {
        "family": ["toy/high@image", "toy/low@image"],
        "listed": ["random"],
    }
    assert resolve_policies("toy", "family", "state") == ["toy/high", "toy/low"]
    with pytest.raises(ConfigError, match="env='toy' has no policy set 'heldout': it has family"):
        resolve_policies("toy", "heldout", "state")
    with pytest.raises(ConfigError, match="env='toy' has no policy set 'heldout': it has family"):
        resolve_policy_sets("toy", ["family", "heldout"])
    assert toy.estimator() == "toy estimator"
    bare = Task("bare", _make_env, "toy simulator")
    with pytest.raises(ConfigError, match="env='bare' has no state estimator"):
        bare.estimator()
    with pytest.raises(ConfigError, match="env='bare' has no frame judge"):
        bare.judge()


def test_recording_a_task_without_a_recording_layout_is_refused(toy: Task, tmp_path, capsys) -> None:
    from wmeval.cli import main

    out = tmp_path / "never"
    assert main(["record", "env=toy", "episodes=1", "max_steps=2", f"out={out}"]) == 2
    assert "env='toy' declares no recording layout" in capsys.readouterr().err and not out.exists()
    assert get_task("pusht").recorder().features["observation.environment_state"]["shape"] == (16,)


def test_train_estimator_refuses_a_task_without_a_trainer(toy: Task) -> None:
    from omegaconf import OmegaConf

    from wmeval.commands.train_estimator import run

    with pytest.raises(ConfigError, match="env='toy' has no state estimator to train"):
        run(OmegaConf.create({"env": "toy"}))


def test_ranking_a_registered_task_uses_its_env_judges_and_descriptions(toy: Task) -> None:
    from wmeval.ranking import RankConfig, rank_policies

    policies = {"high": ConstantPolicy(0.9), "low": ConstantPolicy(0.2)}
    world_models = {"copy": CopyLastFrameWorldModel((SIZE, SIZE), raw_action_dim=2)}
    cfg = RankConfig(env="toy", episodes=2, max_steps=3, seed=0, n_boot=0, progress=False)
    result = rank_policies(policies, world_models, cfg)
    assert result.fps == 5 and result.readability is None  # the toy judge has no spread reader
    assert result.real_judge == "toy simulator" and result.judge == "toy level reader" + EVERY_FRAME
    assert result.real["high"].max_coverage() == pytest.approx([0.9, 0.9], abs=1e-6)
    imagined = result.imagined["copy"]["high"]
    np.testing.assert_allclose(imagined.coverage[:, -1], imagined.coverage[:, 0])  # read off the held frame
    assert "real by toy simulator; imagined by toy level reader" in result.blocks["copy"]["graded"]["judge"]


# ---------------------------------------------------------------------------------- PushT asked by name


def test_pushts_estimator_reads_frames_for_training_metrics_and_the_judge(tmp_path) -> None:
    from wmeval.commands.train import _state_reader
    from wmeval.envs import make_env
    from wmeval.metrics.state import load_reader

    frames = make_env("pusht", num_envs=2, max_episode_steps=5).reset(seed=[0, 1])
    pixels, true = frames[0]["pixels"], frames[1]["state"]
    reader = _state_reader("pusht")  # `wmeval train eval.state_reader=pusht`
    states = reader(pixels)
    assert states.shape == (2, 5)
    assert np.linalg.norm(states[:, 2:4] - true[:, 2:4], axis=-1).max() < 30  # a real reading, not noise
    with pytest.raises(ConfigError, match=r"^eval.state_reader='nope' is unknown: choose one of pusht$"):
        _state_reader("nope")
    predict, where = load_reader("pusht")  # `wmeval metrics` state block
    assert where == get_task("pusht").shipped_estimator
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255.0
    np.testing.assert_allclose(predict(images).numpy(), states, rtol=1e-5, atol=1e-4)
    missing, why = load_reader("pusht", str(tmp_path / "none"))
    assert missing is None and why.startswith("unavailable: ")


def test_pushts_imagined_env_gives_the_real_envs_keys_computed_from_the_estimate() -> None:
    """Privileged and keypoint policies read the same keys in both worlds: after reset (real start frames) the
    real state, after a generated frame the judge's estimate, its keypoints computed as gym-pusht's."""
    from policies.registry import make_policy
    from wmeval.envs import make_env
    from wmeval.envs.imagined import make_imagined_env
    from wmeval.envs.pusht import block_keypoints
    from wmeval.rollout import to_policy_observation

    estimate = np.array([[100.0, 120.0, 200.0, 220.0, 0.5], [300.0, 310.0, 250.0, 260.0, -1.0]])
    judge = FrameJudge(lambda px: estimate[: len(px)].copy(), lambda states: np.zeros(len(states)), "fixed")
    wm = CopyLastFrameWorldModel((SIZE, SIZE), raw_action_dim=2)
    imagined = make_imagined_env("pusht", wm, 2, judge=judge, max_episode_steps=5)
    real = make_env("pusht", num_envs=2, max_episode_steps=5)
    try:
        obs, _ = imagined.reset(seed=[0, 1])
        real_obs, real_info = real.reset(seed=[0, 1])
        assert set(obs) == set(real_obs) == {"pixels", "agent_pos", "environment_state", "pose"}
        np.testing.assert_array_equal(obs["pose"], real_info["state"])
        obs, *_ = imagined.step(np.full((2, 2), 256.0, np.float32))
    finally:
        imagined.close()
        real.close()
    np.testing.assert_array_equal(obs["pose"], estimate)
    np.testing.assert_array_equal(obs["agent_pos"], estimate[:, :2])
    np.testing.assert_allclose(obs["environment_state"], block_keypoints(estimate[:, 2:5]))
    assert obs["environment_state"].shape == imagined.observation_space["environment_state"].shape == (2, 16)
    read = make_policy("pusht/expert").read_state(to_policy_observation(obs))  # observation.pose
    np.testing.assert_allclose(read, estimate, rtol=1e-6)


def test_train_estimator_trains_the_named_tasks_estimator(tmp_path) -> None:
    import json

    from wmeval.cli import main

    out = tmp_path / "estimator"
    args = ["frames=8", "val_frames=4", "epochs=1", "batch_size=4", "threads=1", f"out={out}"]
    assert main(["train-estimator", *args]) == 0
    held_out = json.loads((out / "config.json").read_text())["metrics"]["held_out"]
    assert held_out["frames"] == 4 and held_out["block_px"] > 0
    assert get_task("pusht").estimator(str(out)).predict_state(torch.zeros(1, 3, 96, 96)).shape == (1, 5)
