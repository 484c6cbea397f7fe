"""Turn a `RankResult` into the stable `report.json` schema plus the human-facing files beside it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from wmeval.io import to_json_safe, write_json
from wmeval.provenance import in_training_data, training_data
from wmeval.ranking.fidelity import FIDELITY_KEYS, fidelity_blocks
from wmeval.ranking.run import BASELINE, Ranking, RankResult
from wmeval.report import plots
from wmeval.report.episodes import REAL, episodes_from_rollouts
from wmeval.report.eval_info import write_eval_infos
from wmeval.report.markdown import write_report
from wmeval.report.video import write_episode_videos
from worldmodel.encoders.precision import dtype_name


def world_model_info(name: str, wm: Any) -> dict[str, str]:
    """What the report says about a world model: where it came from and what it is made of."""
    config = getattr(wm, "config", None)
    if name == BASELINE or not hasattr(config, "encoder"):
        return {
            "checkpoint": name,
            "encoder": "none",
            "adapter": "none",
            "dit": "none (copies the last frame)",
        }
    dit = config.dit
    render = wm.encoder.render_dtype  # the numbers can depend on it: say it
    rendering = f", rendering in {dtype_name(render)}" if render is not None else ""
    return {
        "checkpoint": str(config.meta.get("checkpoint", name)),
        "encoder": f"{config.encoder.get('type')} {config.encoder}{rendering}",
        "adapter": str(config.adapter.get("type")),
        "dit": f"{dit.get('size')} (hidden {dit['hidden_size']}, depth {dit['depth']}, heads {dit['num_heads']}, "
        f"window {dit['max_frames']} frames, {config.sim_steps_per_frame} sim steps per frame)",
    }


def build_report(
    result: RankResult,
    world_models: dict[str, Any],
    outcome: str,
    seed: int,
    timings: dict[str, float],
    policy_sets: dict[str, list[str]] | None = None,
    n_boot: int = 0,
) -> dict[str, Any]:
    """The stable schema: one headline `ranking` block (first world model, every ranked policy) plus every
    other block; `training_data` and per-policy `in_training_data` say which ranked behaviours trained each
    world model, and `policy_sets` gives the fidelity of each set of policies (family, held-out) on its own."""
    models = [n for n in world_models if n != BASELINE]
    headline = models[0]
    training = {n: training_data(world_models[n]) for n in models}
    for name, blocks in result.blocks.items():
        for block in blocks.values():
            for entry in block["policies"]:
                entry["in_training_data"] = in_training_data(entry["name"], training.get(name))
    report: dict[str, Any] = {
        "ranking": result.blocks[headline][outcome],
        "world_model": world_model_info(headline, world_models[headline]),
        "training_data": training,
        "baselines": {},
        "timings_s": {"record": 0.0, "train": 0.0, "rank": 0.0, "total": 0.0, **timings},
        "seed": seed,
        "outcome": outcome,
        "outcomes": {name: blocks for name, blocks in result.blocks.items()},
        "rollout_timings_s": result.timings_s,
        "sharding": result.sharding,  # world_size, local workers and how the units were split
        "judge_readability": result.readability,
    }
    if policy_sets and len(policy_sets) > 1:
        report["policy_sets"] = {
            set_name: {
                "policies": names,
                "in_training_data": {n: any(in_training_data(p, training[n]) for p in names) for n in models},
                "fidelity": {
                    n: {k: b[outcome][k] for k in (*FIDELITY_KEYS, "ci95")}
                    for n, b in fidelity_blocks(result, names, n_boot=n_boot, seed=seed).items()
                },
            }
            for set_name, names in policy_sets.items()
        }
    if BASELINE in result.blocks:
        report["baselines"][BASELINE] = {k: result.blocks[BASELINE][outcome][k] for k in FIDELITY_KEYS}
    if len(models) > 1:
        report["world_models"] = {
            n: {"ranking": result.blocks[n][outcome], "world_model": world_model_info(n, world_models[n])}
            for n in models
        }
    return report


def write_ranking_outputs(
    out: Path,
    ranking: Ranking,
    timings: dict[str, float],
    started: float,
    command_config: dict[str, Any],
) -> dict[str, Any]:
    """Real | imagined MP4s of the first `videos` episodes per policy under `videos/`, lerobot-eval's
    `eval_info` per world and policy under `eval_info/`, plots, with `save_rollouts` every rollout as a
    LeRobotDataset per world under `rollouts/`, rollouts.rrd; then, once the total time (since `started`, a
    `time.perf_counter()`) is known, the resolved config, `report.json` (and its alias `ranking.json`) and
    report.md/html. The report is written last and once, so its presence means the run finished."""
    result, world_models, cfg = ranking.result, ranking.world_models, ranking.cfg
    report = build_report(
        result,
        world_models,
        cfg.outcome,
        cfg.seed,
        timings,
        policy_sets=ranking.policy_sets,
        n_boot=cfg.n_boot,
    )
    videos = {}
    if cfg.videos:
        videos = write_episode_videos(
            out, episodes_from_rollouts(result.real, result.imagined, per_policy=cfg.videos), result.fps
        )
    write_eval_infos(out, {REAL: result.real, **result.imagined}, cfg.env, videos)

    views = episodes_from_rollouts(result.real, result.imagined, per_policy=cfg.rerun_episodes)
    figures = {
        "imagined vs real success": plots.success_scatter(
            out / "scatter.png",
            {name: blocks[cfg.outcome] for name, blocks in result.blocks.items()},
            label=f"{cfg.outcome} success rate",
        ),
        "coverage over time": plots.success_curves(
            out / "curves.png",
            plots.curves_from_episodes(
                episodes_from_rollouts(result.real, result.imagined, per_policy=int(cfg.episodes))
            ),
        ),
        "real vs imagined frames": plots.frame_grid(out / "frames.png", views),
    }
    if cfg.save_rollouts:
        from wmeval.data.rollout_datasets import save_rank_rollouts

        saved = save_rank_rollouts(  # not the baseline's: its frames are the start frame, repeated
            out / "rollouts",
            result.real,
            {n: r for n, r in result.imagined.items() if n != BASELINE},
            checkpoints={n: str(getattr(wm, "directory", None) or n) for n, wm in world_models.items()},
            judges={"real": result.real_judge, "imagined": result.judge},
            env=cfg.env,
            seed=cfg.seed,
            fps=result.fps,
            progress=cfg.progress,
        )
        print("rollouts saved as LeRobotDatasets: " + ", ".join(str(p) for p in saved.values()))
    if cfg.rerun == "save":
        from wmeval.report.rerun import log_rollouts

        log_rollouts(out / "rollouts.rrd", views)

    report["timings_s"]["total"] = time.perf_counter() - started
    report = to_json_safe(report)
    write_json(out / "config.json", to_json_safe({**command_config, "episodes": cfg.episodes}))
    write_json(out / "report.json", report)
    write_json(out / "ranking.json", report)
    write_report(out, report, figures)

    if cfg.rerun in ("spawn", "serve"):
        from wmeval.report.rerun import log_rollouts, open_recording

        with open_recording(cfg.rerun) as session:
            log_rollouts(session.stream, views)
            print(f"rollouts in Rerun at {session.url} (Ctrl-C to stop)")
            session.wait()
    return report
