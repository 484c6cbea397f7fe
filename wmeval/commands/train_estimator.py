"""`wmeval train-estimator`: train an env's state estimator on simulator-rendered frames and report its
held-out errors (the image-based policies and the frame judge use it)."""

from __future__ import annotations

import json
import time
from typing import Any

import torch
from omegaconf import DictConfig

from wmeval.envs.registry import get_task
from wmeval.errors import ConfigError
from wmeval.io import atomic_path, prepare_out_dir


def run(cfg: DictConfig) -> dict[str, Any]:
    task = get_task(cfg.env)
    if task.train_estimator is None:
        raise ConfigError(f"env={cfg.env!r} has no state estimator to train")
    for key in ("frames", "val_frames", "epochs", "batch_size"):
        if int(cfg[key]) <= 0:
            raise ConfigError(f"{key}={cfg[key]} must be positive")
    out = prepare_out_dir(cfg.out, "train-estimator", overwrite=bool(cfg.overwrite))
    torch.set_num_threads(int(cfg.threads))
    start = time.time()
    model, held_out = task.train_estimator(
        int(cfg.frames),
        int(cfg.val_frames),
        epochs=int(cfg.epochs),
        batch_size=int(cfg.batch_size),
        lr=float(cfg.lr),
        seed=int(cfg.seed),
    )
    metrics = {
        "held_out": held_out,
        "train_frames": int(cfg.frames),
        "epochs": int(cfg.epochs),
        "seed": int(cfg.seed),
        "seconds": round(time.time() - start, 1),
    }
    with atomic_path(out) as tmp:
        model.save_pretrained(tmp, metrics=metrics)
    print(json.dumps(metrics["held_out"], indent=2))
    print(f"saved to {out}")
    return metrics
