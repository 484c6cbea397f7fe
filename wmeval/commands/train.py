"""`wmeval train`: LeRobotDataset -> latent cache -> DiT world model (CPU, one GPU, or torchrun DDP).

Any trained adapter plugs in with `adapter.pretrained=DIR` (frozen; the DiT models its latents). Several cameras
(`camera_keys=[a,b]`) are encoded one cache per camera and laid side by side along the grid width for a
multi-view DiT; `init_from=` starts from another run's matching weights (e.g. single-view -> multi-view) and
`optim.freeze_backbone_steps` holds the transformer blocks still while the rest adapts.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from wmeval.data.sources import camera_list, layout_from_config, load_data
from wmeval.errors import ConfigError, WmevalError
from wmeval.io import prepare_out_dir, resume_out_dir, write_json
from wmeval.logs import attach_run_log
from wmeval.metrics.open_loop import open_loop_psnr, open_loop_rollouts, open_loop_state_errors
from wmeval.provenance import policies_in
from wmeval.report.video import write_side_by_side_gif
from wmeval.train_logging import LOSS_CURVE, make_tracker, write_loss_curve
from worldmodel import WorldModel, WorldModelConfig
from worldmodel.adapters import Adapter, build_adapter, load_adapter
from worldmodel.data.clips import ClipSampler, ClipSpec
from worldmodel.data.latent_cache import LatentCache, build_latent_cache
from worldmodel.data.views import adapt_latents, channel_stats, concat_views
from worldmodel.dit import DIT_SIZES, DiT, DiTConfig
from worldmodel.encoders import load_encoder
from worldmodel.errors import WorldModelError
from worldmodel.objectives import build_objective, objective_config
from worldmodel.reading import read_json
from worldmodel.rigid import check_rigid_groups
from worldmodel.training import TrainConfig, cleanup_distributed, on_main, setup_distributed, train
from worldmodel.training.checkpoint import checkpoints
from worldmodel.training.init_from import load_matching_weights
from worldmodel.world_model import CONFIG_NAME

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict[str, Any]:
    started = time.perf_counter()
    dist = setup_distributed(cfg.device)
    try:
        result = _run(cfg, dist, started)
    except BaseException:
        cleanup_distributed(wait_for_peers=False)
        raise
    cleanup_distributed()
    return result


def _run(cfg: DictConfig, dist, started: float) -> dict[str, Any]:  # noqa: ANN001
    # bad clip settings fail before any encoding or training
    spec = ClipSpec(**OmegaConf.to_container(cfg.clips, resolve=True))
    if cfg.dit.size not in DIT_SIZES:
        raise ConfigError(f"dit.size={cfg.dit.size!r} is unknown: choose one of {', '.join(DIT_SIZES)}")
    check_rigid_groups(cfg.rigid_groups, bool(cfg.dit.token_geometry), None)  # before anything is written
    out = _out_dir(cfg, dist)
    attach_run_log(out)  # also on resume, which reuses out= as it is
    tracker = (
        make_tracker(
            cfg.logger, out, OmegaConf.to_container(cfg, resolve=True), OmegaConf.to_container(cfg.wandb)
        )
        if dist.is_main
        else None
    )
    torch.manual_seed(cfg.seed)
    cameras = camera_list(cfg)
    train_eps, heldout = load_split(cfg)

    encoder_cfg = OmegaConf.to_container(cfg.encoder, resolve=True)
    encoder = load_encoder(**encoder_cfg).to(dist.device)
    adapter = _adapter(cfg, encoder).to(dist.device)
    tokens = int(np.prod(encoder.latent_shape[:2]))
    check_rigid_groups(cfg.rigid_groups, True, tokens)  # the indices, before the latent cache is built
    caches = [_latent_cache(cfg, out, train_eps, encoder, dist, camera, len(cameras)) for camera in cameras]
    latents, mean, std, stats_from = _dit_latents(caches, adapter)

    layout = layout_from_config(cfg, np.concatenate([ep["actions"] for ep in train_eps]))
    sampler = ClipSampler(
        latents, spec, layout.offset, layout.scale, seed=cfg.seed * 1000 + dist.rank, layout=layout
    )
    h, w, _ = encoder.latent_shape
    dit_cfg = OmegaConf.to_container(cfg.dit, resolve=True)
    # The inference window defaults to the training clip (paper: max_frames = n_frames): a longer window puts
    # the model at temporal offsets it never trained on (measured on PushT: -2.3 dB PSNR at frame 12, and an
    # untouched block drifting twice as far over 30 closed-loop frames).
    if dit_cfg["max_frames"] is None:
        dit_cfg["max_frames"] = spec.n_frames
    if dit_cfg["max_frames"] < spec.n_frames:
        raise WmevalError(f"dit.max_frames={dit_cfg['max_frames']} must be >= clips.n_frames={spec.n_frames}")
    if dit_cfg.get("token_geometry"):  # geometry reads positions in frame units: un-normalised with these
        dit_cfg["position_mean"], dit_cfg["position_std"] = mean[:2].tolist(), std[:2].tolist()
    dit_config = DiTConfig.from_size(
        in_channels=adapter.latent_dim,
        grid=(h, w),
        action_dim=sampler.action_dim,
        num_views=len(cameras),
        **dit_cfg,
    )
    rows, cols = dit_config.tokens_grid
    groups = [[int(i) for i in g] for g in cfg.rigid_groups]
    objective = build_objective(
        OmegaConf.to_container(cfg.objective, resolve=True), rows * cols, adapter.latent_dim
    )
    wm_config = WorldModelConfig(
        encoder=encoder.get_config(),
        adapter=adapter.get_config(),
        dit=dit_config.to_dict(),
        objective=objective_config(objective),
        latent_mean=mean.tolist(),
        latent_std=std.tolist(),
        action_offset=layout.offset,
        action_scale=layout.scale,
        sim_steps_per_frame=spec.sim_steps_per_frame,
        action_mode=spec.action_mode,
        fps=float(train_eps[0].get("fps", 10.0)),
        action_layout=layout.to_dict(),
        rigid_groups=groups,
    )
    model = DiT(dit_config)
    init = _init_from(cfg, model, out)
    extra = {"camera_keys": cameras, "card": cfg.card, "latent_stats_from": stats_from, "init_from": init}

    state_reader = _state_reader(cfg.eval.state_reader) if len(cameras) == 1 else None

    def on_checkpoint(step: int, ema: torch.nn.Module, history: dict[str, Any]) -> dict[str, Any]:
        """Held-out open-loop PSNR (with the copy-last baseline), a sample GIF, and `model/` = this EMA snapshot."""
        wm = WorldModel(wm_config, encoder, adapter, ema).eval()
        metrics: dict[str, Any] = {}
        # a semantic encoder (siglip2, webssl, ...) without an adapter's pixel decoder trains in latent space
        # only: there are no frames to compare, so the held-out pixel evaluation is skipped
        if heldout and (adapter.has_pixel_decoder or encoder.has_decoder):
            rollouts = open_loop_rollouts(
                wm, heldout[: cfg.eval.episodes], cfg.eval.horizon, cfg.eval.num_steps, cfg.seed
            )
            write_side_by_side_gif(
                out / "samples" / f"step_{step:08d}.gif", rollouts["real"], rollouts["imagined"]
            )
            metrics = open_loop_psnr(rollouts)
            if state_reader is not None:
                metrics.update(open_loop_state_errors(rollouts, state_reader))
        wm_config.meta = {**_manifest(cfg, dist, train_eps, heldout, step, history, metrics), **extra}
        before = (init or {}).get("trained_before") or {}
        wm_config.meta["total_steps"] = step + before.get("total_steps", 0)
        earlier = before.get("training_policies") or []  # a warm start also learnt its source's data
        wm_config.meta["training_policies"] = sorted({*wm_config.meta["training_policies"], *earlier})
        wm.save_pretrained(out / "model")
        write_loss_curve(out / LOSS_CURVE, history["loss"], [*history["evals"], {"step": step, **metrics}])
        if tracker is not None:
            tracker.log(step, {f"heldout/{k}": v for k, v in metrics.items()})
        scalars = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float))
        loss = history["loss"][-1][1] if history["loss"] else float("nan")  # none yet when log_every > step
        log.info("step %d: loss %.4g; held-out: %s", step, loss, scalars or "not measured")
        return metrics

    train_config = TrainConfig(seed=cfg.seed, **OmegaConf.to_container(cfg.optim, resolve=True))
    try:
        summary = train(
            model, objective, sampler, train_config, out, dist, on_checkpoint, on_log=tracker and tracker.log
        )
    finally:
        if tracker is not None:
            tracker.close()
    if not dist.is_main:
        return summary
    summary.pop("ema")
    summary["total_s"] = time.perf_counter() - started
    summary.update(extra)
    write_json(out / "train_summary.json", summary)
    print(
        f"world model saved to {out / 'model'}; held-out: {summary['evals'][-1] if summary['evals'] else None}"
    )
    return summary


def _manifest(cfg, dist, train_eps, heldout, step, history, metrics) -> dict[str, Any]:  # noqa: ANN001
    """What made this snapshot: data, steps, wall time, device, losses, held-out metrics, the full config."""
    import platform

    return {
        "data": str(cfg.data),
        "train_episodes": len(train_eps),
        "heldout_episodes": len(heldout),
        "training_policies": policies_in(train_eps + heldout),  # held-out episodes are the same behaviours
        "steps": step,
        "wall_s": history.get("wall_s"),
        "device": str(dist.device),
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "processes": dist.world_size,
        "loss": history["loss"][-1][1] if history["loss"] else None,
        "heldout": metrics,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


def load_split(cfg: DictConfig, load_cfg: DictConfig | None = None) -> tuple[list[dict], list[dict]]:
    """(train, held-out) episodes with frames; only the ones used are decoded, so `max_train_episodes` keeps a
    large recording's frames out of memory."""
    load_cfg = cfg if load_cfg is None else load_cfg
    cap = cfg.max_train_episodes
    if cap is not None and int(cap) < 1:
        raise ConfigError(f"max_train_episodes={cap} must be positive, or null for every training episode")
    index = load_data(load_cfg, with_frames=False, progress=False)
    train_idx, held_idx = split_episodes(index, int(cfg.heldout_episodes), int(cfg.seed))
    train_idx = train_idx if cap is None else train_idx[: int(cap)]
    wanted = [int(e["episode_index"]) for e in (*train_idx, *held_idx)]
    loaded = {
        e["episode_index"]: e
        for e in load_data(load_cfg, episodes=wanted, progress=bool(cfg.get("progress", True)))
    }
    return [loaded[e["episode_index"]] for e in train_idx], [loaded[e["episode_index"]] for e in held_idx]


