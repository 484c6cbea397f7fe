"""`wmeval rank`: which policy is best, in the real env and in each world model, and how faithful is each.

With `data=DIR` there is no env: the dataset's recorded behaviours (episodes grouped by `group_by`) are
replayed in each world model and ranked against their recorded success (`wmeval.rank_recorded`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from wmeval.envs.registry import POLICY_SETS, get_task
from wmeval.errors import ConfigError
from wmeval.io import prepare_out_dir, write_text
from wmeval.judges.outcomes import check_outcome
from wmeval.metrics.precision import sized_run
from wmeval.provenance import in_training_data, training_data
from wmeval.rank import load_world_model, rank_policies
from wmeval.report.ranking import BASELINE, write_ranking_outputs
from wmeval.report.summary import summary_text
from wmeval.sharding import Sharding, current_sharding
from wmeval.shipped import SHIPPED_WORLD_MODEL
from worldmodel.training.distributed import on_main

log = logging.getLogger(__name__)


def resolve_policy_sets(env: str, policies: Any) -> dict[str, list[str]]:
    """A policy set the env's task names (`family`, `heldout`) -> its members, image-based (a world model gives
    pixels, not sim state); any other names form the set `listed`. A string is one entry; a list may mix sets
    and names."""
    task = get_task(env)
    entries = [policies] if isinstance(policies, str) else [str(p) for p in policies]
    sets: dict[str, list[str]] = {}
    for entry in entries:
        if entry in POLICY_SETS:
            sets[entry] = [f"{n}@image" for n in task.policy_set(entry)]
        else:
            sets.setdefault("listed", []).append(entry)
    names = [n for group in sets.values() for n in group]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ConfigError(
            f"policies={entries} must name at least two distinct policies: give `family`, `heldout`, "
            "both ([family,heldout]) or a list of policy names"
        )
    return sets


def resolve_world_models(specs: list[str], baseline: bool, device: str) -> dict[str, Any]:
    models: dict[str, Any] = {}
    for spec in specs:
        path = SHIPPED_WORLD_MODEL if spec == "shipped" else Path(spec)
        name = "shipped" if spec == "shipped" else path.name if path.name != "model" else path.parent.name
        if spec == "shipped" and not (SHIPPED_WORLD_MODEL / "world_model.json").is_file():
            raise ConfigError(
                f"the shipped world model is missing at {SHIPPED_WORLD_MODEL}: reinstall, or pass world_models=[DIR]"
            )
        models[name] = load_world_model(str(path), device=device)
    if not models:
        raise ConfigError("world_models is empty: pass at least one model directory (or `shipped`)")
    if baseline:
        models["copy_last"] = load_world_model("copy_last", reference=next(iter(models.values())))
    return models


def validate(cfg: DictConfig) -> None:
    """Checks shared by `rank` and `demo`, before any work starts."""
    check_outcome(cfg.outcome)
    if cfg.rerun not in ("save", "spawn", "serve", "off"):
        raise ConfigError(f"rerun={cfg.rerun!r} is unknown: choose save, spawn, serve or off")
    if cfg.episodes != "auto" and (not isinstance(cfg.episodes, int) or cfg.episodes < 2):
        raise ConfigError(f"episodes={cfg.episodes} must be an integer >= 2 for a bootstrap, or auto")
    if cfg.max_steps < 1:
        raise ConfigError(f"max_steps={cfg.max_steps} must be >= 1")
    if not isinstance(cfg.videos, int) or cfg.videos < 0:
        raise ConfigError(f"videos={cfg.videos} must be an integer >= 0 (episodes per policy; 0: no videos)")


def rank_and_report(
    cfg: DictConfig,
    out: Path | None,
    world_model_specs: list[str],
    baseline: bool,
    timings: dict[str, float],
    sharding: Sharding | None = None,
) -> dict[str, Any] | None:
    """Policies x world models vs the real env on paired start states, then every output file (rank and demo).

    Under torchrun every process rolls its share; only the main one (`out` given) writes, the others get None.
    """
    from policies.registry import make_policy

    sharding = sharding or Sharding()
    policies_cfg = cfg.policies if isinstance(cfg.policies, str) else OmegaConf.to_container(cfg.policies)
    sets = resolve_policy_sets(cfg.env, policies_cfg)
    policies = {name: make_policy(name, seed=cfg.seed) for group in sets.values() for name in group}
    world_models = resolve_world_models(world_model_specs, baseline, sharding.device or cfg.device)
    if sharding.is_main:
        warn_in_training_data(policies, world_models)
    started = time.perf_counter()
    result, sampling = sized_run(
        lambda episodes: rank_policies(
            policies,
            world_models,
            env=cfg.env,
            episodes=episodes,
            max_steps=cfg.max_steps,
            seed=cfg.seed,
            num_envs=cfg.num_envs,
            num_steps=cfg.num_steps,
            n_boot=cfg.n_boot,
            progress=cfg.progress,
            readable_only=cfg.readable_only,
            sharding=sharding,
        ),
        lambda res: {n: b[cfg.outcome] for n, b in res.blocks.items() if n != BASELINE},
        episodes=cfg.episodes,
        target=cfg.get("precision"),
        pilot=int(cfg.get("pilot_episodes", 16)),
        max_episodes=int(cfg.get("max_episodes", 256)),
        multiple_of=int(cfg.num_envs),
    )
    if not sharding.is_main:
        return None
    for line in sampling["warnings"]:
        log.warning(line)
    for name, blocks in result.blocks.items():
        if name != BASELINE:
            blocks[cfg.outcome]["sampling"] = sampling
    cfg = OmegaConf.merge(cfg, {"episodes": sampling["episodes"]})
    timings = {**timings, "rank": time.perf_counter() - started}
    return write_ranking_outputs(out, result, world_models, cfg, timings=timings, policy_sets=sets)


def warn_in_training_data(policies: dict[str, Any], world_models: dict[str, Any]) -> None:
    """Say which ranked policies produced a world model's training data: their fidelity is in-distribution."""
    for wm_name, wm in world_models.items():
        training = training_data(wm)
        seen = [p for p in policies if in_training_data(p, training)]
        if seen:
            log.warning(
                "%s was trained on the behaviour of %s: ranking them measures replay of training data, "
                "not ranking of new policies (the report flags them; read the held-out set's fidelity)",
                wm_name,
                ", ".join(seen),
            )


