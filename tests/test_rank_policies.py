"""`wmeval rank` end to end: policies ranked in the simulator and in world models, the report it writes, episode
outcomes and policy sets. The ranking-fidelity statistics themselves are in test_ranking_fidelity.py."""

import json

import numpy as np
import pytest

from tests.wm_fixtures import pusht_shaped_world_model
from wmeval.cli import main
from wmeval.judges.frame import FrameJudge
from wmeval.judges.outcomes import episode_outcomes
from wmeval.rollout import Rollouts

SCHEMA_RANKING = {"policies", "pearson", "spearman", "kendall", "mmrv", "pairwise_accuracy", "ci95", "judge"}


def test_rank_writes_the_report_schema(tmp_path, caplog):
    meta = {"data": "datasets/demo", "training_policies": ["pusht/expert", "pusht/random"]}
    wm = pusht_shaped_world_model(tmp_path / "wm", meta=meta)
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
    # the default judge reads every generated frame; readability is only a diagnostic beside it
    assert "read on every generated frame" in report["ranking"]["judge"]
    assert "SKIPPED" not in report["ranking"]["judge"]
    # the report says what the world model learnt from, and which ranked behaviours were part of it
    assert report["training_data"]["wm"] == {"data": "datasets/demo", "policies": meta["training_policies"]}
    flags = {p["name"]: p["in_training_data"] for p in report["ranking"]["policies"]}
    assert flags == {"pusht/expert@image": True, "pusht/idle@image": False, "random": False}
    assert "wm was trained on the behaviour of pusht/expert@image" in caplog.text
    assert json.loads((out / "ranking.json").read_text())["ranking"] == report["ranking"]
    readable = report["judge_readability"]
    assert set(readable["worlds"]) == {"wm", "copy_last"} and 0.9 <= readable["real"] <= 1.0
    assert set(readable["policies"]["wm"]) == {"pusht/expert@image", "pusht/idle@image", "random"}
    assert not readable["gated"] and "every_frame_read" not in readable
    md = (out / "report.md").read_text()
    assert "judge-readable frames" in md and "in training data" in md
    # lerobot-eval's eval_info per world and policy, success agreeing with the report's strict outcome
    for world in ("real", "wm", "copy_last"):
        info = json.loads((out / "eval_info" / world / "pusht_expert@image.json").read_text())
        assert [e["seed"] for e in info["per_episode"]] == [0, 1]
        strict = {
            p["name"]: p
            for p in report["outcomes"].get(world, report["outcomes"]["wm"])["strict"]["policies"]
        }
        side = "real_success" if world == "real" else "imagined_success"
        assert info["aggregated"]["pc_success"] == pytest.approx(100 * strict["pusht/expert@image"][side])
        # real | imagined videos of the first `videos` (2) episodes, named in eval_info as lerobot-eval does
        videos = info.get("video_paths", [])
        assert len(videos) == (0 if world == "real" else 2)
        assert all((out / v).stat().st_size > 0 and f"videos/{world}/" in v for v in videos)