def split_episodes(episodes: list[dict], heldout: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Seeded shuffle, then the last `heldout` episodes are held out (at least one stays for training)."""
    if len(episodes) <= heldout:
        raise WmevalError(
            f"data has {len(episodes)} episodes but heldout_episodes={heldout}: record more or lower heldout_episodes"
        )
    order = np.random.default_rng(seed).permutation(len(episodes))
    chosen = [episodes[i] for i in order]
    return chosen[: len(chosen) - heldout], chosen[len(chosen) - heldout :]


def _state_reader(name: str | None):  # noqa: ANN202
    """Held-out pose errors need a task's state reader (frames -> state): its frame judge's."""
    if name is None:
        return None
    from wmeval.envs.registry import get_task

    return get_task(name, key="eval.state_reader").judge().state_reader


def _out_dir(cfg: DictConfig, dist) -> Path:  # noqa: ANN001
    """The run folder, prepared by rank 0 alone; under torchrun the other processes get its path."""
    if cfg.resume:
        return on_main(lambda: resume_out_dir(cfg.out), dist)
    return on_main(lambda: prepare_out_dir(cfg.out, "train", overwrite=cfg.overwrite), dist)


def _adapter(cfg: DictConfig, encoder) -> Adapter:  # noqa: ANN001
    """The frozen adapter: loaded from `adapter.pretrained` (any family), or a fresh identity."""
    in_dim = encoder.latent_shape[-1]
    if cfg.adapter.get("pretrained"):
        adapter = load_adapter(cfg.adapter.pretrained).requires_grad_(False)
        if getattr(adapter, "in_dim", in_dim) != in_dim:
            raise WmevalError(
                f"adapter.pretrained={cfg.adapter.pretrained} maps {adapter.in_dim}-d latents but encoder "
                f"'{encoder.name}' makes {in_dim}-d ones: train the adapter on this encoder (wmeval train-adapter)"
            )
        if adapter.has_pixel_decoder:
            size = tuple(adapter.pixel_decoder.output_size)
            if size != tuple(encoder.image_size):
                raise WmevalError(
                    f"adapter.pretrained={cfg.adapter.pretrained} decodes {size} frames but the encoder works at "
                    f"{tuple(encoder.image_size)}: retrain the adapter with this encoder"
                )
        return adapter
    if cfg.adapter.type != "identity":
        raise WmevalError(
            f"adapter '{cfg.adapter.type}' must be trained first (wmeval train-adapter): pass adapter.pretrained=DIR"
        )
    return build_adapter("identity", in_dim=in_dim)


def _dit_latents(
    caches: list[LatentCache], adapter: Adapter
) -> tuple[list[dict], np.ndarray, np.ndarray, str]:
    """Per training episode: every view's latents through the adapter, side by side, normalised.

    Statistics come from the adapter when it measured them (one scale for every DiT on that adapter), else from
    the training latents themselves (identity: the caches' own statistics).
    """
    identity = adapter.name == "identity"
    per_view = [cache.load_all() for cache in caches]
    episodes = []
    for views in zip(*per_view, strict=True):
        grids = [v["latents"] if identity else adapt_latents(adapter, v["latents"]) for v in views]
        episodes.append({"latents": concat_views(grids), "actions": views[0]["actions"]})
    stats = adapter.latent_statistics()
    if stats is not None:
        mean, std, source = stats[0].cpu().numpy(), stats[1].cpu().numpy(), "adapter"
    elif identity and len(caches) == 1:
        mean, std, source = caches[0].latent_mean, caches[0].latent_std, "latent cache"
    elif identity:  # equal token counts per view: pool the caches' moments
        mean = np.mean([c.latent_mean for c in caches], axis=0)
        second = np.mean([c.latent_std.astype(np.float64) ** 2 + c.latent_mean**2 for c in caches], axis=0)
        std, source = np.sqrt(np.maximum(second - mean**2, 0.0)), "latent cache"
    else:
        mean, std = channel_stats([ep["latents"] for ep in episodes])
        source = "training latents"
    mean, std = mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32)
    for ep in episodes:
        ep["latents"] = (ep["latents"] - mean) / std
    return episodes, mean, std, source


def _init_from(cfg: DictConfig, model: DiT, out: Path) -> dict[str, Any] | None:
    """Load matching weights from `init_from` into a fresh run (a resumed run restores its own checkpoint)."""
    if checkpoints(out / "checkpoints"):
        # the warm start's lineage stays what the run's first snapshot recorded, whether or not the resume
        # passes init_from again and whatever its source is now
        first = _read_meta(out / "model" / CONFIG_NAME).get("init_from")
        return {**first, "note": "not applied: resumed from this run's own checkpoint"} if first else None
    if not cfg.init_from:
        return None
    try:
        report = load_matching_weights(model, cfg.init_from)
    except WorldModelError as err:
        raise WmevalError(str(err)) from err
    report["trained_before"] = _lineage(Path(report["source"]).parent / CONFIG_NAME)
    skipped = report["skipped_shape"] + report["missing_in_source"]
    log.info(
        f"init_from: loaded {report['loaded']} tensors from {report['source']}; "
        f"kept fresh: {', '.join(skipped) if skipped else 'none'}"
    )
    return report


def _lineage(config_path: Path) -> dict[str, Any] | None:
    """How the warm-start source was trained (steps, data, wall time, and its own source in turn), so that a
    continued model's manifest still says everything that made it; None when the source has no manifest."""
    meta = _read_meta(config_path)
    if not isinstance(meta.get("steps"), int):
        return None
    before = (meta.get("init_from") or {}).get("trained_before")
    return {
        "steps": meta["steps"],
        "total_steps": meta["steps"] + (before or {}).get("total_steps", 0),
        "data": meta.get("data"),
        "training_policies": meta.get("training_policies"),
        "wall_s": meta.get("wall_s"),
        "trained_before": before,
    }


def _read_meta(config_path: Path) -> dict[str, Any]:
    """The training manifest (`meta`) of a saved world model's config; empty when there is none."""
    if not config_path.is_file():
        return {}
    fix = "re-export that model (WorldModel.save_pretrained) or point init_from at another run"
    return read_json(config_path, fix).get("meta") or {}


def _latent_cache(cfg: DictConfig, out: Path, episodes: list[dict], encoder, dist, camera: str, views: int):  # noqa: ANN001, ANN202
    """Encode one camera once (main process); reuse an existing cache only when the same encoder and camera made it."""
    path = Path(cfg.cache) if cfg.cache else out / "latents.h5"
    if views > 1:
        index = [str(k) for k in cfg.camera_keys].index(camera)
        path = path.with_name(f"{path.stem}_view{index}{path.suffix}")
    if dist.is_main and not path.exists():
        view_eps = [{**ep, "frames": ep["camera_frames"][camera]} for ep in episodes]
        build_latent_cache(path, view_eps, encoder, metadata={"data": str(cfg.data), "camera": camera})
    if dist.world_size > 1:
        torch.distributed.barrier()
    cache = LatentCache(path, expected_encoder_config=encoder)
    if cache.metadata.get("camera", camera) != camera:
        raise WmevalError(
            f"latent cache {path} was made from camera {cache.metadata['camera']!r}, not {camera!r}: "
            "delete it or point cache= elsewhere"
        )
    if len(cache) != len(episodes):
        raise WmevalError(
            f"latent cache {path} holds {len(cache)} episodes but the training split has {len(episodes)}: "
            "delete it or point cache= elsewhere"
        )
    return cache
