"""Action recoverability: an inverse-dynamics model trained on real latents, then applied to imagined ones.

Why: a world model can look right and still erase what the action did. An IDM trained on
k + 1 real latent frames to predict the k actions between them gives Pearson r on held-out real latents (what
the latent space carries); the same frozen IDM on world-model rollouts of the same episodes gives a lower r,
and the drop is how much action information generation loses. Scaled down from the paper (width 512, 6 blocks)
so that it trains on a CPU in minutes: patch-embedded latents (`patch_size` x `patch_size` cells per token),
learned temporal and spatial embeddings, k learned per-step queries, pre-norm transformer blocks, Smooth-L1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from wmeval.errors import ConfigError


@dataclass
class IDMConfig:
    width: int = 128  # paper: 512
    depth: int = 2  # paper: 6
    heads: int = 4  # paper: 8
    mlp_ratio: float = 4.0
    dropout: float = 0.1
    patch_size: int = (
        2  # latent cells per token side (paper: 1); the linear sees all of them, nothing is lost
    )
    deltas: bool = True  # each token also carries its change since the previous frame (paper: no)
    steps: int = 600
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    seed: int = 0


class TransformerIDM(nn.Module):
    """k + 1 latent grids [B, k+1, h, w, C] -> the k actions between them [B, k, A]."""

    def __init__(self, latent_shape: tuple[int, int, int], k: int, action_dim: int, cfg: IDMConfig) -> None:
        super().__init__()
        h, w, c = latent_shape
        p = cfg.patch_size
        if h % p or w % p:
            raise ConfigError(f"idm.patch_size={p} does not divide the latent grid {h}x{w}: use 1")
        self.k, self.p, self.deltas = k, p, cfg.deltas
        tokens = (h // p) * (w // p)
        self.embed = nn.Linear(p * p * c * (2 if cfg.deltas else 1), cfg.width)
        self.time_pos = nn.Parameter(torch.zeros(1, k + 1, 1, cfg.width))
        self.space_pos = nn.Parameter(torch.zeros(1, 1, tokens, cfg.width))
        self.queries = nn.Parameter(torch.zeros(1, k, cfg.width))
        for param in (self.time_pos, self.space_pos, self.queries):
            nn.init.normal_(param, std=0.02)
        layer = nn.TransformerEncoderLayer(
            cfg.width,
            cfg.heads,
            int(cfg.width * cfg.mlp_ratio),
            cfg.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, cfg.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.width)
        self.head = nn.Sequential(
            nn.Linear(cfg.width, cfg.width), nn.GELU(), nn.Linear(cfg.width, action_dim)
        )

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        b, t, h, w, c = latents.shape
        p = self.p
        # No RMSNorm on the input (the paper's): the latents come normalised per channel by the world model's
        # statistics, and a per-cell norm would erase the magnitudes of narrow latents.
        x = (
            latents.reshape(b, t, h // p, p, w // p, p, c)
            .permute(0, 1, 2, 4, 3, 5, 6)
            .reshape(b, t, h * w // p // p, -1)
        )
        if self.deltas:
            x = torch.cat((x, torch.cat((torch.zeros_like(x[:, :1]), x.diff(dim=1)), 1)), -1)
        x = (self.embed(x) + self.time_pos + self.space_pos).flatten(1, 2)
        x = self.blocks(torch.cat((self.queries.expand(b, -1, -1), x), 1))
        return self.head(self.norm(x[:, : self.k]))


def idm_windows(
    latents: list[torch.Tensor], actions: list[torch.Tensor], k: int, start: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every window of k + 1 consecutive frames starting at frame >= `start` of every episode.

    `actions[e][i]` is the normalised action that led into frame i. Returns x [N, k+1, ...], y [N, k, A].
    """
    xs, ys = [], []
    for z, a in zip(latents, actions, strict=True):
        for s in range(start, len(z) - k):
            xs.append(z[s : s + k + 1])
            ys.append(a[s + 1 : s + k + 1])
    if not xs:
        raise ConfigError(
            f"no window of {k + 1} frames: episodes or horizon are too short for the IDM at k={k}"
        )
    return torch.stack(xs).float(), torch.stack(ys).float()


