"""Rollout units spread over local worker processes or torchrun ranks give the single-process report."""

import json
import math
import os
from pathlib import Path

import pytest

from tests.torchrun import failure, torchrun
from wmeval.cli import main
from wmeval.sharding import Sharding, map_units, resolve_workers
from wmeval.shipped import SHIPPED_WORLD_MODEL

REPO = Path(__file__).resolve().parents[1]
NUMBERS_ONLY = ("timings_s", "rollout_timings_s", "sharding")

needs_shipped = pytest.mark.skipif(
    not (SHIPPED_WORLD_MODEL / "world_model.json").is_file(), reason="the shipped world model is not here"
)


def test_local_workers_return_results_in_the_units_order():
    units = [float(i) for i in range(7)]
    assert map_units(math.sqrt, units, Sharding(workers=3), progress=False) == [math.sqrt(u) for u in units]


def test_workers_must_be_a_positive_count_or_auto():
    assert resolve_workers("auto") >= 1 and resolve_workers(2) == 2
    for bad in (0, -1, "two", True):
        with pytest.raises(ValueError, match="workers"):
            resolve_workers(bad)


def _numbers(report_path: Path) -> dict:
    report = json.loads(report_path.read_text())
    return {k: v for k, v in report.items() if k not in NUMBERS_ONLY}


RANK = [
    "rank",
    "policies=[pusht/expert_noisy@image,pusht/idle@image,pusht/heldout/timid@image]",
    "episodes=2",
    "max_steps=10",
    "num_envs=2",
    "n_boot=50",
    "outcome=coverage",
    "rerun=off",
    "save_rollouts=false",
    "progress=false",
]


@needs_shipped
def test_torchrun_ranks_write_the_single_process_report(tmp_path, one_thread):
    # the ranks run one torch thread each (torchrun's default), as this process does under `one_thread`;
    # the noisy expert checks that a unit's numbers do not depend on which process rolled it, or after what
    assert main([*RANK, f"out={tmp_path / 'single'}"]) == 0
    args = ["-m", "wmeval.cli", *RANK, f"out={tmp_path / 'ranks'}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = torchrun(args, port=29541, outputs=tmp_path / "ranks", env=env, cwd=tmp_path)
    assert result.returncode == 0, failure(result)
    assert _numbers(tmp_path / "ranks" / "report.json") == _numbers(tmp_path / "single" / "report.json")
    split = json.loads((tmp_path / "ranks" / "report.json").read_text())["sharding"]
    assert split["world_size"] == 2 and split["units"] == 3 * 3  # real, shipped and copy-last per policy
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ranks", "single"]  # only rank 0 wrote
