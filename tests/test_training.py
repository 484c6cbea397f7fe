import json

import numpy as np
import pytest
import torch

from tests.torchrun import failure, torchrun
from tests.train_script import main as train_tiny
from worldmodel.training import TrainConfig, lr_at
from worldmodel.training.checkpoint import checkpoints


def test_loss_falls(tmp_path):
    summary = train_tiny(str(tmp_path), steps=40)
    losses = np.array([loss for _, loss in summary["loss_history"]])
    assert losses[-10:].mean() < 0.7 * losses[:5].mean()


def test_resume_is_exact(tmp_path):
    straight = train_tiny(str(tmp_path / "a"), steps=8)["ema"].state_dict()
    train_tiny(str(tmp_path / "b"), steps=4)
    assert [p.name for p in checkpoints(tmp_path / "b" / "checkpoints")] == ["step_00000004"]
    resumed = train_tiny(str(tmp_path / "b"), steps=8)["ema"].state_dict()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_schedule_warms_up_then_decays():
    config = TrainConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, config) == pytest.approx(0.1)
    assert lr_at(9, config) == pytest.approx(1.0)
    assert lr_at(99, config) == pytest.approx(0.1, abs=1e-3)


def test_torchrun_two_processes_match_single_process(tmp_path):
    steps = 24
    single = train_tiny(str(tmp_path / "single"), steps=steps)
    out = tmp_path / "ddp"
    result = torchrun(["-m", "tests.train_script", str(out), str(steps)], port=29531, outputs=out)
    assert result.returncode == 0, failure(result)
    ddp = json.loads((tmp_path / "ddp" / "losses.json").read_text())
    a = np.array([loss for _, loss in single["loss_history"]])
    b = np.array([loss for _, loss in ddp])
    assert len(a) == len(b) == steps
    assert abs(a[-8:].mean() - b[-8:].mean()) < 0.25 * a[-8:].mean()
    assert b[-8:].mean() < 0.8 * b[:4].mean()
