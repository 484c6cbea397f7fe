"""Video fidelity of imagined frames: PSNR, SSIM, LPIPS, FID, FVD, each beside its baselines.

Every metric is computed on the frames after the context, for three videos against the real one: the world
model's, the copy-last-frame baseline's (PSNR alone rewards predicting no change), and the encoder's
reconstruction of the real frames (the ceiling the world model cannot beat; `model_minus_ceiling` is the gap).
LPIPS / FID / FVD need pretrained backbones: without their weights on disk the value is the string
"unavailable: ..." saying what to provide, never a number from random weights.

Frames are float [N, T, 3, H, W] in [0, 1] at the world model's resolution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from wmeval.errors import ConfigError
from wmeval.metrics import backbones
from wmeval.metrics.backbones import BackboneUnavailable
from wmeval.metrics.open_loop import MAX_PSNR, psnr
from worldmodel.adapters.svae_losses import ssim

METRICS = ("psnr", "ssim", "lpips", "fid", "fvd")
VIDEOS = ("model", "copy_last", "reconstruction")


@dataclass
class VideoConfig:
    metrics: list[str] = field(default_factory=lambda: list(METRICS))
    weights: dict[str, str | None] = field(
        default_factory=dict
    )  # backbone name -> local file (else hub cache)
    fvd_frames: int = 16  # clips padded (last frame repeated) or truncated to this many frames (paper: 16)
    fvd_size: int = 112
    fid_size: int = 299
    batch_size: int = 32
    device: str = "cpu"

    def __post_init__(self) -> None:
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            raise ConfigError(f"video.metrics has {unknown}: choose from {', '.join(METRICS)}")


def mean_psnr(values: np.ndarray, axis: int | tuple[int, ...] | None = None) -> Any:
    """Mean of per-frame PSNRs, each capped at MAX_PSNR dB so one identical frame cannot make it inf;
    inf only when every frame is identical."""
    values = np.asarray(values, np.float64)
    capped = np.minimum(values, MAX_PSNR).mean(axis=axis)
    return np.where(np.isinf(values).all(axis=axis), np.inf, capped)


def pooled_psnr(values: np.ndarray) -> float:
    """PSNR of the mean squared error over all frames: needs no cap, and a few exactly copied frames (a static
    episode under the copy-last baseline) weigh what their error weighs, not a capped 48 dB each."""
    values = np.asarray(values, np.float64)
    mse = np.mean(10.0 ** (-values / 10.0))  # inf dB -> 0 error
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def psnr_frames(real: np.ndarray, gen: np.ndarray) -> np.ndarray:
    """Per-frame PSNR [N, T] in dB on the uint8-quantised frames (inf for identical frames)."""
    return psnr(_uint8(gen) / 255.0, _uint8(real) / 255.0)


def ssim_frames(real: np.ndarray, gen: np.ndarray) -> np.ndarray:
    """Per-frame SSIM [N, T] on the uint8-quantised frames: Wang et al.'s Gaussian SSIM (11x11, sigma 1.5),
    averaged over the RGB channels; 1 for identical frames."""
    r, g = (torch.from_numpy(_uint8(v)).flatten(0, 1).float() / 255 for v in (real, gen))
    values = torch.cat([ssim(r[i : i + 256], g[i : i + 256]) for i in range(0, len(r), 256)])
    return values.double().numpy().reshape(real.shape[:2])


class Features:
    """Loads each backbone once; `unavailable` remembers why one could not be loaded."""

    def __init__(self, cfg: VideoConfig) -> None:
        self.cfg = cfg
        self.models: dict[str, torch.nn.Module] = {}
        self.unavailable: dict[str, str] = {}

    def get(self, name: str, loader: Callable) -> torch.nn.Module | None:
        if name not in self.models and name not in self.unavailable:
            try:
                path = backbones.find_checkpoint(name, self.cfg.weights.get(name))
                self.models[name] = loader(path).to(self.cfg.device)
            except BackboneUnavailable as err:
                self.unavailable[name] = f"unavailable: {err}"
        return self.models.get(name)

    @torch.no_grad()
    def lpips_frames(self, real: np.ndarray, gen: np.ndarray) -> np.ndarray | None:
        """Per-frame LPIPS [N, T] (AlexNet, inputs in [-1, 1])."""
        model = self.get("alexnet", backbones.load_lpips)
        if model is None:
            return None
        r, g = _flat(real), _flat(gen)
        out = [
            model(
                r[i : i + self.cfg.batch_size].to(self.cfg.device) * 2 - 1,
                g[i : i + self.cfg.batch_size].to(self.cfg.device) * 2 - 1,
            )
            .flatten()
            .cpu()
            for i in range(0, len(r), self.cfg.batch_size)
        ]
        return torch.cat(out).numpy().reshape(real.shape[:2])

    @torch.no_grad()
    def inception(self, frames: np.ndarray) -> np.ndarray | None:
        """2048-d pool features of every frame [N * T, 2048] (299 px, ImageNet normalisation)."""
        model = self.get("inception_v3", backbones.load_inception)
        if model is None:
            return None
        x = _flat(frames)
        mean, std = torch.tensor(backbones.IMAGENET_MEAN), torch.tensor(backbones.IMAGENET_STD)
        feats = []
        for i in range(0, len(x), self.cfg.batch_size):
            batch = F.interpolate(
                x[i : i + self.cfg.batch_size],
                size=(self.cfg.fid_size,) * 2,
                mode="bilinear",
                align_corners=False,
            )
            batch = (batch - mean[:, None, None]) / std[:, None, None]
            feats.append(model(batch.to(self.cfg.device)).cpu())
        return torch.cat(feats).double().numpy()

    @torch.no_grad()
    def r3d(self, frames: np.ndarray) -> np.ndarray | None:
        """512-d features of each video [N, 512]: padded/truncated to `fvd_frames` frames at `fvd_size` px."""
        model = self.get("r3d_18", backbones.load_r3d)
        if model is None:
            return None
        x = torch.from_numpy(np.ascontiguousarray(frames, np.float32))
        n, t = x.shape[:2]
        idx = torch.arange(self.cfg.fvd_frames).clamp(max=t - 1)
        x = F.interpolate(
            x[:, idx].flatten(0, 1), size=(self.cfg.fvd_size,) * 2, mode="bilinear", align_corners=False
        )
        mean, std = torch.tensor(backbones.KINETICS_MEAN), torch.tensor(backbones.KINETICS_STD)
        x = ((x - mean[:, None, None]) / std[:, None, None]).reshape(n, len(idx), 3, *x.shape[-2:])
        x = x.permute(0, 2, 1, 3, 4)  # [N, 3, T, H, W]
        feats = [model(x[i : i + 8].to(self.cfg.device)).cpu() for i in range(0, n, 8)]
        return torch.cat(feats).double().numpy()


def video_fidelity(
    real: np.ndarray, videos: dict[str, np.ndarray], cfg: VideoConfig | None = None, progress: bool = False
) -> dict[str, Any]:
    """Every metric of `cfg.metrics` for each video in `videos` (model, copy_last, reconstruction) vs `real`.

    Per-frame metrics (PSNR, SSIM, LPIPS) also come per horizon step (`by_step`); FID pools all frames, FVD
    compares the sets of clips (one per episode; few clips make it noisy, see `clips`).
    """
    cfg = cfg or VideoConfig()
    feats = Features(cfg)
    values: dict[str, Any] = {}
    per_frame = {
        "psnr": psnr_frames,
        "ssim": ssim_frames,
        "lpips": feats.lpips_frames,
    }
    bar = tqdm(cfg.metrics, desc="video metrics", disable=not progress, leave=False)
    for metric in bar:
        bar.set_postfix(metric=metric)
        if metric in per_frame:
            block: dict[str, Any] = {"by_step": {}}
            for name, gen in videos.items():
                frames = per_frame[metric](real, gen)
                if frames is None:
                    block = feats.unavailable["alexnet"]
                    break
                if metric == "lpips":
                    block["backbone"] = backbones.describe("alexnet")
                mean = mean_psnr if metric == "psnr" else np.mean
                block[name] = float(mean(frames))
                if metric == "psnr":
                    block.setdefault("pooled", {})[name] = pooled_psnr(frames)
                block["by_step"][name] = np.asarray(mean(frames, axis=0), np.float64).tolist()
        elif metric == "fid":
            block = _frechet(feats.inception, real, videos, "inception_v3", feats)
            if isinstance(block, dict):
                block["frames"] = int(np.prod(real.shape[:2]))
        elif metric == "fvd":
            block = _frechet(feats.r3d, real, videos, "r3d_18", feats)
            if isinstance(block, dict):
                block["clips"], block["clip_frames"] = int(real.shape[0]), cfg.fvd_frames
        else:
            raise ConfigError(f"unknown video metric {metric!r}: choose from {', '.join(METRICS)}")
        if isinstance(block, dict) and "model" in block and "reconstruction" in block:
            block["model_minus_ceiling"] = block["model"] - block["reconstruction"]
        values[metric] = block
    return values


def _frechet(
    extract: Callable, real: np.ndarray, videos: dict[str, np.ndarray], name: str, feats: Features
) -> Any:
    ref = extract(real)
    if ref is None:
        return feats.unavailable[name]
    block: dict[str, Any] = {
        key: backbones.frechet_distance(ref, extract(gen)) for key, gen in videos.items()
    }
    block["backbone"] = backbones.describe(name)
    return block


def _uint8(frames: np.ndarray) -> np.ndarray:
    return np.round(np.clip(np.asarray(frames, np.float64), 0, 1) * 255).astype(np.uint8)


def _flat(frames: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(frames, np.float32))
    return x.reshape(-1, *x.shape[2:])