def train_idm(
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: IDMConfig,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> TransformerIDM:
    """Fit with AdamW + cosine decay on Smooth-L1; deterministic for `cfg.seed` on CPU."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = TransformerIDM(tuple(x.shape[2:]), y.shape[1], y.shape[2], cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.steps), eta_min=cfg.lr * 0.05)
    model.train()
    bar = tqdm(range(cfg.steps), desc=f"train IDM k={y.shape[1]}", disable=not progress, leave=False)
    for _ in bar:
        idx = torch.randint(len(x), (min(cfg.batch_size, len(x)),), generator=gen)
        loss = F.smooth_l1_loss(model(x[idx].to(device)), y[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    return model.eval()


@torch.no_grad()
def predict_idm(model: TransformerIDM, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    device = next(model.parameters()).device
    return torch.cat([model(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])


def pearson_per_dim(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Pearson r per action dim over windows and steps ([N, k, A] -> [A]); nan where either side is constant."""
    p = np.asarray(pred, np.float64).reshape(-1, pred.shape[-1])
    t = np.asarray(true, np.float64).reshape(-1, true.shape[-1])
    p, t = p - p.mean(0), t - t.mean(0)
    denom = np.sqrt((p**2).sum(0) * (t**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 1e-12, (p * t).sum(0) / np.where(denom > 0, denom, 1), np.nan)


def idm_scores(model: TransformerIDM, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """Pearson r (mean over the action dims with variance, and per dim) and Smooth-L1 of the IDM on (x, y)."""
    pred = predict_idm(model, x)
    r = pearson_per_dim(pred.numpy(), y.numpy())
    return {
        "pearson_r": float(np.nanmean(r)) if np.isfinite(r).any() else float("nan"),
        "pearson_r_per_dim": r.tolist(),
        "smooth_l1": float(F.smooth_l1_loss(pred, y)),
        "windows": len(x),
    }


def idm_recoverability(
    train: tuple[list[torch.Tensor], list[torch.Tensor]],
    real: list[torch.Tensor],
    imagined: list[torch.Tensor],
    actions: list[torch.Tensor],
    *,
    ks: list[int],
    context: int,
    cfg: IDMConfig,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """Train one IDM per k on `train` (latents, actions); score it on real vs imagined held-out sequences.

    `real[i]` / `imagined[i]` are the same episode's latent sequences (the first `context` frames real in
    both); windows start at frame context - 1 so every target frame is generated in the imagined one. The
    copy-last baseline (the last context frame repeated) shows what r a model that ignores actions gets.
    """
    values: dict[str, Any] = {}
    for k in ks:
        x_tr, y_tr = idm_windows(*train, k)
        model = train_idm(x_tr, y_tr, cfg, device, progress)
        block: dict[str, Any] = {"train_windows": len(x_tr)}
        try:
            x_real, y = idm_windows(real, actions, k, start=context - 1)
        except ConfigError as err:
            values[f"k{k}"] = f"unavailable: {err}"
            continue
        x_wm, _ = idm_windows(imagined, actions, k, start=context - 1)
        copy = [
            torch.cat((z[:context], z[context - 1 : context].expand(len(z) - context, *z.shape[1:])))
            for z in real
        ]
        x_copy, _ = idm_windows(copy, actions, k, start=context - 1)
        block["real"] = idm_scores(model, x_real, y)
        block["world_model"] = idm_scores(model, x_wm, y)
        block["drop"] = block["real"]["pearson_r"] - block["world_model"]["pearson_r"]
        block["baseline"] = {"copy_last": idm_scores(model, x_copy, y)}
        values[f"k{k}"] = block
    return {"values": values, "settings": asdict(cfg) | {"ks": list(ks), "loss": "smooth_l1"}}
