"""`wmeval bench`: every entry writes its measurements, ratio and environment; bad entries are config errors."""

from __future__ import annotations

import functools
import json
import math

import torch

from tests.wm_fixtures import pusht_shaped_world_model
from wmeval.bench import entries, sampling
from wmeval.bench.entries import demo_sized_world_model
from wmeval.cli import main

CPU = torch.device("cpu")


def test_bench_cli_writes_json_and_table(tmp_path, capsys, monkeypatch):
    # The real entry at a small batch: the CLI plumbing is what this test is about.
    monkeypatch.setattr(entries, "data_stall", functools.partial(entries.data_stall, batch=2, steps=2))
    assert main(["bench", "entries=[data_stall]", f"out={tmp_path}", "threads=1"]) == 0
    result = json.loads((tmp_path / "bench.json").read_text())
    stall = result["data_stall"]
    assert 0.0 <= stall["fraction"] <= 1.0
    assert stall["data_s_per_step"] <= stall["s_per_step"]
    assert stall["device"] == "cpu" and stall["torch"] == torch.__version__
    assert "data_stall" in capsys.readouterr().out


def test_bench_unknown_entry_is_a_config_error(tmp_path, capsys):
    assert main(["bench", "entries=[kv_cash]", f"out={tmp_path}"]) == 2
    assert "kv_cash" in capsys.readouterr().err
    assert not (tmp_path / "bench.json").exists()


def test_euler_steps_reports_quality_and_cost_per_step_count(tmp_path):
    wm_dir = pusht_shaped_world_model(tmp_path / "wm")
    result = sampling.euler_steps(wm_dir, CPU, steps=(1, 3), episodes=2, horizon=2)
    rows = result["by_steps"]
    assert [row["num_steps"] for row in rows] == [1, 3]
    assert all(math.isfinite(row["psnr"]) and row["s_per_frame_per_rollout"] > 0 for row in rows)
    assert result["fewest_steps_at_best_psnr"] in (1, 3)
    assert math.isfinite(result["psnr_copy_last"])


def test_cem_throughput_counts_every_candidate():
    torch.set_num_threads(1)
    wm = demo_sized_world_model(CPU)
    result = sampling.cem_throughput(CPU, wm, population=4, windows=1)
    assert result["batch"] == 4
    assert result["candidates_per_s_batched"] > 0 and result["candidates_per_s_one_at_a_time"] > 0
    expected = result["candidates_per_s_batched"] / result["candidates_per_s_one_at_a_time"]
    assert math.isclose(result["ratio"], expected, rel_tol=1e-9)


def test_rollout_entries_time_a_token_model_or_a_saved_one(tmp_path):
    wm, name = entries.bench_world_model(CPU, "tokens")
    assert wm.dit.config.token_geometry and wm.dit.config.grid == (1, 8) and "token dit" in name
    assert f"(renderer {str(wm.encoder.render_dtype).removeprefix('torch.')})" in name
    saved = pusht_shaped_world_model(tmp_path / "wm")
    wm, name = entries.bench_world_model(CPU, saved)
    assert wm.directory is not None and str(wm.directory) == saved and name.startswith(saved)
