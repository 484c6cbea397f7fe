"""PushT state read back from imagined frames: block-pose error on the steps where the block is pushed.

Why: pixel metrics reward a model that never moves the block (most PushT frames are static), and an agent
that follows the action is easy; contact is the hard part (cpu-feasibility.md). So the frames of each video
go through one state estimator (`predict_state(images [B, 3, 96, 96]) -> [B, 5]`: agent x, y, block x, y,
theta, simulator units), and the block error is averaged over the steps where the real block moved. The
estimator's error on the real frames (after the same resizing) is the floor; the copy-last video the baseline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

#: frames float [B, 3, 96, 96] in [0, 1] -> states [B, 5]
StateReader = Callable[[torch.Tensor], torch.Tensor]


def load_reader(env: str, directory: str | None = None) -> tuple[StateReader | None, str]:
    """`env`'s state estimator in `directory` (default: the shipped one) and where it came from, or
    (None, "unavailable: why and how to provide it")."""
    from policies.errors import PolicyError
    from wmeval.envs.registry import get_task

    task = get_task(env, key="state.env")
    try:
        estimator = task.estimator(directory)
    except PolicyError as err:
        return None, f"unavailable: {err}"
    return estimator.predict_state, str(directory or task.shipped_estimator)


@torch.no_grad()
def read_states(reader: StateReader, frames: np.ndarray, size: int = 96, batch_size: int = 256) -> np.ndarray:
    """States [N, T, 5] of frames float [N, T, 3, H, W], resized to the estimator's `size` first."""
    x = torch.from_numpy(np.ascontiguousarray(frames, np.float32)).flatten(0, 1)
    out = []
    for i in range(0, len(x), batch_size):
        batch = x[i : i + batch_size]
        if batch.shape[-1] != size or batch.shape[-2] != size:
            batch = F.interpolate(batch, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
        out.append(reader(batch).double().cpu())
    return torch.cat(out).numpy().reshape(*frames.shape[:2], -1)


def pushed_steps(states: np.ndarray, context: int, min_px: float = 1.0, min_deg: float = 0.5) -> np.ndarray:
    """[N, H] True where the real block moved (position > min_px or angle > min_deg) into each target frame."""
    moved = np.linalg.norm(np.diff(states[:, context - 1 :, 2:4], axis=1), axis=-1)
    turned = np.degrees(np.abs(_wrap(np.diff(states[:, context - 1 :, 4], axis=1))))
    return (moved > min_px) | (turned > min_deg)


def state_errors(
    reader: StateReader,
    states: np.ndarray,
    videos: dict[str, np.ndarray],
    context: int,
    *,
    min_px: float = 1.0,
    min_deg: float = 0.5,
) -> dict[str, Any]:
    """Block-pose error on pushed steps and agent error on all steps, per video, vs the recorded `states`.

    `states [N, C + H, 5]` are the real states at the world-model frames; `videos[name]` frames [N, C + H, ...]
    (the first C real). Errors are in simulator units (the arena is 512 wide) and degrees.
    """
    true = states[:, context:]
    pushed = pushed_steps(states, context, min_px, min_deg)
    values: dict[str, Any] = {}
    for name, frames in videos.items():
        est = read_states(reader, frames[:, context:])
        block_err = np.linalg.norm(est[..., 2:4] - true[..., 2:4], axis=-1)
        angle_err = np.degrees(np.abs(_wrap(est[..., 4] - true[..., 4])))
        agent_err = np.linalg.norm(est[..., :2] - true[..., :2], axis=-1)
        count = pushed.sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            by_step = np.where(count > 0, (block_err * pushed).sum(0) / count, np.nan)
        values[name] = {
            "block_px_pushed": float(block_err[pushed].mean()) if pushed.any() else float("nan"),
            "block_deg_pushed": float(angle_err[pushed].mean()) if pushed.any() else float("nan"),
            "block_px_all": float(block_err.mean()),
            "agent_px": float(agent_err.mean()),
            "by_step": {"block_px_pushed": by_step.tolist(), "agent_px": agent_err.mean(0).tolist()},
        }
    return {
        "values": values,
        "pushed_steps": int(pushed.sum()),
        "steps": int(pushed.size),
        "settings": {
            "push_min_px": min_px,
            "push_min_deg": min_deg,
            "units": "simulator px (arena 512) / deg",
        },
    }


def _wrap(angle: np.ndarray) -> np.ndarray:
    return np.angle(np.exp(1j * angle))