def run(cfg: DictConfig) -> dict[str, Any]:
    if cfg.data:
        return rank_recorded_and_report(cfg)
    validate(cfg)
    sharding, dist = current_sharding(cfg.workers, cfg.device)
    out = on_main(lambda: prepare_out_dir(cfg.out, "rank", overwrite=cfg.overwrite), dist)
    specs = [str(s) for s in cfg.world_models]
    report = rank_and_report(cfg, out, specs, cfg.baseline, timings={}, sharding=sharding)
    if report is not None:
        print(f"\n{summary_text(report, out)}")
    return report or {}


def rank_recorded_and_report(cfg: DictConfig) -> dict[str, Any]:
    """Recorded behaviours of `data` replayed in each world model -> report.json (+ report.md)."""
    from wmeval.data.sources import load_data
    from wmeval.io import to_json_safe, write_json
    from wmeval.rank_recorded import JUDGE, rank_recorded
    from wmeval.report.ranking import FIDELITY_KEYS, world_model_info

    started = time.perf_counter()
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
    name = next(iter(blocks))
    first = blocks[name]
    report = {
        "mode": "recorded",
        "ranking": {**first["ranking"], "judge": JUDGE},
        "world_model": world_model_info(name, models[name]),
        "baselines": {k: {f: v[f] for f in FIDELITY_KEYS} for k, v in first["references"].items()},
        "recorded": blocks,
        "data": str(cfg.data),
        "group_by": str(cfg.group_by),
        "timings_s": {"rank": time.perf_counter() - started, "total": time.perf_counter() - started},
        "seed": int(cfg.seed),
    }
    report = to_json_safe(report)
    write_json(out / "config.json", to_json_safe(OmegaConf.to_container(cfg, resolve=True)))
    write_json(out / "report.json", report)
    write_text(out / "report.md", _recorded_markdown(report))
    print(f"ranking written to {out / 'report.json'}")
    return report


def _recorded_markdown(report: dict[str, Any]) -> str:
    rows = [
        f"| {p['name']} | {p['real_success']:.3f} | {p['imagined_success']:.3f} | {p['episodes']} |"
        for p in report["ranking"]["policies"]
    ]
    fid = report["ranking"]
    return "\n".join(
        [
            f"# Recorded behaviours of {report['data']} replayed in {report['world_model']['checkpoint']}",
            "",
            f"Grouped by {report['group_by']}; {fid['judge']}.",
            "",
            "| group | recorded success | imagined success | episodes |",
            "| --- | --- | --- | --- |",
            *rows,
            "",
            f"Spearman {fid['spearman']}, Kendall {fid['kendall']}, Pearson {fid['pearson']}, MMRV {fid['mmrv']}.",
            f"References (same fidelity numbers): {report['baselines']}.",
            "",
        ]
    )