def test_skipping_unreadable_frames_is_an_explicit_flagged_diagnostic(tmp_path):
    wm = pusht_shaped_world_model(tmp_path / "wm")
    out = tmp_path / "rank"
    args = ["policies=[pusht/expert@image,pusht/idle@image]", "episodes=2", "max_steps=10", "num_envs=2"]
    code = main(
        ["rank", f"world_models=[{wm}]", *args, "readable_only=true", "n_boot=5", "rerun=off"]
        + ["progress=false", f"out={out}"]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert "SKIPPED (readable_only=true" in report["ranking"]["judge"]
    readable = report["judge_readability"]
    assert readable["gated"]
    naive = readable["every_frame_read"]["wm"]["graded"]  # the same rollouts, every frame read
    assert set(naive) == {"pearson", "spearman", "kendall", "mmrv"} and 0 <= naive["mmrv"] <= 1
    md = (out / "report.md").read_text()
    assert "The same rollouts read on every frame: Spearman" in md
    assert report["ranking"]["sampling"]["mode"] == "fixed" and report["ranking"]["sampling"]["episodes"] == 2
    assert "paired over start states" in report["ranking"]["ci_method"]


def test_rank_episodes_auto_records_its_rounds(tmp_path, capsys):
    wm = pusht_shaped_world_model(tmp_path / "wm")
    out = tmp_path / "rank"
    overrides = ["policies=[pusht/expert@image,random]", "max_steps=4", "num_envs=2", "n_boot=20"]
    args = [*overrides, "baseline=false", "rerun=off", "save_rollouts=false", "progress=false"]
    auto = ["episodes=auto", "precision=0.001", "pilot_episodes=2", "max_episodes=4"]
    assert main(["rank", f"world_models=[{wm}]", *args, *auto, f"out={out}"]) == 0
    sampling = json.loads((out / "report.json").read_text())["ranking"]["sampling"]
    assert sampling["mode"] == "auto" and not sampling["reached"]  # no world model orders this precisely
    assert [r["episodes"] for r in sampling["rounds"]] == [2, 4] and sampling["episodes"] == 4
    report = json.loads((out / "report.json").read_text())
    assert all(p["episodes"] == 4 for p in report["ranking"]["policies"])
    assert "too wide to order the policies" in capsys.readouterr().err


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


def test_every_frame_read_rescores_the_raw_estimates_the_gate_skipped():
    # the gate held coverage at 0.2 while the estimator read 0.99 off an unreadable frame
    states = np.zeros((1, 3, 5))
    states[0, :, 0] = [0.1, 0.2, 0.99]
    r = Rollouts(
        actions=np.zeros((1, 2, 2)),
        coverage=np.array([[0.1, 0.2, 0.2]]),
        step_success=np.zeros((1, 2), bool),
        success=np.array([False]),
        lengths=np.array([2]),
        seeds=np.arange(1),
        states=states,
    )
    naive = FrameJudge(lambda f: f, lambda s: s[:, 0], "toy").read_every_frame(r)
    assert naive.coverage.tolist() == [[0.1, 0.2, 0.99]] and naive.success.tolist() == [True]
    assert r.coverage.max() == pytest.approx(0.2)  # the gated rollouts are left as they were


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


def test_rank_saves_every_world_as_a_lerobot_dataset_with_paired_start_states(tmp_path):
    from wmeval.data.lerobot_episodes import load_episodes

    wm = pusht_shaped_world_model(tmp_path / "wm")
    out = tmp_path / "rank"
    args = ["policies=[pusht/expert@image,pusht/idle@image]", "episodes=2", "max_steps=7", "num_envs=2"]
    assert (
        main(["rank", f"world_models=[{wm}]", *args, "n_boot=5", "rerun=off", "progress=false", f"out={out}"])
        == 0
    )

    worlds = {p.name for p in (out / "rollouts").iterdir()}
    assert worlds == {"real", "wm"}  # the copy-last baseline's frames are its start frame, repeated
    real = load_episodes(out / "rollouts" / "real", progress=False)
    imagined = load_episodes(out / "rollouts" / "wm", progress=False)
    assert [e["policy"] for e in imagined] == ["pusht/expert@image"] * 2 + ["pusht/idle@image"] * 2
    assert [e["seed"] for e in imagined] == [e["seed"] for e in real] == [0, 1, 0, 1]
    for r, i in zip(real, imagined, strict=True):
        assert i["frames"].shape == (r["length"], 96, 96, 3)  # one row per step
        # an imagined episode names the real state it started from, not its own estimate of it
        assert i["meta"]["start_state"] == pytest.approx(r["states"][0].tolist(), abs=1e-3)
        assert r["meta"]["start_state"] == pytest.approx(r["states"][0].tolist(), abs=1e-3)
    manifest = json.loads((out / "rollouts" / "wm" / "meta" / "wmeval_record.json").read_text())
    assert (
        manifest["checkpoint"] == str(wm) and manifest["world"] == "wm" and "estimated" in manifest["states"]
    )
    assert manifest["seed"] == 0 and "torch" in manifest["versions"]
    report = json.loads((out / "report.json").read_text())
    saved = {p["policy"].split(" in ")[0]: p["max_coverage_mean"] for p in manifest["policies"]}
    assert saved == pytest.approx(
        {p["name"]: p["imagined_success"] for p in report["outcomes"]["wm"]["coverage"]["policies"]}
    )


def _rollouts(max_coverage: list[float]) -> Rollouts:
    cov = np.array([[0.0, c] for c in max_coverage])
    n = len(max_coverage)
    return Rollouts(
        actions=np.zeros((n, 1, 2)),
        coverage=cov,
        step_success=cov[:, 1:] > 0.95,
        success=cov.max(1) > 0.95,
        lengths=np.ones(n, int),
        seeds=np.arange(n),
    )


def test_each_policy_set_is_ranked_on_its_own_and_flagged_when_it_trained_the_model():
    from types import SimpleNamespace

    from wmeval.ranking.fidelity import fidelity_blocks
    from wmeval.ranking.report import build_report
    from wmeval.ranking.run import RankResult
    from wmeval.report.markdown import build_blocks

    real = {"a": [0.9, 0.8], "b": [0.5, 0.4], "c": [0.2, 0.3], "d": [0.7, 0.6]}
    imagined = {"a": [0.8, 0.8], "b": [0.6, 0.5], "c": [0.6, 0.7], "d": [0.1, 0.2]}  # c and d flipped
    result = RankResult(
        real={p: _rollouts(v) for p, v in real.items()},
        imagined={"wm": {p: _rollouts(v) for p, v in imagined.items()}},
    )
    result.blocks = fidelity_blocks(result, list(real), n_boot=0, seed=0)
    wm = SimpleNamespace(config=SimpleNamespace(meta={"data": "d", "training_policies": ["a", "b"]}))
    sets = {"family": ["a", "b"], "heldout": ["c", "d"]}
    report = build_report(result, {"wm": wm}, "coverage", 0, {}, policy_sets=sets)
    family, heldout = report["policy_sets"]["family"], report["policy_sets"]["heldout"]
    assert family["in_training_data"] == {"wm": True} and heldout["in_training_data"] == {"wm": False}
    assert family["fidelity"]["wm"]["spearman"] == pytest.approx(1.0)
    assert heldout["fidelity"]["wm"]["spearman"] == pytest.approx(-1.0)
    assert [p["in_training_data"] for p in report["ranking"]["policies"]] == [True, True, False, False]
    tables = [b for b in build_blocks(report, {}) if b[0] == "table" and b[1][0] == "policy set"]
    assert [row[:3] for row in tables[0][2]] == [["family (2)", "wm", "yes"], ["heldout (2)", "wm", "no"]]


def test_policy_sets_resolve_names_and_refuse_a_single_policy():
    from wmeval.errors import ConfigError
    from wmeval.ranking.inputs import resolve_policy_sets

    sets = resolve_policy_sets("pusht", ["family", "random", "pusht/idle"])
    assert sets["family"][0] == "pusht/expert@image" and sets["listed"] == ["random", "pusht/idle"]
    with pytest.raises(ConfigError, match="at least two distinct policies"):
        resolve_policy_sets("pusht", "random")


def test_rank_config_checks_its_values_and_the_demo_config_is_ranks_with_its_own_choices():
    from dataclasses import asdict

    from wmeval.cli import compose_config
    from wmeval.errors import ConfigError
    from wmeval.ranking import RankConfig

    with pytest.raises(ConfigError, match="episodes=1 must be an integer >= 2"):
        RankConfig(episodes=1)
    with pytest.raises(ConfigError, match="rerun='x' is unknown"):
        RankConfig(rerun="x")
    with pytest.raises(ConfigError, match="outcome='best' is unknown"):
        RankConfig(outcome="best")
    rank, demo = (asdict(RankConfig.from_config(compose_config(c, []))) for c in ("rank", "demo"))
    differ = {k: (rank[k], demo[k]) for k in rank if rank[k] != demo[k]}
    assert differ == {
        "policies": ("family", ["family", "heldout"]),
        "world_models": (["shipped"], ["shipped", "shipped_tokens"]),
        "outcome": ("graded", "coverage"),
        "workers": (1, "auto"),
        "save_rollouts": (True, False),
    }
