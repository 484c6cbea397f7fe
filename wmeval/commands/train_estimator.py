"""`wmeval train-estimator`: train the PushT state estimator on simulator-rendered frames and report its
held-out errors (the image-based policies and the state-probe judge use it)."""

from __future__ import annotations

import json
import time
from typing import Any

import torch
from omegaconf import DictConfig

from wmeval.errors import ConfigError
from wmeval.io import atomic_path, prepare_out_dir


def run(cfg: DictConfig) -> dict[str, Any]:
    if cfg.env != "pusht":
        raise ConfigError(f"env={cfg.env!r} has no state estimator: only env=pusht")
    for key in ("frames", "val_frames", "epochs", "batch_size"):
        if int(cfg[key]) <= 0:
            raise ConfigError(f"{key}={cfg[key]} must be positive")
    from policies.pusht.state_estimator import estimator_errors, train_state_estimator
    from wmeval.envs.pusht_frames import random_state_frames

    out = prepare_out_dir(cfg.out, "train-estimator", overwrite=bool(cfg.overwrite))
    torch.set_num_threads(int(cfg.threads))
    start = time.time()
    frames, states = random_state_frames(int(cfg.frames), seed=int(cfg.seed), progress=True)
    val_frames, val_states = random_state_frames(int(cfg.val_frames), seed=int(cfg.seed) + 1_000_003)
    model = train_state_estimator(
        frames,
        states,
        epochs=int(cfg.epochs),
        batch_size=int(cfg.batch_size),
        lr=float(cfg.lr),
        seed=int(cfg.seed),
    )
    metrics = {
        "held_out": estimator_errors(model, val_frames, val_states),
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
