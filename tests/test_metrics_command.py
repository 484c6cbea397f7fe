"""`wmeval metrics` end to end on a tiny PushT-shaped world model and a tiny recorded dataset."""

from __future__ import annotations

import json

import pytest
import torch

from tests.wm_fixtures import pusht_shaped_world_model
from wmeval.cli import main

torch.set_num_threads(1)

BLOCKS = {"video", "pck", "state", "controllability", "idm", "probe"}
SMALL = [
    "episodes=2",
    "horizon=4",
    "threads=1",
    "progress=false",
    "controllability.methods=[cem,gradient,grid]",
    "controllability.windows=3",
    "controllability.population=12",
    "controllability.elites=3",
    "controllability.iterations=2",
    "controllability.grad_steps=2",
    "controllability.grid_points=4",
    "controllability.grid_sweeps=1",
    "idm.steps=10",
    "idm.width=32",
    "idm.depth=1",
    "pck.grid=8",
    "video.fvd_frames=4",
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("metrics")
    data = root / "data"
    args = ["record", "env=pusht", "policy=pusht/expert", "episodes=4", "max_steps=30", "progress=false"]
    assert main([*args, f"out={data}"]) == 0
    # 30 steps rarely succeed: label even episodes successful so that the probe has both classes to learn
    sidecar = data / "meta" / "wmeval_episodes.jsonl"
    rows = [json.loads(line) for line in sidecar.read_text().splitlines()]
    sidecar.write_text(
        "".join(json.dumps({**r, "success": r["episode_index"] % 2 == 0}) + "\n" for r in rows)
    )
    return pusht_shaped_world_model(root / "wm"), data, root


@pytest.fixture(scope="module")
def full_run(setup):
    wm, data, root = setup
    out = root / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(
            "TORCH_HOME", str(root / "empty_torch_home")
        )  # no cached backbones: LPIPS/FID/FVD unavailable
        assert main(["metrics", f"world_models=[{wm}]", f"data={data}", f"out={out}", *SMALL]) == 0
    return out, json.loads((out / "metrics.json").read_text())


def test_metrics_writes_every_block_and_curves(full_run):
    out, report = full_run
    assert set(report["metrics"]) == BLOCKS
    run = report["run"]
    assert (
        run["horizon"] == 4
        and run["context"] == 1
        and len(run["episodes"]) == 1
        and run["train_episodes"] == 3
    )
    video = report["metrics"]["video"]["values"]
    assert video["psnr"]["copy_last"] > video["psnr"]["model"]  # an untrained model loses to copying
    assert video["ssim"]["reconstruction"] == pytest.approx(1.0)  # the pixel encoder is lossless
    assert all(video[m].startswith("unavailable: ") for m in ("lpips", "fid", "fvd"))
    assert len(video["psnr"]["by_step"]["model"]) == 4
    pck = report["metrics"]["pck"]
    assert pck["tracker"] == "opencv_lucas_kanade" and set(pck["values"]) == {"model", "copy_last"}
    ctrl = report["metrics"]["controllability"]["values"]
    for k in ("k1", "k4"):
        for method in ("cem", "gradient", "grid"):
            assert len(ctrl[k][method]["action_abs_error_per_dim"]) == 10  # 5 sim steps x 2 dims
        assert {"random_action_l2", "random_action_latent_mse", "copy_last_latent_mse"} <= set(
            ctrl[k]["baseline"]
        )
    idm = report["metrics"]["idm"]["values"]
    assert {"real", "world_model", "drop", "baseline"} <= set(idm["k1"])
    probe = report["metrics"]["probe"]["values"]
    assert {"real", "world_model", "copy_last", "drop"} <= set(probe)
    state = report["metrics"]["state"]["values"]
    assert isinstance(state, dict) or state.startswith("unavailable: ")
    for block in report["metrics"].values():
        assert "seconds" in block
    assert (out / "video_psnr.png").is_file() and (out / "pck_coverage.png").is_file()
    assert set(report["plots"]) >= {"video_psnr", "video_ssim", "pck_pck10", "pck_coverage"}


def test_same_seed_same_numbers(setup, full_run):
    wm, data, root = setup
    out = root / "again"
    args = [
        f"world_models=[{wm}]",
        f"data={data}",
        f"out={out}",
        "metrics=[controllability,idm,probe,video]",
        *SMALL,
    ]
    assert main(["metrics", *args, "video.metrics=[psnr,ssim]"]) == 0
    again = json.loads((out / "metrics.json").read_text())["metrics"]
    first = full_run[1]["metrics"]
    for name in ("controllability", "idm", "probe"):
        assert again[name]["values"] == first[name]["values"]
    assert again["video"]["values"]["psnr"] == first["video"]["values"]["psnr"]


def test_unknown_metric_is_a_one_line_error(setup, capsys):
    wm, data, root = setup
    assert (
        main(["metrics", f"world_models=[{wm}]", f"data={data}", f"out={root / 'bad'}", "metrics=[nope]"])
        == 2
    )
    assert "nope" in capsys.readouterr().err


def test_heldout_all_evaluates_every_episode_as_a_test_set(setup):
    wm, data, root = setup
    out = root / "test_set"
    args = [
        "metrics",
        f"world_models=[{wm}]",
        f"data={data}",
        f"out={out}",
        "metrics=[video]",
        "video.metrics=[psnr]",
    ]
    assert main([*args, "heldout=all", "episodes=4", "horizon=2", "threads=1", "progress=false"]) == 0
    run = json.loads((out / "metrics.json").read_text())["run"]
    assert run["episodes"] == [0, 1, 2, 3] and run["train_episodes"] == 0
    assert run["split"].startswith("every episode of the data (4)")


def test_heldout_all_refuses_metrics_that_train(setup, capsys):
    wm, data, root = setup
    out = root / "no_train"
    assert (
        main(
            ["metrics", f"world_models=[{wm}]", f"data={data}", f"out={out}", "metrics=[idm]", "heldout=all"]
        )
        == 2
    )
    assert "heldout=all leaves no training episodes" in capsys.readouterr().err
    assert not out.exists()  # the failed command leaves no empty output directory behind
    assert main(["metrics", f"world_models=[{wm}]", f"data={data}", f"out={out}", "heldout=half"]) == 2
    assert "heldout='half' must be a number of episodes, all, or null" in capsys.readouterr().err
