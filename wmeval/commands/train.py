"""`wmeval train`: LeRobotDataset -> latent cache -> DiT world model (CPU, one GPU, or torchrun DDP)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from wmeval.data.lerobot_episodes import load_episodes
from wmeval.errors import WmevalError
from wmeval.io import prepare_out_dir, write_json
from wmeval.metrics.open_loop import open_loop_psnr, open_loop_rollouts
from wmeval.report.video import write_side_by_side_gif
from worldmodel import WorldModel, WorldModelConfig
from worldmodel.adapters import build_adapter, load_adapter
from worldmodel.data.clips import ClipSampler, ClipSpec
from worldmodel.data.latent_cache import LatentCache, build_latent_cache
from worldmodel.dit import DiT, DiTConfig
from worldmodel.encoders import load_encoder
from worldmodel.objectives import build_objective, objective_config
from worldmodel.training import TrainConfig, cleanup_distributed, setup_distributed, train


def run(cfg: DictConfig) -> dict[str, Any]:
    started = time.perf_counter()
    dist = setup_distributed(cfg.device)
    try:
        return _run(cfg, dist, started)
    finally:
        cleanup_distributed()


def _run(cfg: DictConfig, dist, started: float) -> dict[str, Any]:  # noqa: ANN001
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    out = _out_dir(cfg)
    torch.manual_seed(cfg.seed)
    episodes = load_episodes(cfg.data, camera_key=cfg.camera_key, action_key=cfg.action_key)
    train_eps, heldout = split_episodes(episodes, cfg.heldout_episodes, cfg.seed)

    encoder_cfg = OmegaConf.to_container(cfg.encoder, resolve=True)
    encoder = load_encoder(**encoder_cfg).to(dist.device)
    adapter = _adapter(cfg, encoder.latent_shape[-1])
    cache = _latent_cache(cfg, out, train_eps, encoder, dist)
    mean, std = cache.latent_mean, np.maximum(cache.latent_std, 1e-6)
    latents = [{"latents": (ep["latents"] - mean) / std, "actions": ep["actions"]} for ep in cache.load_all()]

    offset, scale = action_normalisation(cfg, np.concatenate([ep["actions"] for ep in train_eps]))
    spec = ClipSpec(**OmegaConf.to_container(cfg.clips, resolve=True))
    sampler = ClipSampler(latents, spec, offset, scale, seed=cfg.seed * 1000 + dist.rank)
    h, w, _ = encoder.latent_shape
    dit_cfg = OmegaConf.to_container(cfg.dit, resolve=True)
    if dit_cfg["max_frames"] < spec.n_frames:
        raise WmevalError(f"dit.max_frames={dit_cfg['max_frames']} must be >= clips.n_frames={spec.n_frames}")
    dit_config = DiTConfig.from_size(
        in_channels=adapter.latent_dim, grid=(h, w), action_dim=sampler.action_dim, **dit_cfg
    )
    objective = build_objective(
        OmegaConf.to_container(cfg.objective, resolve=True),
        h * w // dit_config.patch_size**2,
        adapter.latent_dim,
    )
    wm_config = WorldModelConfig(
        encoder=encoder.get_config(),
        adapter=adapter.get_config(),
        dit=dit_config.to_dict(),
        objective=objective_config(objective),
        latent_mean=mean.tolist(),
        latent_std=std.tolist(),
        action_offset=offset.tolist(),
        action_scale=scale.tolist(),
        sim_steps_per_frame=spec.sim_steps_per_frame,
        fps=float(episodes[0].get("fps", 10.0)),
    )
    model = DiT(dit_config)

    def on_checkpoint(step: int, ema: torch.nn.Module, history: dict[str, Any]) -> dict[str, Any]:
        """Held-out open-loop PSNR (with the copy-last baseline), a sample GIF, and `model/` = this EMA snapshot."""
        wm = WorldModel(wm_config, encoder, adapter, ema).eval()
        metrics: dict[str, Any] = {}
        if heldout:
            rollouts = open_loop_rollouts(
                wm, heldout[: cfg.eval.episodes], cfg.eval.horizon, cfg.eval.num_steps, cfg.seed
            )
            write_side_by_side_gif(
                out / "samples" / f"step_{step:08d}.gif", rollouts["real"], rollouts["imagined"]
            )
            metrics = open_loop_psnr(rollouts)
        wm_config.meta = _manifest(cfg, dist, train_eps, heldout, step, history, metrics)
        wm.save_pretrained(out / "model")
        return metrics

    train_config = TrainConfig(seed=cfg.seed, **OmegaConf.to_container(cfg.optim, resolve=True))
    summary = train(model, objective, sampler, train_config, out, dist, on_checkpoint)
    if not dist.is_main:
        return summary
    summary.pop("ema")
    summary["total_s"] = time.perf_counter() - started
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


def split_episodes(episodes: list[dict], heldout: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Seeded shuffle, then the last `heldout` episodes are held out (at least one stays for training)."""
    if len(episodes) <= heldout:
        raise WmevalError(
            f"data has {len(episodes)} episodes but heldout_episodes={heldout}: record more or lower heldout_episodes"
        )
    order = np.random.default_rng(seed).permutation(len(episodes))
    chosen = [episodes[i] for i in order]
    return chosen[: len(chosen) - heldout], chosen[len(chosen) - heldout :]


