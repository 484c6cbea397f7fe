"""The GPU smoke script's CPU side: its command lines are valid `wmeval` configs, and bf16 training runs.

The script itself needs a CUDA device (`python scripts/gpu_smoke.py OUT`); here every step it would run is
composed and checked like the CLI does, and the bf16 training path it exercises runs on CPU at a tiny size.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.wm_fixtures import TINY_TRAIN, tiny_lerobot_dataset
from wmeval.cli import compose_config, main

pytestmark = pytest.mark.usefixtures("one_thread")
SCRIPT = Path(__file__).parents[1] / "scripts" / "gpu_smoke.py"


def _script():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("gpu_smoke", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_step_is_a_valid_command(tmp_path):
    smoke = _script()
    plan = smoke.steps(tmp_path, "cuda")
    assert [name for name, _ in plan] == ["bench", "record", "train_bf16", "rank"]
    assert [name for name, _ in smoke.steps(tmp_path, "cpu")] == ["record", "train_bf16", "rank"]
    (tmp_path / "data").mkdir()  # written by the steps before the ones that read them
    (tmp_path / "train" / "model").mkdir(parents=True)
    for _, args in plan:
        cfg = compose_config(args[0], args[1:])
        assert "precision" not in cfg.get("optim", {}) or cfg.optim.precision == "bf16"
    assert smoke.environment()["torch"] == torch.__version__
    if not torch.cuda.is_available():
        assert smoke.main([str(tmp_path / "run")]) == 2  # refuses, one line, instead of benchmarking a CPU


def test_bf16_training_runs_and_uses_autocast(tmp_path, monkeypatch):
    data = tiny_lerobot_dataset(tmp_path / "data", [12, 12, 12])
    seen = []
    autocast = torch.autocast

    def spy(device_type, dtype=None, enabled=True, **kwargs):  # noqa: ANN001, ANN003, ANN202
        seen.append((device_type, dtype, enabled))
        return autocast(device_type, dtype=dtype, enabled=enabled, **kwargs)

    monkeypatch.setattr(torch, "autocast", spy)
    out = tmp_path / "run"
    args = ["train", f"data={data}", f"out={out}", *TINY_TRAIN, "encoder.image_size=[16,16]", "device=cpu"]
    args += ["optim.precision=bf16"]
    assert main([*args, "optim.steps=2"]) == 0
    assert ("cpu", torch.bfloat16, True) in seen
    step, loss = json.loads((out / "train_summary.json").read_text())["loss_history"][-1]
    assert step == 2 and np.isfinite(loss)
