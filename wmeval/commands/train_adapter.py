"""`wmeval train-adapter`: LeRobotDataset -> encoder latents (cached) -> a trained S-VAE or MLP adapter.

The adapter is trained once per encoder and then frozen under every DiT trained on it:
    wmeval train-adapter data=DS encoder=webssl adapter=svae out=A
    wmeval train data=DS encoder=webssl adapter=svae adapter.pretrained=A/adapter
Held-out episodes (whole episodes, not neighbouring frames) give the reported reconstruction numbers.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from wmeval.commands.train import split_episodes
from wmeval.data.sources import load_data, view_episodes
from wmeval.errors import ConfigError, WmevalError
from wmeval.io import prepare_out_dir, write_json
from worldmodel.data.latent_cache import LatentCache, build_latent_cache
from worldmodel.encoders import load_encoder
from worldmodel.errors import WorldModelError

log = logging.getLogger(__name__)

ARCH_KEYS = ("latent_dim", "num_layers", "num_heads", "ffn_dim", "output_norm", "pixel_decoder")


def run(cfg: DictConfig) -> dict[str, Any]:
    started = time.perf_counter()
    kind = str(cfg.adapter.type)
    if kind not in ("svae", "mlp"):
        raise ConfigError(f"adapter={kind} has nothing to train: choose adapter=svae or adapter=mlp")
    if cfg.adapter.get("pretrained"):
        raise ConfigError(
            "adapter.pretrained is for `wmeval train`; train-adapter writes a new adapter to out="
        )
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    device = _device(str(cfg.device))
    out = prepare_out_dir(cfg.out, "train-adapter", overwrite=bool(cfg.overwrite))
    episodes = load_data(cfg, progress=bool(cfg.progress))
    train_eps, held_eps = (
        split_episodes(episodes, int(cfg.heldout_episodes), int(cfg.seed))
        if cfg.heldout_episodes
        else (episodes, [])
    )
    encoder = load_encoder(**OmegaConf.to_container(cfg.encoder, resolve=True)).to(device).eval()
    train_views, held_views = view_episodes(train_eps), view_episodes(held_eps)  # the adapter works per view
    train_cache = _cache(Path(cfg.cache) if cfg.cache else out / "latents.h5", train_views, encoder, cfg)
    held_cache = _cache(out / "latents_heldout.h5", held_views, encoder, cfg) if held_views else None
    train_lat = [ep["latents"] for ep in train_cache.load_all(dtype=np.float16)]
    held_lat = None if held_cache is None else [ep["latents"] for ep in held_cache.load_all(dtype=np.float16)]
    adapter_dir = out / "adapter"
    try:
        if kind == "svae":
            result = _train_svae(
                cfg, encoder, train_lat, held_lat, train_views, held_views, adapter_dir, device
            )
        else:
            result = _train_mlp(cfg, encoder, train_lat, adapter_dir, device)
    except WorldModelError as err:
        raise WmevalError(str(err)) from err
    summary = {
        "adapter": kind,
        "adapter_dir": str(adapter_dir),
        "encoder": encoder.get_config(),
        "data": str(cfg.data),
        "train_episodes": len(train_eps),
        "heldout_episodes": len(held_eps),
        "encoder_has_decoder": bool(encoder.has_decoder),
        **result.to_dict(),
        "total_s": time.perf_counter() - started,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    summary.pop("loss_history", None)
    summary["loss_curve"] = result.loss_history[:: max(1, len(result.loss_history) // 100)]
    write_json(out / "train_adapter_summary.json", summary)
    _report(summary, kind, encoder, adapter_dir)
    return summary


def _train_svae(cfg, encoder, train_lat, held_lat, train_eps, held_eps, adapter_dir, device):  # noqa: ANN001, ANN202
    from worldmodel.adapters.train_svae import SVAETrainConfig, train_svae

    arch = {k: v for k, v in OmegaConf.to_container(cfg.adapter, resolve=True).items() if k in ARCH_KEYS}
    if arch.get("pixel_decoder") is not None and arch["pixel_decoder"].get("image_size") is None:
        arch["pixel_decoder"]["image_size"] = list(encoder.image_size)  # decode at the encoder's resolution
    try:
        config = SVAETrainConfig(
            **arch,
            **OmegaConf.to_container(cfg.optim, resolve=True),
            **OmegaConf.to_container(cfg.loss, resolve=True),
            seed=int(cfg.seed),
        )
    except TypeError as err:
        raise ConfigError(f"adapter/optim/loss options do not fit the S-VAE trainer: {err}") from err
    with_pixels = config.pixel_decoder is not None
    return train_svae(
        train_lat,
        config,
        frames=[ep["frames"] for ep in train_eps] if with_pixels else None,
        out_dir=adapter_dir,
        progress=bool(cfg.progress),
        holdout_latents=held_lat,
        holdout_frames=[ep["frames"] for ep in held_eps] if with_pixels and held_eps else None,
        device=device,
    )


def _train_mlp(cfg, encoder, train_lat, adapter_dir, device):  # noqa: ANN001, ANN202
    from worldmodel.adapters.train_mlp import train_mlp_adapter

    h, w, _ = encoder.latent_shape
    return train_mlp_adapter(
        train_lat,
        latent_dim=int(cfg.adapter.latent_dim),
        hidden_dim=cfg.adapter.get("hidden_dim"),
        steps=int(cfg.optim.steps),
        batch_size=int(cfg.optim.batch_size) * h * w,  # frames per step -> tokens per step
        lr=float(cfg.optim.lr),
        seed=int(cfg.seed),
        out_dir=adapter_dir,
        progress=bool(cfg.progress),
        device=device,
        normalize_input=True,
    )


def _cache(path: Path, episodes: list[dict], encoder, cfg: DictConfig) -> LatentCache:  # noqa: ANN001
    """Encode once; an existing cache is reused only if the same encoder made it from as many episodes."""
    if not path.exists():
        build_latent_cache(
            path, episodes, encoder, progress=bool(cfg.progress), metadata={"data": str(cfg.data)}
        )
    try:
        cache = LatentCache(path, expected_encoder_config=encoder)
    except WorldModelError as err:
        raise WmevalError(str(err)) from err
    if len(cache) != len(episodes):
        raise WmevalError(
            f"latent cache {path} holds {len(cache)} episodes, the split has {len(episodes)}: delete it or set cache="
        )
    return cache


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"device={name} is unknown: choose auto, cpu or cuda")
    return torch.device(name)


def _report(summary: dict[str, Any], kind: str, encoder, adapter_dir: Path) -> None:  # noqa: ANN001
    keys = ("holdout_mse", "holdout_cosine", "explained_variance", "pixel_psnr_holdout", "lpips", "seconds")
    print(json.dumps({k: summary[k] for k in keys if k in summary}, indent=2))
    if not summary["encoder_has_decoder"] and not (summary["config"]["adapter"].get("pixel_decoder")):
        log.warning(
            f"note: encoder '{encoder.name}' has no pixel decoder and neither has this adapter: imagined frames cannot be shown"
        )
    print(
        f"adapter saved to {adapter_dir}; use it with: wmeval train adapter={kind} adapter.pretrained={adapter_dir}"
    )
