"""Train the S-VAE adapter (and its optional pixel decoder) on encoder latents (the paper).

Loss, compared in the adapter's standardised input space:
    MSE + cos_weight (1 - cos) + spec_weight L1(|FFT|) + KL_weight(t) KL
    + pixel_weight (MSE + lpips_weight LPIPS + ssim_weight (1 - MS-SSIM))        [only with a pixel decoder]
with the KL weight warmed up linearly over the first `kl_warmup_fraction` of the steps. Stage `svae` (the
paper's) feeds the pixel decoder a DETACHED z, so pixels never shape the latent space; `psvae` lets the pixel
gradient flow into the adapter. LPIPS runs only with locally cached pretrained weights, after
`lpips_after_samples` training samples (paper: 50k); its status is reported in the result, never faked.

One AdamW over two parameter groups (pixel decoder at `pixel_lr_multiplier` x lr), gradients clipped per group,
linear warm-up then cosine to `min_lr_ratio` x lr. Deterministic for a seed on CPU (seeded init, batch order and
reparameterisation noise, all inside a forked RNG so the caller's RNG is untouched). Afterwards the per-channel
mean / std of z over the training frames are stored in the adapter (`latent_statistics()`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from worldmodel.adapters import save_adapter
from worldmodel.adapters.svae import SVAEAdapter
from worldmodel.adapters.svae_losses import (
    kl_to_standard_normal,
    kl_weight_at,
    load_lpips,
    ms_ssim,
    spectral_loss,
)
from worldmodel.encoders.common import resize_frames
from worldmodel.errors import InputError
from worldmodel.training.results import TrainResult

STAGES = ("svae", "psvae")


@dataclass
class SVAETrainConfig:
    """Architecture + optimisation + loss weights; the defaults are the paper's (B.3, eq. 14)."""

    latent_dim: int = 96
    num_layers: int = 3
    num_heads: int = 12
    ffn_dim: int = 3072
    output_norm: bool = True  # final LayerNorm of the decoder (paper); False for pixel / VAE tokens
    pixel_decoder: dict[str, Any] | None = None  # PixelDecoderConfig options; grid / image_size are filled in
    stage: str = "svae"
    steps: int = 2000
    batch_size: int = 16  # frames (each a whole latent grid) per step
    lr: float = 1e-4
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    pixel_lr_multiplier: float = 3.0
    grad_clip: float = 1.0
    warmup_steps: int | None = None  # None: 2% of the steps
    min_lr_ratio: float = 0.9
    cos_weight: float = 1.0
    spec_weight: float = 0.01
    kl_weight: float = 1e-4
    kl_warmup_fraction: float = 0.2
    pixel_weight: float = 1.0
    lpips_weight: float = 0.5
    ssim_weight: float = 0.5
    lpips_net: str = "vgg"
    lpips_after_samples: int = 50_000
    holdout: float = 0.05  # fraction of frames held out when no hold-out set is given
    seed: int = 0

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        if self.stage not in STAGES:
            raise InputError(
                f"stage={self.stage!r} is unknown: choose svae (detached pixel decoder) or psvae"
            )
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise InputError(
                f"steps, batch_size and lr must be positive, got {self.steps}, {self.batch_size}, {self.lr}"
            )

    def adapter_options(self, in_dim: int, grid: tuple[int, int], image_size: tuple[int, int] | None) -> dict:
        pix = None
        if self.pixel_decoder is not None:
            pix = {**dict(self.pixel_decoder), "grid": list(grid)}
            if pix.get("image_size") is None and image_size is not None:
                pix["image_size"] = list(image_size)
        return {
            "in_dim": in_dim,
            "latent_dim": self.latent_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "ffn_dim": self.ffn_dim,
            "output_norm": self.output_norm,
            "pixel_decoder": pix,
        }


@dataclass
class SVAETrainResult(TrainResult):
    """Summary of a run. Latent errors are in the standardised input space (explained variance 1 is perfect)."""

    out_dir: str | None
    stage: str
    steps: int
    final_loss: float
    final_terms: dict[str, float]
    holdout_mse: float
    holdout_cosine: float
    explained_variance: float
    pixel_psnr_holdout: float | None
    pixel_ms_ssim_holdout: float | None
    lpips: str  # "available", "unavailable: <why>", "off (weight 0)" or "no pixel decoder"
    latent_std_mean: float  # mean over channels of std(z): how much of the N(0, I) prior the data uses
    num_train_frames: int
    num_holdout_frames: int
    seconds: float
    loss_history: list[float] = field(default_factory=list)
    adapter: SVAEAdapter | None = field(default=None, repr=False)


