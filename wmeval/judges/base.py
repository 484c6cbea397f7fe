"""What every judge shares: its error type and how it reads an episode's frames.

Episodes may be dicts (`Rollouts.episode(i)`) or any object with the same attributes, so rollout code can hand
over its own records unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from wmeval.errors import WmevalError


class JudgeError(WmevalError, ValueError):
    """An episode or a judge's configuration that cannot be scored."""


def episode_field(episode: Any, name: str) -> Any:
    """Read `name` from a mapping or any object with that attribute (None if absent)."""
    if isinstance(episode, Mapping):
        return episode.get(name)
    return getattr(episode, name, None)


def episode_frames(episode: Any) -> np.ndarray:
    """The episode's frames as uint8 [T, H, W, 3], or a JudgeError naming what is wrong."""
    frames = episode_field(episode, "frames")
    if frames is None:
        raise JudgeError("episode has no frames: pixel judges need frames uint8 [T, H, W, 3]")
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise JudgeError(f"episode frames must be [T, H, W, 3] with T >= 1, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise JudgeError(f"episode frames must be uint8, got {frames.dtype}: convert with (x * 255).astype")
    return frames