def action_normalisation(cfg: DictConfig, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offset/scale mapping raw actions to about [-1, 1]: from the config, else from the data's range."""
    lo, hi = actions.min(axis=0), actions.max(axis=0)
    offset = np.asarray(
        cfg.action_norm.offset if cfg.action_norm.offset is not None else (lo + hi) / 2, np.float32
    )
    scale = np.asarray(
        cfg.action_norm.scale if cfg.action_norm.scale is not None else (hi - lo) / 2, np.float32
    )
    offset, scale = np.broadcast_to(offset, lo.shape).copy(), np.broadcast_to(scale, lo.shape).copy()
    if np.any(scale <= 0):
        raise WmevalError(f"action_norm.scale must be > 0 in every dimension, got {scale.tolist()}")
    return offset, scale


def _out_dir(cfg: DictConfig) -> Path:
    if cfg.resume:
        if cfg.out is None:
            raise WmevalError("resume=true needs out=DIR: the run directory to continue")
        return Path(cfg.out)
    return prepare_out_dir(cfg.out, "train", overwrite=cfg.overwrite)


def _adapter(cfg: DictConfig, in_dim: int):  # noqa: ANN202
    if cfg.adapter.get("pretrained"):
        return load_adapter(cfg.adapter.pretrained)
    options = {
        k: v for k, v in OmegaConf.to_container(cfg.adapter, resolve=True).items() if k != "pretrained"
    }
    if options["type"] != "identity":
        raise WmevalError(f"adapter '{options['type']}' must be trained first: pass adapter.pretrained=DIR")
    return build_adapter(options.pop("type"), in_dim=in_dim)


def _latent_cache(cfg: DictConfig, out: Path, episodes: list[dict], encoder, dist) -> LatentCache:  # noqa: ANN001
    """Encode once (main process); reuse an existing cache only when the same encoder made it."""
    path = Path(cfg.cache) if cfg.cache else out / "latents.h5"
    if dist.is_main and not path.exists():
        build_latent_cache(path, episodes, encoder, metadata={"data": str(cfg.data)})
    if dist.world_size > 1:
        torch.distributed.barrier()
    cache = LatentCache(path, expected_encoder_config=encoder)
    if len(cache) != len(episodes):
        raise WmevalError(
            f"latent cache {path} holds {len(cache)} episodes but the training split has {len(episodes)}: "
            "delete it or point cache= elsewhere"
        )
    return cache
