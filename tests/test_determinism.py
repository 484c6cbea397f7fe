"""The same seed gives bit-identical CPU results: training a few steps and ranking (recording:
tests/test_record.py::test_same_seed_same_recording; resumed training: tests/test_crash_resume.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.wm_fixtures import TINY_TRAIN, pusht_shaped_world_model, record_pusht
from wmeval.cli import main

TINY_TRAIN_SEEDED = [*TINY_TRAIN, "optim.steps=3", "seed=5"]


pytestmark = pytest.mark.usefixtures("one_thread")


def test_train_twice_gives_the_same_bits(tmp_path) -> None:
    data = record_pusht(tmp_path / "data", max_steps=8)
    runs = [tmp_path / "a", tmp_path / "b"]
    for out in runs:
        assert main(["train", f"data={data}", f"out={out}", *TINY_TRAIN_SEEDED]) == 0
    a, b = (load_file(out / "model" / "dit.safetensors") for out in runs)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    first, second = (json.loads((out / "train_summary.json").read_text()) for out in runs)
    assert first["loss_history"] == second["loss_history"] and first["evals"] == second["evals"]


def test_rank_twice_gives_the_same_report(tmp_path) -> None:
    wm = pusht_shaped_world_model(tmp_path / "wm")
    args = ["rank", f"world_models=[{wm}]", "policies=[pusht/expert@image,random]", "episodes=2"]
    args += ["max_steps=6", "num_envs=2", "n_boot=20", "rerun=off", "progress=false", "seed=3"]
    reports = []
    for name in ("a", "b"):
        assert main([*args, f"out={tmp_path / name}"]) == 0
        reports.append(_without_timings(tmp_path / name / "report.json"))
    assert reports[0] == reports[1]


def _without_timings(path: Path) -> dict:
    """The report without its wall-clock blocks (`timings_s`, `rollout_timings_s`), the only parts that vary."""
    report = json.loads(path.read_text())
    timings = [key for key in report if key.endswith("timings_s")]
    assert timings
    return {k: v for k, v in report.items() if k not in timings}


def test_real_rollouts_do_not_depend_on_the_thread_count() -> None:
    # `threads=N` is torch.set_num_threads(N) (wmeval/cli.py); an image-based controller must act the same
    from policies.registry import make_policy
    from wmeval.envs import make_env
    from wmeval.rollout import rollout

    env = make_env("pusht", num_envs=2, max_episode_steps=16)
    runs = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        policy = make_policy("pusht/expert@image", seed=0)
        runs.append(rollout(env, policy, max_steps=16, seeds=[0, 1], obs_every=2, progress=False))
    env.close()
    assert np.array_equal(runs[0].actions, runs[1].actions)  # exactly: not approx
    # the same actions; pymunk's solver, reused across resets of one env, may move the last bit of a pose
    np.testing.assert_allclose(runs[0].coverage, runs[1].coverage, rtol=0, atol=1e-9)
