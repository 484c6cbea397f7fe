"""Recorded frames -> the world model's input frames: uint8 HWC as simulators and LeRobot store them, to float
CHW in [0, 1] at the model's resolution (`WorldModel.image_size`)."""

from __future__ import annotations

import numpy as np
import torch

from worldmodel.encoders.common import resize_frames


def to_model_frames(frames: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """uint8 `[..., H, W, 3]` -> float `[..., 3, h, w]` in [0, 1] at the world model's resolution."""
    lead = frames.shape[:-3]
    x = torch.from_numpy(frames.reshape(-1, *frames.shape[-3:])).permute(0, 3, 1, 2).float() / 255.0
    x = resize_frames(x, size).clamp(0, 1)
    return x.reshape(*lead, 3, *size)
