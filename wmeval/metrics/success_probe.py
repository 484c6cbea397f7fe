"""Trajectory-success probe metrics: how much success-relevant information survives imagination.

Why: a probe trained on real episodes' latents to predict success, then applied to the world
model's rollouts of held-out episodes; the balanced accuracy drop from real to imagined is what generation
loses. Uses the project's `TrajectoryProbe` (linear, time-pooled 4x4 `grid_pool` features) so the numbers are
the same judge's. The copy-last rollout (the start frame held) and chance (0.5) are the baselines. Episodes
with language instructions condition the probe on them (`wmeval.judges.language`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from wmeval.judges.language import TEXT_DIM, mismatched_negatives, with_instruction
from wmeval.judges.trajectory_probe import TrajectoryProbe, grid_pool


def probe_features(latents: torch.Tensor | np.ndarray, grid: int = 4) -> np.ndarray:
    """Per-frame probe features of one episode's latents [T, h, w, C] -> [T, grid * grid * C]."""
    z = latents.numpy() if isinstance(latents, torch.Tensor) else np.asarray(latents)
    return grid_pool(z.astype(np.float64), grid=min(grid, z.shape[1], z.shape[2]))


def fit_probe(
    train: Sequence[np.ndarray],
    labels: Sequence[bool],
    tasks: Sequence[str] | None = None,
    *,
    C: float = 1.0,
    mismatch_negatives: bool = True,
    seed: int = 0,
) -> tuple[TrajectoryProbe, dict[str, Any]]:
    """A probe on per-episode features [T, F], conditioned on the instruction when the episodes have two or
    more (`tasks`), with mismatched-instruction negatives when asked. Returns the probe and what it used."""
    y = [bool(v) for v in labels]
    use_text = tasks is not None and len(set(tasks)) > 1
    language: dict[str, Any] = {"conditioned": use_text, "instructions": len(set(tasks or []))}
    feats = list(train)
    if use_text:
        feats = [with_instruction(f, t) for f, t in zip(train, tasks, strict=True)]
        if mismatch_negatives:
            neg, neg_tasks = mismatched_negatives(train, tasks, y, seed)
            feats += [with_instruction(f, t) for f, t in zip(neg, neg_tasks, strict=True)]
            y += [False] * len(neg)
            language["mismatch_negatives"] = len(neg)
        language["features"] = f"hashed bag of words, {TEXT_DIM} dims, appended to every frame (additive)"
    return TrajectoryProbe(C=C).fit(feats, np.asarray(y, float)), language


def probe_inputs(
    features: Sequence[np.ndarray], tasks: Sequence[str] | None, language: dict[str, Any]
) -> list[np.ndarray]:
    """Features as the probe was trained on them: with the instruction appended when it was conditioned."""
    if not language["conditioned"]:
        return list(features)
    return [with_instruction(f, t) for f, t in zip(features, tasks, strict=True)]


def success_probe(
    train: Sequence[np.ndarray],
    train_labels: Sequence[bool],
    heldout: dict[str, Sequence[np.ndarray]],
    labels: Sequence[bool],
    *,
    C: float = 1.0,
    train_tasks: Sequence[str] | None = None,
    heldout_tasks: Sequence[str] | None = None,
    mismatch_negatives: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit on `train` features (one [T, F] array per episode), evaluate on each held-out set (same episodes).

    Returns balanced accuracy and ROC-AUC per set (`real`, `world_model`, `copy_last`) and the drop from real
    to world model; "unavailable: ..." when the training episodes are all one class. With instructions
    (`train_tasks`, `heldout_tasks`) the probe is conditioned on them (see `wmeval.judges.language`).
    """
    y = np.asarray(train_labels, dtype=float)
    if np.unique(y).size < 2:
        outcome = "successes" if y.size and y[0] else "failures"
        return {
            "values": f"unavailable: the {y.size} training episodes are all {outcome}; the probe needs both "
            "(record more varied episodes, e.g. policy=family)"
        }
    probe, language = fit_probe(train, y, train_tasks, C=C, mismatch_negatives=mismatch_negatives, seed=seed)
    values: dict[str, Any] = {
        name: probe.evaluate(probe_inputs(feats, heldout_tasks, language), labels)
        for name, feats in heldout.items()
    }
    if "real" in values and "world_model" in values:
        values["drop"] = values["real"]["balanced_accuracy"] - values["world_model"]["balanced_accuracy"]
    values["chance_balanced_accuracy"] = 0.5
    return {
        "values": values,
        "train_episodes": int(y.size),
        "train_positive": int(y.sum()),
        "settings": {
            "probe": "TrajectoryProbe (linear; mean/last/max pooling over time)",
            "C": C,
            "grid": 4,
            "language": language,
        },
    }
