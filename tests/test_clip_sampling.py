"""The paper's clip sampling (`clips.action_mode=sampled`, variable strides, history stride, zero history): the
sampler's frames and actions, its errors, and a tiny `wmeval train` whose model takes one raw action per step
in every rollout path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.wm_fixtures import TINY_TRAIN, tiny_lerobot_dataset, tiny_world_model
from wmeval.cli import main
from wmeval.data.lerobot_episodes import load_episodes
from wmeval.envs import make_env
from wmeval.envs.world_model_env import WorldModelEnv
from wmeval.judges.frame import FrameJudge
from wmeval.metrics.heldout import frame_actions
from wmeval.metrics.open_loop import open_loop_rollouts
from worldmodel import WorldModel
from worldmodel.baselines import CopyLastFrameWorldModel
from worldmodel.data.actions import step_actions
from worldmodel.data.clips import ClipSampler, ClipSpec
from worldmodel.errors import InputError

pytestmark = pytest.mark.usefixtures("one_thread")

SAMPLED = ["clips.action_mode=sampled", "clips.future_strides=[2,4]", "clips.history_stride_factor=4"]
SAMPLED_SPEC = {"action_mode": "sampled", "future_strides": [2, 4]}


def step_episodes(lengths: list[int]) -> list[dict[str, np.ndarray]]:
    """Latents hold their step index, actions[i] = [i, 10 i]: every clip shows which steps it took."""
    return [
        {
            "latents": np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None], (n, 1, 1, 1)),
            "actions": np.stack([np.arange(n), 10 * np.arange(n)], axis=1).astype(np.float32),
        }
        for n in lengths
    ]


def sampler(lengths: list[int], seed: int = 0, **spec) -> ClipSampler:  # noqa: ANN003
    return ClipSampler(step_episodes(lengths), ClipSpec(**spec), [0.0, 0.0], [1.0, 1.0], seed=seed)


def steps_of(batch: dict[str, torch.Tensor]) -> np.ndarray:
    return batch["latents"][:, :, 0, 0, 0].numpy().astype(int)


@pytest.mark.parametrize(
    ("mode", "actions"),
    [
        ("sampled", [[0, 0], [0, 0], [2, 20]]),  # the action taken at the previous frame's step
        ("concat", [[0, 0, 0, 0], [0, 0, 1, 10], [2, 20, 3, 30]]),  # the steps since the previous frame
    ],
)
def test_a_frame_takes_the_action_at_the_previous_frames_step(mode, actions) -> None:
    # 5 steps hold exactly one clip of 3 frames 2 steps apart: steps 0, 2, 4
    batch = sampler([5], n_frames=3, max_history=1, sim_steps_per_frame=2, action_mode=mode).sample(2)
    assert (steps_of(batch) == [0, 2, 4]).all()
    assert batch["actions"].tolist() == [actions, actions]


def test_the_default_draws_the_same_clips_as_before_the_options() -> None:
    batch = sampler([12, 30, 9], n_frames=3, max_history=2, sim_steps_per_frame=3).sample(4)
    # pinned from the sampler before action modes and strides existed (seed 0)
    assert steps_of(batch).tolist() == [[4, 7, 10], [19, 22, 25], [3, 6, 9], [5, 8, 11]]
    assert batch["num_history"].tolist() == [2, 2, 2, 2]
    assert batch["actions"][:, 1, :3].tolist() == [[4, 40, 5], [19, 190, 20], [3, 30, 4], [5, 50, 6]]


def test_variable_strides_history_stride_and_zero_history() -> None:
    spec = dict(n_frames=5, max_history=3, sim_steps_per_frame=2, history_stride_factor=4, **SAMPLED_SPEC)
    batch = sampler([90, 70], zero_history_prob=0.3, **spec).sample(400)
    steps, history = steps_of(batch), batch["num_history"].numpy()
    strides, zero = [], 0
    for clip, n in zip(steps, history, strict=True):
        gaps = np.diff(clip)
        future, past = gaps[n - 1 :], gaps[: n - 1]
        assert len(set(future)) == 1 and future[0] in (2, 4)
        assert (past == 4 * future[0]).all() or (past == 0).all()  # history 4x apart, or the current frame
        zero += n > 1 and (past == 0).all()
        strides.append(future[0])
    assert set(strides) == {2, 4} and 0.15 < zero / (history > 1).sum() < 0.45
    # the action into frame j is the one at frame j - 1's step: actions[i] = [i, 10 i]
    assert (batch["actions"][:, 1:, 0].numpy() == steps[:, :-1]).all()
    assert (batch["actions"][:, 0] == 0).all()
    assert (history >= 1).all() and (history <= 3).all()


def test_same_seed_same_clips_and_the_state_resumes() -> None:
    opts = dict(
        n_frames=4, sim_steps_per_frame=2, history_stride_factor=4, zero_history_prob=0.15, **SAMPLED_SPEC
    )
    a, b = sampler([40, 30], seed=3, **opts), sampler([40, 30], seed=3, **opts)
    assert all(torch.equal(x, y) for x, y in zip(a.sample(8).values(), b.sample(8).values(), strict=True))
    state = a.state_dict()
    first = a.sample(8)
    a.load_state_dict(state)
    assert torch.equal(first["latents"], a.sample(8)["latents"])
    assert not torch.equal(first["latents"], sampler([40, 30], seed=4, **opts).sample(8)["latents"])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"action_mode": "summed"}, r"clips.action_mode='summed' is unknown: use concat .* or sampled"),
        (
            {"action_mode": "sampled", "future_strides": [2, -4]},
            r"clips.future_strides=\[2, -4\] must list positive",
        ),
        ({"sim_steps_per_frame": 0}, r"clips.sim_steps_per_frame=0 must be a positive integer"),
        ({"zero_history_prob": 1.5}, r"clips.zero_history_prob=1.5 must be in \[0, 1\]"),
        (
            {"sim_steps_per_frame": 5, "future_strides": [2, 4]},
            r"must be one of .*set clips.sim_steps_per_frame=2",
        ),
        (
            {"sim_steps_per_frame": 2, "future_strides": [2, 4]},
            r"future_strides=\[2, 4\] needs clips.action_mode=sampled",
        ),
    ],
)
def test_bad_clip_settings_name_the_key_and_the_fix(spec, message) -> None:
    with pytest.raises(InputError, match=message):
        ClipSpec(**spec)


def test_bad_clip_settings_fail_the_cli_before_any_work(capsys, tmp_path) -> None:
    out = tmp_path / "run"
    assert (
        main(["train", "data=x", f"out={out}", "clips.action_mode=sampled", "clips.future_strides=[2,-4]"])
        == 2
    )
    assert "error: clips.future_strides=[2, -4] must list positive integers" in capsys.readouterr().err
    assert not out.exists()


def test_clips_too_long_for_every_episode_are_refused() -> None:
    message = r"no episode is long enough .*\(21 recorded steps needed.*lower clips.n_frames"
    with pytest.raises(InputError, match=message):
        sampler([20], n_frames=3, sim_steps_per_frame=2, history_stride_factor=4, **SAMPLED_SPEC)


def test_step_actions_concatenate_or_sample_the_first_sim_step() -> None:
    raw = np.arange(12, dtype=np.float32).reshape(6, 2)  # 6 sim steps of 2-d actions, 3 world-model steps
    assert step_actions(raw, 2, "concat").tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert step_actions(torch.from_numpy(raw)[None], 2, "sampled").tolist() == [[[0, 1], [4, 5], [8, 9]]]


def test_a_model_saved_before_action_modes_loads_as_concat(tmp_path) -> None:
    tiny_world_model(sim_steps_per_frame=2).save_pretrained(tmp_path / "old")
    config_path = tmp_path / "old" / "world_model.json"
    config = json.loads(config_path.read_text())
    del config["action_mode"]
    config_path.write_text(json.dumps(config))
    wm = WorldModel.from_pretrained(tmp_path / "old")
    assert wm.config.action_mode == "concat" and wm.action_dim == 4


class RecordingWorldModel(CopyLastFrameWorldModel):
    """The copy-last model, remembering the actions each step was given."""

    def step(self, actions: torch.Tensor, num_steps: int | None = None) -> torch.Tensor:
        self.seen.append(actions.clone())
        return super().step(actions, num_steps)


@pytest.mark.parametrize(
    ("mode", "expected"), [("sampled", [[0, 0], [2, 20]]), ("concat", [[0, 0, 1, 10], [2, 20, 3, 30]])]
)
def test_the_imagined_env_feeds_each_frame_its_modes_action(mode, expected) -> None:
    wm = RecordingWorldModel((32, 32), raw_action_dim=2, sim_steps_per_frame=2, action_mode=mode)
    wm.seen = []
    start = make_env("pusht", num_envs=1, max_episode_steps=10)
    judge = FrameJudge(lambda px: np.zeros((len(px), 5)), lambda s: np.zeros(len(s)), "none")
    env = WorldModelEnv(wm, start, judge)
    env.reset(seed=0)
    for i in range(4):
        env.step(np.array([[i, 10 * i]], np.float32))
    env.close()
    assert [a[0].tolist() for a in wm.seen] == expected


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("sampled")
    data = tiny_lerobot_dataset(root / "data", [24, 24, 24])
    args = ["train", f"data={data}", f"out={root / 'run'}", *TINY_TRAIN, *SAMPLED]
    extra = [
        "encoder.image_size=[16,16]",
        "optim.steps=2",
        "optim.checkpoint_every=2",
        "clips.zero_history_prob=0.15",
    ]
    assert main([*args, *extra]) == 0
    return data, WorldModel.from_pretrained(root / "run" / "model")


def test_train_sampled_saves_a_model_that_rolls_out_on_raw_actions(trained) -> None:
    data, wm = trained
    assert wm.config.action_mode == "sampled" and wm.config.sim_steps_per_frame == 2 and wm.action_dim == 2
    assert wm.config.meta["config"]["clips"]["future_strides"] == [2, 4]
    wm.reset(torch.rand(2, 1, 3, *wm.image_size), seed=0)
    assert wm.step(torch.zeros(2, 3, 2)).shape == (2, 3, 3, *wm.image_size)
    with pytest.raises(InputError, match="action_mode 'sampled'"):
        wm.step(torch.zeros(2, 4))
    # open loop and the metrics replay the action at each frame's first sim step
    episodes = load_episodes(data, progress=False)
    assert open_loop_rollouts(wm, episodes[:2], horizon=3)["imagined"].shape[:2] == (2, 4)
    raw = episodes[0]["actions"]
    expected = wm.normalize_actions(torch.as_tensor(raw[[0, 2, 4]]))
    assert torch.allclose(frame_actions(wm, raw, 4)[1:], expected)
