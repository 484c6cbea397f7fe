"""`wmeval metrics`: video, PCK, PushT state, controllability, IDM and success-probe metrics of a world model.

Every metric runs on the same held-out episodes and the same open-loop rollouts (recorded actions replayed
from `context` real frames), and every number sits beside its baseline. Output: `metrics.json` (one block per
metric: values, baseline, settings, what it ran on) and horizon curves as PNG.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from wmeval.data.sources import load_data
from wmeval.errors import ConfigError
from wmeval.io import prepare_out_dir, to_json_safe, write_json
from wmeval.metrics.heldout import EvalSet, build_eval_set, frame_actions
from wmeval.shipped import shipped_path
from worldmodel import WorldModel

log = logging.getLogger(__name__)

KNOWN = ("video", "pck", "state", "controllability", "idm", "probe")
BASELINES = {
    "copy_last": "the last real context frame held for the whole horizon (a model that predicts no change)",
    "reconstruction": "encode -> decode of the real frames: the ceiling no world model on this encoder can beat",
}


def run(cfg: DictConfig) -> dict[str, Any]:
    started = time.perf_counter()
    wanted = [str(m) for m in cfg.metrics]
    unknown = [m for m in wanted if m not in KNOWN]
    if unknown or not wanted:
        raise ConfigError(f"metrics={wanted} has unknown or no entries: choose from {', '.join(KNOWN)}")
    if cfg.episodes < 1 or cfg.horizon < 1 or cfg.context < 1:
        raise ConfigError("episodes, horizon and context must all be >= 1")
    if len(cfg.world_models) != 1:
        raise ConfigError(
            f"world_models={list(cfg.world_models)}: metrics measures one world model: pass world_models=[DIR]"
        )
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    device = str(cfg.device)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(cfg.seed)
    spec = str(cfg.world_models[0])
    wm_path = shipped_path(spec)
    wm = WorldModel.from_pretrained(wm_path, device=device)
    out = prepare_out_dir(cfg.out, "metrics", overwrite=cfg.overwrite)
    episodes = load_data(
        cfg, progress=cfg.progress
    )  # several cameras: views side by side, as the model takes them
    data = build_eval_set(
        wm,
        episodes,
        data=cfg.data,
        count=int(cfg.episodes),
        horizon=int(cfg.horizon),
        context=int(cfg.context),
        heldout=cfg.heldout,
        with_train=any(m in wanted for m in ("idm", "probe")),
        num_steps=cfg.num_steps,
        seed=int(cfg.seed),
        batch_size=int(cfg.batch_size),
        progress=cfg.progress,
    )
    report: dict[str, Any] = {"run": _run_info(cfg, wm_path, wm, data, device), "metrics": {}}
    plots: dict[str, str] = {}
    for name in wanted:
        t0 = time.perf_counter()
        block = BLOCKS[name](cfg, wm, data, device)
        block["seconds"] = round(time.perf_counter() - t0, 3)
        log.info("metrics: %s done in %.1f s", name, block["seconds"])
        report["metrics"][name] = block
        plots.update(_plots(out, name, block, data.horizon))
    report["plots"] = plots
    report["run"]["seconds"] = round(time.perf_counter() - started, 3)
    write_json(out / "metrics.json", to_json_safe(report))
    print(f"metrics written to {out / 'metrics.json'}")
    return report


def _run_info(cfg: DictConfig, path: Path, wm: WorldModel, data: EvalSet, device: str) -> dict[str, Any]:
    return {
        "world_model": {
            "path": str(path),
            "encoder": wm.config.encoder,
            "dit": {k: wm.config.dit.get(k) for k in ("size", "hidden_size", "depth", "max_frames")},
            "objective": wm.config.objective,
            "sim_steps_per_frame": wm.config.sim_steps_per_frame,
            "action_mode": wm.config.action_mode,
            "image_size": list(wm.image_size),
        },
        "data": str(cfg.data),
        "split": data.split,
        "episodes": [int(ep["episode_index"]) for ep in data.heldout],
        "train_episodes": len(data.train),
        "horizon": data.horizon,
        "horizon_requested": int(cfg.horizon),
        "context": data.context,
        "num_steps": cfg.num_steps,
        "seed": int(cfg.seed),
        "device": device,
        "baselines": BASELINES,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


def _ran_on(data: EvalSet) -> dict[str, Any]:
    return {
        "episodes": len(data.heldout),
        "horizon": data.horizon,
        "context": data.context,
        "frames_after_context": len(data.heldout) * data.horizon,
    }


# ---- one function per metric block ---------------------------------------------------------------------------


def _video(cfg: DictConfig, wm: WorldModel, data: EvalSet, device: str) -> dict[str, Any]:
    from wmeval.metrics.video import VideoConfig, video_fidelity

    c = data.context
    vcfg = VideoConfig(
        metrics=list(cfg.video.metrics),
        weights={k: v for k, v in OmegaConf.to_container(cfg.video.weights, resolve=True).items() if v},
        fvd_frames=int(cfg.video.fvd_frames),
        batch_size=int(cfg.video.batch_size),
        device=device,
    )
    gens = {name: v[:, c:] for name, v in data.videos.items()}
    values = video_fidelity(data.real[:, c:], gens, vcfg, progress=cfg.progress)
    if isinstance(
        values.get("psnr"), dict
    ):  # identical frames: say "inf", which strict JSON cannot hold as a number
        values["psnr"] = _inf_as_text(values["psnr"])
    return {
        "values": values,
        "baseline": {k: BASELINES[k] for k in ("copy_last", "reconstruction")},
        "settings": {
            "resolution": list(wm.image_size),
            "frames": "after the context",
            "psnr": "mean of per-frame PSNR, each capped at 48.1 dB (one grey level of error at every pixel); "
            "'inf' only when every frame is identical; `pooled`: PSNR of the mean squared error over all frames",
        },
        "ran_on": _ran_on(data),
    }


def _pck(cfg: DictConfig, wm: WorldModel, data: EvalSet, device: str) -> dict[str, Any]:
    from wmeval.metrics.pck import PCKConfig, pck

    pcfg = PCKConfig(
        grid=int(cfg.pck.grid),
        margin=float(cfg.pck.margin),
        thresholds=[float(t) for t in cfg.pck.thresholds],
        tracker=str(cfg.pck.tracker),
    )
    to_u8 = lambda v: np.round(np.clip(v, 0, 1) * 255).astype(np.uint8).transpose(0, 1, 3, 4, 2)  # noqa: E731
    videos = {name: to_u8(data.videos[name]) for name in ("model", "copy_last")}
    block = pck(to_u8(data.real), videos, data.context, pcfg, device, progress=cfg.progress)
    return {
        **block,
        "baseline": {"copy_last": BASELINES["copy_last"]},
        "settings": {"grid": pcfg.grid, "margin": pcfg.margin, "thresholds_at_256px": pcfg.thresholds},
        "ran_on": _ran_on(data),
    }


def _state(cfg: DictConfig, wm: WorldModel, data: EvalSet, device: str) -> dict[str, Any]:
    from wmeval.metrics.contact_step import contact_step
    from wmeval.metrics.state import load_reader, state_errors

    k, span = wm.config.sim_steps_per_frame, data.context + data.horizon
    if any(ep.get("states") is None or ep["states"].shape[-1] != 5 for ep in data.heldout):
        return {
            "values": "unavailable: the dataset has no PushT state [agent x, y, block x, y, theta] per step"
        }
    reader, where = load_reader(str(cfg.state.env), cfg.state.estimator)
    if reader is None:
        return {"values": where}
    states = np.stack([ep["states"][: span * k : k] for ep in data.heldout]).astype(np.float64)
    videos = {
        "model": data.videos["model"],
        "copy_last": data.videos["copy_last"],
        "real_frames": data.real,
    }
    block = state_errors(
        reader,
        states,
        videos,
        data.context,
        min_px=float(cfg.state.push_min_px),
        min_deg=float(cfg.state.push_min_deg),
    )
    block["baseline"] = {
        "copy_last": BASELINES["copy_last"],
        "real_frames": "the estimator on the real frames (same resizing): the floor of the read-out itself",
    }
    block["settings"]["estimator"] = where
    block["contact_step"] = contact_step(
        wm,
        reader,
        data.heldout,
        data.context,
        min_px=float(cfg.state.contact_min_px),
        seed=int(cfg.seed),
        num_steps=cfg.num_steps,
    )
    block["ran_on"] = _ran_on(data)
    return block


def _controllability(cfg: DictConfig, wm: WorldModel, data: EvalSet, device: str) -> dict[str, Any]:
    from wmeval.metrics.controllability import ControllabilityConfig, controllability, sample_windows
    from wmeval.metrics.imagine import world_model_predictor

    options = OmegaConf.to_container(cfg.controllability, resolve=True)
    ccfg = ControllabilityConfig(**{**options, "seed": int(cfg.seed)})
    ccfg.action_range, ccfg.search_box = tuple(ccfg.action_range), tuple(ccfg.search_box)
    actions = [
        frame_actions(wm, ep["actions"], len(z)) for ep, z in zip(data.heldout, data.latents, strict=True)
    ]
    windows = sample_windows(
        data.latents, actions, ccfg.windows, ccfg.context_frames, max(ccfg.ks), int(cfg.seed)
    )
    windows.context, windows.targets, windows.actions = (
        x.to(device) for x in (windows.context, windows.targets, windows.actions)
    )
    block = controllability(world_model_predictor(wm, cfg.num_steps), windows, ccfg, progress=cfg.progress)
    block["baseline"] = {
        "random_action": "a uniformly random action in action_range: its action error and latent error",
        "copy_last_latent_mse": "the last context latent as the prediction",
        "floor_latent_mse_true_action": "the model's own latent error under the true actions (same noise)",
    }
    block["ran_on"] = {
        "windows": len(windows.where),
        "episodes": len(data.heldout),
        "from": "whole held-out episodes",
    }
    return block


def _idm(cfg: DictConfig, wm: WorldModel, data: EvalSet, device: str) -> dict[str, Any]:
    from wmeval.metrics.idm import IDMConfig, idm_recoverability

    options = {k: v for k, v in OmegaConf.to_container(cfg.idm, resolve=True).items() if k != "ks"}
    icfg = IDMConfig(**options, seed=int(cfg.seed))
    train_actions = [
        frame_actions(wm, ep["actions"], len(z)) for ep, z in zip(data.train, data.train_latents, strict=True)
    ]
    span = data.context + data.horizon
    actions = [frame_actions(wm, ep["actions"], span) for ep in data.heldout]
    block = idm_recoverability(
        (data.train_latents, train_actions),
        data.real_seq,
        data.imagined_seq,
        actions,
        ks=[int(k) for k in cfg.idm.ks],
        context=data.context,
        cfg=icfg,
        device=device,
        progress=cfg.progress,
    )
    block["baseline"] = {"copy_last": "the IDM on the held context frame (no motion at all)"}
    block["ran_on"] = {**_ran_on(data), "train_episodes": len(data.train)}
    return block


def _probe(cfg: DictConfig, wm: WorldModel, data: EvalSet, device: str) -> dict[str, Any]:
    from wmeval.metrics.success_probe import probe_features, success_probe

    span = data.context + data.horizon
    train = [probe_features(z[:span]) for z in data.train_latents]
    copy = [
        torch.cat(
            (
                z[: data.context],
                z[data.context - 1 : data.context].expand(data.horizon, *z.shape[1:]),
            )
        )
        for z in data.real_seq
    ]
    heldout = {
        "real": [probe_features(z) for z in data.real_seq],
        "world_model": [probe_features(z) for z in data.imagined_seq],
        "copy_last": [probe_features(z) for z in copy],
    }
    block = success_probe(
        train,
        [bool(ep["success"]) for ep in data.train],
        heldout,
        [bool(ep["success"]) for ep in data.heldout],
        C=float(cfg.probe.C),
        train_tasks=[ep["task"] for ep in data.train],
        heldout_tasks=[ep["task"] for ep in data.heldout],
        mismatch_negatives=bool(cfg.probe.mismatch_negatives),
        seed=int(cfg.seed),
    )
    block["baseline"] = {"copy_last": BASELINES["copy_last"], "chance": "balanced accuracy 0.5"}
    block["ran_on"] = {**_ran_on(data), "train_episodes": len(data.train), "frames_per_episode": span}
    return block


def _inf_as_text(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _inf_as_text(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_inf_as_text(v) for v in obj]
    if isinstance(obj, float) and np.isinf(obj):
        return "inf" if obj > 0 else "-inf"
    return obj


BLOCKS: dict[str, Callable[[DictConfig, WorldModel, EvalSet, str], dict[str, Any]]] = {
    "video": _video,
    "pck": _pck,
    "state": _state,
    "controllability": _controllability,
    "idm": _idm,
    "probe": _probe,
}


# ---- horizon curves ----------------------------------------------------------------------------------------------


def _plots(out: Path, name: str, block: dict[str, Any], horizon: int) -> dict[str, str]:
    """PNG curves of the per-step values a block has (none for blocks that are unavailable or not per step)."""
    from wmeval.report.plots import horizon_curve

    steps = np.arange(1, horizon + 1)
    curves: dict[str, tuple[dict[str, Any], str]] = {}
    values = block.get("values")
    if not isinstance(values, dict):
        return {}
    if name == "video":
        for metric in ("psnr", "ssim", "lpips"):
            if isinstance(values.get(metric), dict):
                curves[f"video_{metric}"] = (values[metric]["by_step"], metric.upper())
    elif name == "pck":
        for key in ("pck@10", "coverage"):
            curves[f"pck_{key.replace('@', '')}"] = ({n: v["by_step"][key] for n, v in values.items()}, key)
    elif name == "state":
        curves["state_block_error"] = (
            {n: v["by_step"]["block_px_pushed"] for n, v in values.items()},
            "block error on pushed steps (px of 512)",
        )
    paths = {}
    for key, (series, label) in curves.items():
        series = {n: v for n, v in series.items() if np.isfinite(np.asarray(v, dtype=float)).any()}
        if not series:
            continue
        paths[key] = str(
            horizon_curve(out / f"{key}.png", series, ylabel=label, xlabel="world-model step", steps=steps)
        )
    return paths
