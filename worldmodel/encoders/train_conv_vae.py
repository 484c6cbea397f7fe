"""Train the `conv_vae` latent space on recorded frames: the offline alternative to a pretrained VAE.

Loss = MSE(reconstruction, frame) in [-1, 1] + `kl_weight` * KL(posterior || N(0, I)) averaged per element;
the small KL keeps the latent scale tame without blurring. Deterministic for a seed on CPU: model init, the
hold-out split, batch order and posterior noise all come from seeded generators. After training the latent
scale is measured and stored as the VAE's `scaling_factor` (1 / std), so encoded latents are near unit variance.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from worldmodel.encoders.conv_vae import ConvVAEConfig, ConvVAEEncoder
from worldmodel.encoders.train_common import (
    check_out_dir,
    default_device,
    frames_to_tensor,
    lr_factor,
    reconstruction_psnr,
)
from worldmodel.errors import InputError
from worldmodel.training.results import TrainResult

#: frames used to measure the latent scale and the training PSNR (enough for a stable std, cheap on CPU)
_STAT_FRAMES = 256


def fast_cpu_config() -> ConvVAEConfig:
    """The architecture `wmeval train-encoder` uses by default: 64 px, widths 16/32/64, 16 GroupNorm groups.

    Latents 16x16x8. Measured at about 33 dB held-out PSNR after 300 steps on a CPU, where the 96 px
    `ConvVAEConfig()` default (32/64/128) is several times slower per step for little gain on PushT.
    """
    return ConvVAEConfig(image_size=64, block_out_channels=(16, 32, 64), norm_num_groups=16)


@dataclass
class ConvVAETrainResult(TrainResult):
    """What a training run produced; `to_dict()` is the JSON-safe summary (without the model)."""

    out_dir: str | None
    steps: int
    final_loss: float
    psnr_holdout: float
    psnr_train: float
    scaling_factor: float
    num_train: int
    num_holdout: int
    seconds: float
    frames_per_second: float
    loss_history: list[float] = field(default_factory=list)
    encoder: ConvVAEEncoder | None = field(default=None, repr=False)


def train_conv_vae(
    frames: np.ndarray,
    config: ConvVAEConfig | dict[str, Any] | None = None,
    steps: int = 2000,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    out_dir: str | Path | None = None,
    progress: bool = True,
    *,
    kl_weight: float = 1e-4,
    holdout: float = 0.1,
    holdout_frames: np.ndarray | None = None,
    device: str | torch.device | None = None,
    overwrite: bool = False,
) -> ConvVAETrainResult:
    """Train a fresh `conv_vae` on uint8 frames `[N, H, W, 3]` and save it to `out_dir` (if given) atomically.

    The held-out PSNR is measured on `holdout_frames` when given, else on a seeded random `holdout` fraction
    of `frames` (optimistic for video: neighbouring frames look alike, so prefer whole held-out episodes).
    Keep the held-out set small on CPU (a few hundred frames): every frame is encoded and decoded once.
    """
    cfg = _as_config(config)
    if steps < 1 or batch_size < 1 or lr <= 0:
        raise InputError(f"steps, batch_size and lr must be positive, got {steps}, {batch_size}, {lr}")
    check_out_dir(out_dir, overwrite)
    dev = torch.device(device) if device is not None else default_device()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = ConvVAEEncoder(**_init_kwargs(cfg))
    size = encoder.image_size
    data = frames_to_tensor(frames, size, "frames")
    rng = np.random.default_rng(seed)
    if holdout_frames is not None:
        train, held = data, frames_to_tensor(holdout_frames, size, "holdout_frames")
    else:
        if len(data) < 2 or not 0.0 < holdout < 1.0:
            raise InputError("need >= 2 frames and 0 < holdout < 1 (or pass holdout_frames)")
        order = torch.from_numpy(rng.permutation(len(data)))
        n_held = max(1, int(round(holdout * len(data))))
        held, train = data[order[:n_held]], data[order[n_held:]]

    vae = encoder.vae.to(dev).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=1e-4)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, warmup, steps))
    gen = torch.Generator(device="cpu").manual_seed(seed)
    noise_gen = torch.Generator(device=dev).manual_seed(seed + 1)
    history: list[float] = []
    start = time.perf_counter()
    bar = tqdm(range(steps), desc="train conv_vae", disable=not progress, dynamic_ncols=True)
    for step in bar:
        idx = torch.randint(0, len(train), (min(batch_size, len(train)),), generator=gen)
        x = train[idx].to(dev).float().div_(255.0).mul_(2.0).sub_(1.0)
        post = vae.encode(x).latent_dist
        recon = vae.decode(post.sample(generator=noise_gen)).sample
        mse = torch.mean((recon - x) ** 2)
        kl = 0.5 * torch.mean(post.mean**2 + post.var - 1.0 - post.logvar)
        loss = mse + kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        sched.step()
        history.append(float(loss.detach()))
        if step % 10 == 0 or step == steps - 1:
            bar.set_postfix(loss=f"{history[-1]:.4f}", mse=f"{float(mse.detach()):.4f}")
    seconds = time.perf_counter() - start

    vae.eval()
    encoder.set_scaling_factor(1.0)
    with torch.inference_mode():
        sample = train[torch.randperm(len(train), generator=gen)[:_STAT_FRAMES]]
        std = float(_encode_all(encoder, sample, batch_size).std())
        encoder.set_scaling_factor(1.0 / max(std, 1e-6))
        psnr_held = reconstruction_psnr(encoder, held, batch_size)
        psnr_train = reconstruction_psnr(encoder, sample[: min(len(held), _STAT_FRAMES)], batch_size)
    encoder.to("cpu")
    if out_dir is not None:
        encoder.pretrained = str(out_dir)
        encoder.save_pretrained(out_dir)
    return ConvVAETrainResult(
        out_dir=None if out_dir is None else str(out_dir),
        steps=steps,
        final_loss=float(np.mean(history[-max(1, steps // 20) :])),
        psnr_holdout=psnr_held,
        psnr_train=psnr_train,
        scaling_factor=encoder.scaling_factor,
        num_train=len(train),
        num_holdout=len(held),
        seconds=seconds,
        frames_per_second=steps * min(batch_size, len(train)) / max(seconds, 1e-9),
        loss_history=history,
        encoder=encoder,
    )


def _as_config(config: ConvVAEConfig | dict[str, Any] | None) -> ConvVAEConfig:
    """Accept the dataclass, a plain dict, or an encoder's `get_config()` (whose weight keys are ignored)."""
    if not isinstance(config, dict):
        return config or ConvVAEConfig()
    fields = set(ConvVAEConfig.__dataclass_fields__)
    unknown = sorted(set(config) - fields - {"type", "pretrained", "fingerprint"})
    if unknown:
        raise InputError(f"conv_vae config has unknown key(s) {unknown}: accepted are {sorted(fields)}")
    return ConvVAEConfig(**{k: v for k, v in config.items() if k in fields})


def _init_kwargs(cfg: ConvVAEConfig) -> dict[str, Any]:
    kw = asdict(cfg)
    kw["block_out_channels"] = tuple(kw["block_out_channels"])
    return kw


def _encode_all(encoder: ConvVAEEncoder, data: torch.Tensor, batch_size: int) -> torch.Tensor:
    dev = next(encoder.vae.parameters()).device
    outs = [
        encoder.encode(data[i : i + batch_size].to(dev).float() / 255.0)
        for i in range(0, len(data), batch_size)
    ]
    return torch.cat(outs)
