"""`wmeval demo`: record -> (train) -> rank -> report, offline on CPU, with no arguments.

Records fresh real episodes with the PushT policy family, ranks the family in the real simulator and inside
the shipped world model (and the copy-last-frame baseline) on paired start states, and writes the report to
`outputs/demo/<timestamp>/`, with `outputs/demo/latest` pointing at it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from wmeval.cli import compose_config
from wmeval.commands.rank import rank_and_report, validate
from wmeval.io import prepare_out_dir, write_json
from wmeval.report.summary import summary_text
from wmeval.sharding import Sharding, resolve_workers


def run(cfg: DictConfig) -> dict[str, Any]:
    started = time.perf_counter()
    validate(cfg)
    out = prepare_out_dir(cfg.out, "demo", overwrite=cfg.overwrite)
    timings = {"record": 0.0, "train": 0.0}
    world_model = str(cfg.world_model)
    if cfg.train:
        world_model, timings["record"], timings["train"] = _train_from_scratch(cfg, out)

    sharding = Sharding(workers=resolve_workers(cfg.workers))  # local worker processes, never torchrun
    report = rank_and_report(cfg, out, [world_model], baseline=True, timings=timings, sharding=sharding)
    report["timings_s"]["total"] = time.perf_counter() - started  # report writing included
    write_json(out / "report.json", report)
    write_json(out / "ranking.json", report)
    _link_latest(out)
    print(f"\n{summary_text(report, out)}   ({report['timings_s']['total']:.0f} s)")
    return report


def _train_from_scratch(cfg: DictConfig, out: Path) -> tuple[str, float, float]:
    """`wmeval record` + `wmeval train` with the shipped model's recipe, scaled by the profile."""
    from wmeval.commands import record, train

    started = time.perf_counter()
    data = out / "train_data"
    record.run(
        compose_config(
            "record",
            [
                f"env={cfg.env}",
                "policy=play",  # diverse play, never a ranked policy
                f"episodes={cfg.train_data_episodes}",
                f"max_steps={cfg.max_steps}",
                f"seed={cfg.seed + 1}",
                f"out={data}",
                f"progress={cfg.progress}",
            ],
        )
    )
    recorded = time.perf_counter()
    train.run(
        compose_config(
            "train",
            [
                "recipe=pusht_tiny",
                f"data={data}",
                f"out={out / 'train'}",
                f"seed={cfg.seed}",
                f"optim.steps={cfg.train_steps}",
                f"device={cfg.device}",
                *cfg.train_overrides,
            ],
        )
    )
    return str(out / "train" / "model"), recorded - started, time.perf_counter() - recorded


def _link_latest(out: Path) -> None:
    """`outputs/demo/latest` -> this run (a relative symlink, replaced atomically)."""
    latest = out.parent / "latest"
    tmp = out.parent / f".latest.{os.getpid()}"
    try:
        tmp.symlink_to(out.name)
        os.replace(tmp, latest)
    except OSError:
        tmp.unlink(missing_ok=True)
