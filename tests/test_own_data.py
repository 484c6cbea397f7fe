"""Your own data, end to end on CPU: a two-camera LeRobotDataset with language, success flags and Bridge V2's
7-d action layout (converted from RLDS-shaped episodes) -> `wmeval train` with the bridge_v2 card ->
`wmeval metrics` -> `wmeval rank` of the recorded behaviours in imagination."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.rlds_fixtures import TASKS, rlds_episodes
from wmeval.cli import main
from wmeval.data.lerobot_episodes import load_episodes
from wmeval.data.rlds_convert import PRESETS, write_lerobot
from worldmodel import WorldModel

CAMERAS = ["observation.images.image_0", "observation.images.image_1"]
KEYS = [f"camera_keys=[{','.join(CAMERAS)}]", "state_key=observation.state", "threads=1"]
TINY = [
    "card=bridge_v2",
    "encoder.image_size=[32,32]",
    "encoder.factor=8",
    "heldout_episodes=6",
    "clips.n_frames=3",
    "clips.sim_steps_per_frame=2",
    "optim.steps=2",
    "optim.batch_size=2",
    "optim.warmup_steps=1",
    "optim.checkpoint_every=2",
    "eval.episodes=1",
    "eval.horizon=2",
]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("own") / "widowx"
    episodes = [(ep, None) for ep in rlds_episodes(12, seed=0)]
    write_lerobot(episodes, out, PRESETS["bridge_v2"], repo_id="local/widowx", use_videos=False)
    return out


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("wm")
    assert main(["train", f"data={dataset}", f"out={out}", *KEYS, *TINY]) == 0
    return out


def test_dataset_keeps_cameras_language_success_and_fps(dataset) -> None:
    eps = load_episodes(dataset, camera_keys=CAMERAS, action_key="action", state_key="observation.state")
    assert len(eps) == 12 and eps[0]["fps"] == 5.0 and eps[0]["actions"].shape == (10, 7)
    assert {ep["task"] for ep in eps} == set(TASKS)  # the first step's empty text is skipped
    assert eps[0]["camera_frames"][CAMERAS[0]].shape == (10, 32, 32, 3) and eps[0]["states"].shape == (10, 7)
    assert 0 < sum(ep["success"] for ep in eps) < 12


def test_train_uses_the_card_layout_and_both_cameras(trained) -> None:
    config = json.loads((trained / "model" / "world_model.json").read_text())
    assert config["dit"]["num_views"] == 2 and config["fps"] == 5.0
    layout = config["action_layout"]
    assert layout["names"][-1] == "gripper" and layout["binary"][-1] and layout["clip"][3] == [-1.39, 1.39]
    assert config["meta"]["card"] == "bridge_v2" and config["meta"]["camera_keys"] == CAMERAS
    assert np.isfinite(config["meta"]["heldout"]["psnr_model"])  # held-out rollouts ran on both views

    wm = WorldModel.from_pretrained(trained / "model")
    assert wm.image_size == (32, 64) and wm.action_dim == 14
    wm.reset(torch.rand(1, 1, 3, 32, 64))
    frames = wm.step(torch.zeros(1, 14))
    assert tuple(frames.shape) == (1, 3, 32, 64)
    x = torch.tensor([[0.05, 0.0, -0.1, 0.25, 0.0, 0.0, 1.0] * 2])
    units = wm.normalize_actions(x)[0, :7].tolist()
    assert units == pytest.approx([1.75, 0.0, -1.75, 1.39, 0.0, 0.0, -1.0])  # the paper's Bridge rescaling


def test_metrics_and_ranking_in_imagination(dataset, trained, tmp_path) -> None:
    out = tmp_path / "metrics"
    args = ["metrics", f"world_models=[{trained / 'model'}]", f"data={dataset}", f"out={out}", *KEYS]
    more = ["metrics=[video,probe]", "video.metrics=[psnr,ssim]", "episodes=3", "horizon=2", "progress=false"]
    assert main([*args, *more]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["run"]["split"].startswith("the world model's own held-out episodes")
    language = report["metrics"]["probe"]["settings"]["language"]
    assert language["conditioned"] and language["instructions"] == 3 and language["mismatch_negatives"] > 0
    assert np.isfinite(report["metrics"]["video"]["values"]["psnr"]["model"])

    out = tmp_path / "rank"
    args = ["rank", f"data={dataset}", f"world_models=[{trained / 'model'}]", f"out={out}", *KEYS]
    assert main([*args, "group_by=task", "horizon=2", "n_boot=20", "progress=false"]) == 0
    ranking = json.loads((out / "report.json").read_text())
    assert ranking["mode"] == "recorded" and ranking["group_by"] == "task"
    policies = ranking["ranking"]["policies"]
    assert len(policies) >= 2 and {p["name"] for p in policies} <= set(TASKS)
    assert set(ranking["baselines"]) == {"probe_on_real", "copy_last"}
    block = next(iter(ranking["recorded"].values()))
    assert (
        0.0 <= block["random_actions_imagined_success"] <= 1.0 and block["probe"]["language"]["conditioned"]
    )
    assert (out / "report.md").is_file()


def test_a_card_with_an_unknown_field_is_refused(dataset, tmp_path) -> None:
    card = tmp_path / "mine.yaml"
    card.write_text("name: mine\naction:\n  names: [a]\n  scaling: paper\n")
    args = ["train", f"data={dataset}", f"out={tmp_path / 'x'}", f"card={card}", *KEYS]
    assert main(args) == 2
