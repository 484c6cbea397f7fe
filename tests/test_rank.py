import json

import numpy as np
import pytest

from tests.wm_fixtures import pusht_shaped_world_model
from wmeval.cli import main
from wmeval.rank import episode_outcomes
from wmeval.rollout import Rollouts

SCHEMA_RANKING = {"policies", "pearson", "spearman", "kendall", "mmrv", "pairwise_accuracy", "ci95", "judge"}


def test_rank_writes_the_report_schema(tmp_path):
    wm = pusht_shaped_world_model(tmp_path / "wm")
    out = tmp_path / "rank"
    code = main(
        [
            "rank",
            f"world_models=[{wm}]",
            "policies=[pusht/expert@image,pusht/idle@image,random]",
            "episodes=2",
            "max_steps=10",
            "num_envs=2",
            "n_boot=20",
            "rerun=off",
            "progress=false",
            f"out={out}",
        ]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert SCHEMA_RANKING <= set(report["ranking"])
    assert [p["name"] for p in report["ranking"]["policies"]] == [
        "pusht/expert@image",
        "pusht/idle@image",
        "random",
    ]
    assert all(p["episodes"] == 2 for p in report["ranking"]["policies"])
    assert set(report["baselines"]["copy_last"]) == {"pearson", "spearman", "kendall", "mmrv"}
    assert set(report["world_model"]) == {"checkpoint", "encoder", "adapter", "dit"}
    assert {"record", "train", "rank", "total"} <= set(report["timings_s"])
    assert report["seed"] == 0 and "state probe" in report["ranking"]["judge"]
    assert json.loads((out / "ranking.json").read_text())["ranking"] == report["ranking"]


def test_rank_refuses_a_world_model_of_another_env(tmp_path):
    assert main(["rank", f"world_models=[{tmp_path}/missing]", f"out={tmp_path / 'o'}"]) == 2


def test_outcomes_from_coverage():
    r = Rollouts(
        actions=np.zeros((3, 2, 2)),
        coverage=np.array([[0, 0.5, 0.97], [0, 0.85, 0.1], [0, 0.2, 0.3]]),
        step_success=np.array([[False, True], [False, False], [False, False]]),
        success=np.array([True, False, False]),
        lengths=np.array([2, 2, 2]),
        seeds=np.arange(3),
    )
    assert episode_outcomes(r, "strict").tolist() == [1, 0, 0]
    assert episode_outcomes(r, "graded").tolist() == [1, 1, 0]
    assert episode_outcomes(r, "coverage") == pytest.approx([0.97, 0.85, 0.3])


def test_a_saved_lerobot_policy_ranks_unchanged_in_both_worlds(tmp_path):
    from tests.test_policies import _save_tiny_diffusion

    _save_tiny_diffusion(str(tmp_path / "policy"))
    wm = pusht_shaped_world_model(tmp_path / "wm")
    out = tmp_path / "rank"
    code = main(
        [
            "rank",
            f"world_models=[{wm}]",
            f"policies=[lerobot:{tmp_path / 'policy'},pusht/idle@image]",
            "episodes=2",
            "max_steps=10",
            "num_envs=2",
            "n_boot=10",
            "rerun=off",
            "progress=false",
            f"out={out}",
        ]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    names = [p["name"] for p in report["outcomes"][wm.split("/")[-1]]["coverage"]["policies"]]
    assert names[0] == f"lerobot:{tmp_path / 'policy'}"
