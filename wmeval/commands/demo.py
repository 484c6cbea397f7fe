"""`wmeval demo`: record -> (train) -> rank -> report, offline on CPU, with no arguments.

Records fresh real episodes with the PushT policy family, ranks the family in the real simulator and inside
the two shipped world models (and the copy-last-frame baseline) on paired start states, and writes the report to
`outputs/demo/<timestamp>/`, with `outputs/demo/latest` pointing at it. `demo.yaml` is `rank.yaml` with the
demo's choices on top.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from wmeval.cli import compose_config
from wmeval.errors import ConfigError
from wmeval.io import link_latest, prepare_out_dir
from wmeval.ranking.config import RankConfig
from wmeval.ranking.report import write_ranking_outputs
from wmeval.ranking.run import rank
from wmeval.report.summary import summary_text
from wmeval.sharding import Sharding, resolve_workers


def run(cfg: DictConfig) -> dict[str, Any]:
    started = time.perf_counter()
    if cfg.data:
        raise ConfigError(f"data={cfg.data}: the demo records its own episodes; use wmeval rank data=DIR")
    rank_cfg = RankConfig.from_config(cfg)
    out = prepare_out_dir(cfg.out, "demo", overwrite=cfg.overwrite)
    timings = {"record": 0.0, "train": 0.0}
    if cfg.train:
        model, timings["record"], timings["train"] = _train_from_scratch(cfg, out)
        rank_cfg = dataclasses.replace(rank_cfg, world_models=[model])

    sharding = Sharding(workers=resolve_workers(rank_cfg.workers))  # local worker processes, never torchrun
    ranked_at = time.perf_counter()
    ranking = rank(rank_cfg, sharding)
    timings["rank"] = time.perf_counter() - ranked_at
    report = write_ranking_outputs(out, ranking, timings, started, OmegaConf.to_container(cfg, resolve=True))
    link_latest(out)
    print(f"\n{summary_text(report, out)}   ({report['timings_s']['total']:.0f} s)")
    return report


def _train_from_scratch(cfg: DictConfig, out: Path) -> tuple[str, float, float]:
    """`wmeval record` + `wmeval train` with the shipped model's recipe, scaled by the profile.

    The train command has no library entry point below its Hydra config (its recipe is a config group), so
    this composes the two commands' configs rather than calling functions."""
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
