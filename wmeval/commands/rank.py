"""`wmeval rank`: which policy is best, in the real env and in each world model, and how faithful is each.

With `data=DIR` there is no env: the dataset's recorded behaviours (episodes grouped by `group_by`) are
replayed in each world model and ranked against their recorded success (`wmeval.ranking.recorded`).
"""

from __future__ import annotations

import time
from typing import Any

from omegaconf import DictConfig, OmegaConf

from wmeval.io import prepare_out_dir
from wmeval.ranking.config import RankConfig
from wmeval.ranking.report import write_ranking_outputs
from wmeval.ranking.run import rank
from wmeval.report.summary import summary_text
from wmeval.sharding import current_sharding
from worldmodel.training.distributed import on_main


def run(cfg: DictConfig) -> dict[str, Any]:
    started = time.perf_counter()
    if cfg.data:
        return _rank_recorded(cfg, started)
    rank_cfg = RankConfig.from_config(cfg)
    sharding, dist = current_sharding(rank_cfg.workers, rank_cfg.device)
    out = on_main(lambda: prepare_out_dir(cfg.out, "rank", overwrite=cfg.overwrite), dist)
    ranking = rank(rank_cfg, sharding)
    if ranking is None:  # a torchrun rank other than the main one: it rolled its share
        return {}
    timings = {"rank": time.perf_counter() - started}
    report = write_ranking_outputs(out, ranking, timings, started, OmegaConf.to_container(cfg, resolve=True))
    print(f"\n{summary_text(report, out)}")
    return report


def _rank_recorded(cfg: DictConfig, started: float) -> dict[str, Any]:
    """Recorded behaviours of `data` replayed in each world model -> report.json (+ report.md)."""
    from wmeval.data.sources import load_data
    from wmeval.ranking.inputs import resolve_world_models
    from wmeval.ranking.recorded import rank_recorded, write_recorded_outputs

    out = prepare_out_dir(cfg.out, "rank", overwrite=cfg.overwrite)
    models = resolve_world_models([str(s) for s in cfg.world_models], False, cfg.device)
    episodes = load_data(cfg, progress=cfg.progress)
    blocks = rank_recorded(
        models,
        episodes,
        data=str(cfg.data),
        group_by=str(cfg.group_by),
        heldout=cfg.heldout,
        horizon=int(cfg.horizon),
        context=int(cfg.context),
        num_steps=cfg.num_steps,
        seed=int(cfg.seed),
        n_boot=int(cfg.n_boot),
        mismatch_negatives=bool(cfg.mismatch_negatives),
        progress=bool(cfg.progress),
    )
    return write_recorded_outputs(
        out,
        blocks,
        models,
        data=str(cfg.data),
        group_by=str(cfg.group_by),
        seed=int(cfg.seed),
        started=started,
        command_config=OmegaConf.to_container(cfg, resolve=True),
    )
