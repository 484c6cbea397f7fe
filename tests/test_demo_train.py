"""`wmeval demo train=true`: record training data, train a world model from scratch, rank inside it.

A tiny size (two play episodes, two training steps, three ranked policies): what is checked is
that the demo ranks the model it has just trained, not the shipped one.
"""

from __future__ import annotations

import json

import pytest

from wmeval.cli import main
from wmeval.data.lerobot_episodes import dataset_info

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_TRAIN = '["optim.batch_size=2","heldout_episodes=1","eval.episodes=1","eval.horizon=2","threads=1"]'


def test_demo_trains_a_world_model_and_ranks_inside_it(tmp_path):
    out = tmp_path / "demo"
    args = ["demo", "profile=quick", "train=true", "train_steps=2", "train_data_episodes=2", "episodes=2"]
    # one process, no rollout videos: test_demo.py covers the parallel workers and the videos
    args += ["max_steps=26", "num_envs=2", "n_boot=20", "rerun=off", "progress=false"]
    args += ["workers=1", "videos=0"]
    args += ["policies=[pusht/expert@image,pusht/idle@image,random]", f"train_overrides={TINY_TRAIN}"]
    assert main([*args, f"out={out}"]) == 0
    assert dataset_info(out / "train_data")["total_episodes"] == 2  # play episodes, no ranked policy
    summary = json.loads((out / "train" / "train_summary.json").read_text())
    assert summary["loss_history"][-1][0] == 2
    assert (out / "train" / "model" / "dit.safetensors").is_file()
    report = json.loads((out / "report.json").read_text())
    assert set(report["outcomes"]) == {"train", "copy_last"}  # the trained model and the baseline only
    assert report["world_model"]["checkpoint"] == "train"
    assert report["training_data"]["train"]["policies"] == ["pusht/play"]
    assert not any(p["in_training_data"] for p in report["ranking"]["policies"])
    assert report["timings_s"]["record"] > 0 and report["timings_s"]["train"] > 0
    assert [p["name"] for p in report["ranking"]["policies"]] == [
        "pusht/expert@image",
        "pusht/idle@image",
        "random",
    ]
