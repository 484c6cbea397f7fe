"""One imagined frame from real context wherever the real block moves: as far, and the same way?

Why: an open-loop error mixes one frame's shortfall with its compounding. A model that answers every push too
weakly drifts behind the block, its next pushes meet the block at other points, and its long-horizon
error then looks like a model that never pushes at all. Generating single frames from real context at every
frame where the real block moved separates the two: the imagined displacement's length over the real one (1 is
right, 0 never pushes) and the cosine between them (1 is the right direction).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from wmeval.metrics.state import StateReader, read_states
from worldmodel import WorldModel
from worldmodel.data.actions import step_actions
from worldmodel.data.frames import to_model_frames


def contact_samples(
    episodes: list[dict[str, Any]], k: int, context: int, min_px: float
) -> list[tuple[dict[str, Any], int]]:
    """(episode, world-model frame t) where the real block moves more than `min_px` from frame t to t + 1."""
    samples = []
    for ep in episodes:
        frames = (len(ep["actions"]) - 1) // k  # frame t + 1 needs recorded step (t + 1) k
        for t in range(context - 1, frames):
            if np.linalg.norm(ep["states"][(t + 1) * k, 2:4] - ep["states"][t * k, 2:4]) > min_px:
                samples.append((ep, t))
    return samples


@torch.no_grad()
def contact_step(
    wm: WorldModel,
    reader: StateReader,
    episodes: list[dict[str, Any]],
    context: int,
    *,
    min_px: float = 10.0,
    batch_size: int = 256,
    seed: int = 0,
    num_steps: int | None = None,
) -> dict[str, Any]:
    """Imagined vs real block displacement over one frame, from `context` real frames, where the block moved."""
    k = wm.config.sim_steps_per_frame
    samples = contact_samples(episodes, k, context, min_px)
    if not samples:
        return {"samples": 0, "note": f"no frame of these episodes moves the block more than {min_px} px"}
    real_move, model_move, floor_move = [], [], []
    for i in range(0, len(samples), batch_size):
        chunk = samples[i : i + batch_size]
        start = np.stack([ep["states"][t * k, 2:4] for ep, t in chunk])
        ctx = torch.stack(
            [
                to_model_frames(ep["frames"][(t - context + 1) * k : t * k + 1 : k], wm.image_size)
                for ep, t in chunk
            ]
        )
        raw = torch.stack(
            [torch.as_tensor(ep["actions"][t * k : (t + 1) * k], dtype=torch.float32) for ep, t in chunk]
        )
        wm.reset(ctx.to(wm.device), seed=seed + i)
        imagined = wm.step(step_actions(raw, k, wm.config.action_mode).to(wm.device), num_steps).cpu().numpy()
        real_next = torch.stack(
            [to_model_frames(ep["frames"][(t + 1) * k], wm.image_size) for ep, t in chunk]
        ).numpy()
        real_move.append(np.stack([ep["states"][(t + 1) * k, 2:4] for ep, t in chunk]) - start)
        model_move.append(read_states(reader, imagined)[:, 0, 2:4] - start)
        floor_move.append(read_states(reader, real_next[:, None])[:, 0, 2:4] - start)
    real, model, floor = (np.concatenate(x) for x in (real_move, model_move, floor_move))
    real_len = np.linalg.norm(real, axis=-1)

    def versus(moved: np.ndarray) -> dict[str, float]:
        length = np.linalg.norm(moved, axis=-1)
        cosine = (moved * real).sum(-1) / (real_len * np.maximum(length, 1e-9))
        return {
            "length_ratio_median": float(np.median(length / real_len)),
            "cosine_median": float(np.median(cosine)),
            "block_px": float(np.linalg.norm(moved - real, axis=-1).mean()),
        }

    return {
        "samples": len(samples),
        "real_px": float(real_len.mean()),
        "model": versus(model),
        "real_frames": versus(floor),
        "settings": {"min_px": min_px, "context_frames": context},
    }
