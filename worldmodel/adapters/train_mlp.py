"""Train the `mlp` adapter on cached latents: per-token reconstruction MSE + cosine (the paper's loss,
without the S-VAE's KL, spectral and pixel terms, which this deterministic adapter does not have).

Wide semantic features have channels of very different scale, and an unnormalised MSE would only fit the
loudest ones: either normalise the latents first, or pass `normalize_input=True`, which measures per-channel
statistics on the training tokens and stores them in the adapter (it then takes raw encoder latents).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from worldmodel.adapters import save_adapter
from worldmodel.adapters.mlp import MLPAdapter
from worldmodel.errors import InputError
from worldmodel.training.results import TrainResult


@dataclass
class MLPAdapterTrainResult(TrainResult):
    """Summary of a run; `explained_variance` = 1 - MSE / Var on held-out tokens (1 is perfect)."""

    out_dir: str | None
    steps: int
    final_loss: float
    holdout_mse: float
    holdout_cosine: float
    explained_variance: float
    num_train_tokens: int
    num_holdout_tokens: int
    seconds: float
    loss_history: list[float] = field(default_factory=list)
    adapter: MLPAdapter | None = field(default=None, repr=False)


def train_mlp_adapter(
    latents: np.ndarray | torch.Tensor | Sequence[np.ndarray],
    latent_dim: int,
    hidden_dim: int | None = None,
    steps: int = 2000,
    batch_size: int = 1024,
    lr: float = 1e-3,
    seed: int = 0,
    out_dir: str | Path | None = None,
    progress: bool = True,
    *,
    cos_weight: float = 1.0,
    holdout: float = 0.05,
    device: str | torch.device | None = None,
    normalize_input: bool = False,
) -> MLPAdapterTrainResult:
    """Fit a fresh `MLPAdapter(D -> latent_dim)` on latents `[..., D]` (every token is one sample).

    `batch_size` counts tokens. Deterministic for a seed on CPU. Saves with `save_adapter` when `out_dir` is set.
    """
    tokens = _tokens(latents)
    if len(tokens) < 2 or not 0.0 < holdout < 1.0 or steps < 1 or batch_size < 1:
        raise InputError("need >= 2 tokens, 0 < holdout < 1, and positive steps and batch_size")
    dev = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(tokens)))
    n_held = max(1, int(round(holdout * len(tokens))))
    held, train = tokens[order[:n_held]], tokens[order[n_held:]]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        adapter = MLPAdapter(tokens.shape[-1], latent_dim, hidden_dim, input_norm=normalize_input)
    if normalize_input:
        adapter.set_input_statistics(train.mean(0), train.std(0, unbiased=False))
    adapter.to(dev).train()
    opt = torch.optim.AdamW(adapter.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0)))
    )
    gen = torch.Generator().manual_seed(seed)
    history: list[float] = []
    start = time.perf_counter()
    bar = tqdm(range(steps), desc="train mlp adapter", disable=not progress, dynamic_ncols=True)
    for step in bar:
        x = train[torch.randint(0, len(train), (min(batch_size, len(train)),), generator=gen)].to(dev)
        loss = _loss(adapter, x, cos_weight)[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(adapter.parameters(), 1.0)
        opt.step()
        sched.step()
        history.append(float(loss.detach()))
        if step % 20 == 0 or step == steps - 1:
            bar.set_postfix(loss=f"{history[-1]:.4f}")
    seconds = time.perf_counter() - start
    adapter.eval()
    with torch.inference_mode():
        x = held.to(dev)
        _, mse, cos = _loss(adapter, x, cos_weight)
        var = float(adapter.normalize_input(x).var(dim=0, unbiased=False).mean())
    adapter.to("cpu")
    if out_dir is not None:
        save_adapter(adapter, out_dir)
    return MLPAdapterTrainResult(
        out_dir=None if out_dir is None else str(out_dir),
        steps=steps,
        final_loss=float(np.mean(history[-max(1, steps // 20) :])),
        holdout_mse=float(mse),
        holdout_cosine=float(cos),
        explained_variance=1.0 - float(mse) / max(var, 1e-12),
        num_train_tokens=len(train),
        num_holdout_tokens=len(held),
        seconds=seconds,
        loss_history=history,
        adapter=adapter,
    )


def _loss(
    adapter: MLPAdapter, x: torch.Tensor, cos_weight: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = adapter.normalize_input(x)
    recon = adapter.decode_normalized(adapter.encoder(x))
    mse = F.mse_loss(recon, x)
    cos = F.cosine_similarity(recon, x, dim=-1, eps=1e-6).mean()
    return mse + cos_weight * (1.0 - cos), mse, cos


def _tokens(latents: np.ndarray | torch.Tensor | Sequence[np.ndarray]) -> torch.Tensor:
    """Any `[..., D]` array (or a list of them, e.g. one per cached episode) -> float32 `[M, D]`."""
    if isinstance(latents, (list, tuple)):
        parts = [torch.as_tensor(np.asarray(a)).reshape(-1, np.shape(a)[-1]) for a in latents]
        if len({p.shape[-1] for p in parts}) > 1:
            raise InputError("all latent arrays must have the same channel count D")
        return torch.cat(parts).float()
    t = torch.as_tensor(latents)
    if t.ndim < 2:
        raise InputError(f"latents must be [..., D] with at least two dims, got shape {tuple(t.shape)}")
    return t.reshape(-1, t.shape[-1]).float()