def compute_losses(
    adapter: SVAEAdapter,
    x: torch.Tensor,
    frames: torch.Tensor | None,
    config: SVAETrainConfig,
    step: int,
    lpips_model: torch.nn.Module | None = None,
) -> dict[str, torch.Tensor]:
    """Every loss term for raw latents `x [B, h, w, D]` and (optional) target frames `[B, 3, H, W]` in [0, 1]."""
    xn = adapter.normalize_input(x)
    mu, logvar = adapter.moments(xn)
    z = adapter.sample(mu, logvar)
    recon = adapter.decode_normalized(z)
    terms = {
        "mse": F.mse_loss(recon, xn),
        "cos": F.cosine_similarity(recon, xn, dim=-1, eps=1e-6).mean(),
        "kl": kl_to_standard_normal(mu, logvar),
    }
    kl_w = kl_weight_at(step, config.steps, config.kl_weight, config.kl_warmup_fraction)
    total = terms["mse"] + config.cos_weight * (1.0 - terms["cos"]) + kl_w * terms["kl"]
    if config.spec_weight:
        terms["spec"] = spectral_loss(recon, xn)
        total = total + config.spec_weight * terms["spec"]
    if adapter.pixel_decoder is not None and frames is not None and config.pixel_weight:
        pred = adapter.pixel_decoder(z.detach() if config.stage == "svae" else z)
        pixel = F.mse_loss(pred, frames)
        terms["pix_mse"] = pixel.detach()
        if config.ssim_weight:
            terms["ms_ssim"] = ms_ssim(pred, frames)
            pixel = pixel + config.ssim_weight * (1.0 - terms["ms_ssim"])
        if lpips_model is not None and config.lpips_weight:
            terms["lpips"] = lpips_model(pred.float() * 2 - 1, frames.float() * 2 - 1).mean()
            pixel = pixel + config.lpips_weight * terms["lpips"]
        terms["pixel"] = pixel
        total = total + config.pixel_weight * pixel
    terms["total"] = total
    return terms


def train_svae(
    latents: np.ndarray | torch.Tensor | Sequence[np.ndarray],
    config: SVAETrainConfig | None = None,
    frames: np.ndarray | Sequence[np.ndarray] | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
    *,
    holdout_latents: np.ndarray | Sequence[np.ndarray] | None = None,
    holdout_frames: np.ndarray | Sequence[np.ndarray] | None = None,
    device: str | torch.device | None = None,
) -> SVAETrainResult:
    """Fit a fresh S-VAE on latent grids `[N, h, w, D]` (or a list of `[T, h, w, D]`, one per episode).

    `frames` (uint8 `[N, H, W, 3]`, aligned with the latents) train the pixel decoder when the config has one.
    Held-out metrics use `holdout_*` when given, else a seeded `holdout` fraction of the frames.
    """
    cfg = config or SVAETrainConfig()
    data = _stack(latents, "latents")
    pix = None if frames is None or cfg.pixel_decoder is None else _stack(frames, "frames")
    if pix is not None and len(pix) != len(data):
        raise InputError(f"frames ({len(pix)}) and latents ({len(data)}) must be aligned one to one")
    if cfg.pixel_decoder is not None and pix is None:
        raise InputError("a pixel decoder is configured but no frames were given: pass frames or drop it")
    if holdout_latents is not None:
        train_x, held_x = data, _stack(holdout_latents, "holdout_latents")
        train_f = pix
        held_f = None if pix is None or holdout_frames is None else _stack(holdout_frames, "holdout_frames")
    else:
        if len(data) < 2 or not 0.0 < cfg.holdout < 1.0:
            raise InputError("need >= 2 frames and 0 < holdout < 1 (or pass holdout_latents)")
        order = torch.from_numpy(np.random.default_rng(cfg.seed).permutation(len(data)))
        n_held = max(1, int(round(cfg.holdout * len(data))))
        train_x, held_x = data[order[n_held:]], data[order[:n_held]]
        train_f = None if pix is None else pix[order[n_held:]]
        held_f = None if pix is None else pix[order[:n_held]]
    dev = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    _, h, w, d = train_x.shape
    image_size = None if train_f is None else (int(train_f.shape[1]), int(train_f.shape[2]))

    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(cfg.seed)
        adapter = SVAEAdapter(**cfg.adapter_options(d, (h, w), image_size))
        mean, std = _channel_stats(train_x.reshape(-1, d))
        adapter.set_input_statistics(mean, std)
        if adapter.pixel_decoder is not None:
            size = adapter.pixel_decoder.output_size
            train_f, held_f = _frames(train_f, size), None if held_f is None else _frames(held_f, size)
        adapter.to(dev).train()
        lpips_model, lpips_status = _lpips(cfg, adapter)
        lpips_model = None if lpips_model is None else lpips_model.to(dev)
        history, terms_sum, seconds = _fit(adapter, cfg, train_x, train_f, lpips_model, dev, progress)

    adapter.eval()
    with torch.inference_mode():
        z = _encode_all(adapter, train_x, cfg.batch_size, dev)
        z_mean, z_std = _channel_stats(z.reshape(-1, cfg.latent_dim))
        adapter.set_latent_statistics(z_mean, z_std, tokens=z.shape[0] * h * w)
        held = _holdout_metrics(adapter, held_x, held_f, cfg.batch_size, dev)
    adapter.to("cpu")
    if out_dir is not None:
        save_adapter(adapter, out_dir)
    window = max(1, cfg.steps // 20)
    return SVAETrainResult(
        out_dir=None if out_dir is None else str(out_dir),
        stage=cfg.stage,
        steps=cfg.steps,
        final_loss=float(np.mean(history[-window:])),
        final_terms={k: v / min(window, cfg.steps) for k, v in terms_sum.items()},
        lpips=lpips_status,
        latent_std_mean=float(z_std.mean()),
        num_train_frames=len(train_x),
        num_holdout_frames=len(held_x),
        seconds=seconds,
        loss_history=history,
        adapter=adapter,
        **held,
    )


def _fit(adapter, cfg, train_x, train_f, lpips_model, dev, progress) -> tuple[list[float], dict, float]:  # noqa: ANN001
    """The optimisation loop; returns the loss history, summed terms of the last 5% of steps, and seconds."""
    pix_params = [] if adapter.pixel_decoder is None else list(adapter.pixel_decoder.parameters())
    pix_ids = {id(p) for p in pix_params}
    ad_params = [p for p in adapter.parameters() if id(p) not in pix_ids]
    groups = [{"params": ad_params, "lr": cfg.lr}]
    if pix_params:
        groups.append({"params": pix_params, "lr": cfg.lr * cfg.pixel_lr_multiplier})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else max(1, cfg.steps // 50)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: _lr_factor(s, warmup, cfg.steps, cfg.min_lr_ratio)
    )
    gen = torch.Generator().manual_seed(cfg.seed)
    batch = min(cfg.batch_size, len(train_x))
    history: list[float] = []
    terms_sum: dict[str, float] = {}
    window_start = cfg.steps - max(1, cfg.steps // 20)
    start = time.perf_counter()
    bar = tqdm(range(cfg.steps), desc=f"train {cfg.stage}", disable=not progress, dynamic_ncols=True)
    for step in bar:
        idx = torch.randint(0, len(train_x), (batch,), generator=gen)
        x = train_x[idx].to(dev).float()
        frames = None if train_f is None else train_f[idx].to(dev).float().div_(255.0)
        use_lpips = lpips_model if step * batch >= cfg.lpips_after_samples else None
        terms = compute_losses(adapter, x, frames, cfg, step, use_lpips)
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(ad_params, cfg.grad_clip)
        if pix_params:
            torch.nn.utils.clip_grad_norm_(pix_params, cfg.grad_clip)
        opt.step()
        sched.step()
        history.append(float(terms["total"].detach()))
        if step >= window_start:
            for k, v in terms.items():
                terms_sum[k] = terms_sum.get(k, 0.0) + float(v.detach())
        if step % 10 == 0 or step == cfg.steps - 1:
            bar.set_postfix(loss=f"{history[-1]:.4f}", mse=f"{float(terms['mse'].detach()):.4f}")
    return history, terms_sum, time.perf_counter() - start


def _lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    if step < warmup:
        return (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))


def _lpips(cfg: SVAETrainConfig, adapter: SVAEAdapter) -> tuple[torch.nn.Module | None, str]:
    if adapter.pixel_decoder is None:
        return None, "no pixel decoder"
    if not cfg.lpips_weight or not cfg.pixel_weight:
        return None, "off (weight 0)"
    model, status = load_lpips(cfg.lpips_net)
    if model is not None and cfg.steps * cfg.batch_size <= cfg.lpips_after_samples:
        status = f"available, but not reached (starts after {cfg.lpips_after_samples} samples)"
    return model, status


def _holdout_metrics(adapter, held_x, held_f, batch_size, dev) -> dict[str, Any]:  # noqa: ANN001
    """Reconstruction of held-out frames from the mean z (the eval path), in the standardised space."""
    d = held_x.shape[-1]
    se = cos = 0.0
    s1, s2 = torch.zeros(d, dtype=torch.float64), torch.zeros(d, dtype=torch.float64)
    n = 0
    psnrs, ssims = [], []
    for i in range(0, len(held_x), batch_size):
        xn = adapter.normalize_input(held_x[i : i + batch_size].to(dev).float())
        mu, _ = adapter.moments(xn)
        recon = adapter.decode_normalized(mu)
        se += float(((recon - xn) ** 2).sum())
        cos += float(F.cosine_similarity(recon, xn, dim=-1, eps=1e-6).sum())
        flat = xn.reshape(-1, d).double().cpu()
        s1, s2, n = s1 + flat.sum(0), s2 + flat.square().sum(0), n + len(flat)
        if held_f is not None and adapter.pixel_decoder is not None:
            target = held_f[i : i + batch_size].to(dev).float() / 255.0
            pred = adapter.pixel_decoder(mu)
            mse = ((pred - target) ** 2).flatten(1).mean(1).clamp_min(1e-10)
            psnrs.append(-10.0 * torch.log10(mse).cpu())
            ssims.append(float(ms_ssim(pred, target)) * len(target))
    total_var = float((s2 - s1.square() / n).sum())
    return {
        "holdout_mse": se / (n * d),
        "holdout_cosine": cos / n,
        "explained_variance": 1.0 - se / max(total_var, 1e-12),
        "pixel_psnr_holdout": float(torch.cat(psnrs).mean()) if psnrs else None,
        "pixel_ms_ssim_holdout": sum(ssims) / len(held_f) if ssims else None,
    }


def _encode_all(adapter: SVAEAdapter, data: torch.Tensor, batch_size: int, dev: torch.device) -> torch.Tensor:
    return torch.cat(
        [
            adapter.encode(data[i : i + batch_size].to(dev).float()).cpu()
            for i in range(0, len(data), batch_size)
        ]
    )


def _channel_stats(tokens: torch.Tensor, chunk: int = 1 << 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and population std of `[M, C]`, accumulated in float64 chunk by chunk."""
    total = torch.zeros(tokens.shape[-1], dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    for i in range(0, len(tokens), chunk):
        part = tokens[i : i + chunk].double()
        total += part.sum(0)
        total_sq += part.square().sum(0)
    mean = total / len(tokens)
    var = (total_sq / len(tokens) - mean.square()).clamp_min(0.0)
    return mean.float(), var.sqrt().float()


def _stack(arrays: np.ndarray | torch.Tensor | Sequence[np.ndarray], what: str) -> torch.Tensor:
    """One array (or a list, one per episode) -> a tensor `[N, ...]`, keeping the dtype (float16 stays small)."""
    if isinstance(arrays, (list, tuple)):
        if not arrays:
            raise InputError(f"{what} is empty")
        arrays = np.concatenate([np.asarray(a) for a in arrays])
    t = torch.as_tensor(np.asarray(arrays) if not isinstance(arrays, torch.Tensor) else arrays)
    if t.ndim != 4 or len(t) == 0:
        raise InputError(
            f"{what} must be a non-empty [N, h, w, C] array (or a list of them), got {tuple(t.shape)}"
        )
    return t


def _frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 `[N, H, W, 3]` -> uint8 `[N, 3, h, w]` at the pixel decoder's output size (resized once)."""
    if frames.dtype != torch.uint8 or frames.shape[-1] != 3:
        raise InputError(f"frames must be uint8 [N, H, W, 3], got {frames.dtype} {tuple(frames.shape)}")
    x = frames.permute(0, 3, 1, 2)
    if tuple(x.shape[-2:]) == tuple(size):
        return x.contiguous()
    parts = [
        resize_frames(x[i : i + 256].float() / 255.0, size).mul(255.0).round().clamp(0, 255).to(torch.uint8)
        for i in range(0, len(x), 256)
    ]
    return torch.cat(parts)
