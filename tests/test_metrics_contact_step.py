"""`contact_step`: one imagined frame from real context wherever the real block moves. A model that holds the
last frame never moves the block (length 0, error = the real move); the real frames read back exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wmeval.metrics.contact_step import contact_samples, contact_step
from worldmodel.baselines import CopyLastFrameWorldModel

K, SIZE, LEVEL_PX = 2, 8, 512 / 255


def _episode() -> dict[str, np.ndarray]:
    """13 recorded steps: the block (red level = x) rests for 6 steps, then moves 3 levels (6 px) per step."""
    red = np.array([100] * 6 + [100 + 3 * i for i in range(1, 8)])
    frames = np.zeros((len(red), SIZE, SIZE, 3), np.uint8)
    frames[..., 0], frames[..., 1] = red[:, None, None], 50
    states = np.zeros((len(red), 5))
    states[:, 2], states[:, 3] = red * LEVEL_PX, 50 * LEVEL_PX
    return {"frames": frames, "actions": np.zeros((len(red), 2), np.float32), "states": states}


def _reader(images: torch.Tensor) -> torch.Tensor:
    """Block x, y from the frame's mean red and green levels."""
    out = torch.zeros(len(images), 5)
    out[:, 2], out[:, 3] = images[:, 0].mean((1, 2)) * 512, images[:, 1].mean((1, 2)) * 512
    return out


def test_only_frames_where_the_block_moves_far_enough_are_sampled() -> None:
    ep = _episode()
    assert [t for _, t in contact_samples([ep], K, context=1, min_px=10.0)] == [3, 4, 5]  # 12 px per frame
    assert [t for _, t in contact_samples([ep], K, context=1, min_px=5.0)] == [2, 3, 4, 5]  # the first 6 px


def test_a_model_that_holds_the_frame_never_pushes_and_the_real_frames_read_back() -> None:
    wm = CopyLastFrameWorldModel((SIZE, SIZE), raw_action_dim=2, sim_steps_per_frame=K)
    out = contact_step(wm, _reader, [_episode()], context=1, min_px=10.0)
    assert out["samples"] == 3
    assert out["real_px"] == pytest.approx(6 * LEVEL_PX)  # 3 levels per step, 2 steps per frame
    assert out["model"]["length_ratio_median"] == pytest.approx(0.0, abs=1e-4)
    assert out["model"]["block_px"] == pytest.approx(out["real_px"], rel=1e-4)
    assert out["real_frames"]["length_ratio_median"] == pytest.approx(1.0, rel=1e-4)
    assert out["real_frames"]["cosine_median"] == pytest.approx(1.0, rel=1e-4)
    assert out["real_frames"]["block_px"] == pytest.approx(0.0, abs=1e-2)


def test_no_moving_block_is_said_not_averaged() -> None:
    wm = CopyLastFrameWorldModel((SIZE, SIZE), raw_action_dim=2, sim_steps_per_frame=K)
    out = contact_step(wm, _reader, [_episode()], context=1, min_px=100.0)
    assert out["samples"] == 0 and "100.0 px" in out["note"]


def test_the_metrics_sampler_steps_reach_the_generated_frame() -> None:
    class Recording(CopyLastFrameWorldModel):
        def step(self, actions: torch.Tensor, num_steps: int | None = None) -> torch.Tensor:
            self.seen = num_steps
            return super().step(actions, num_steps)

    wm = Recording((SIZE, SIZE), raw_action_dim=2, sim_steps_per_frame=K)
    contact_step(wm, _reader, [_episode()], context=1, min_px=10.0, num_steps=7)
    assert wm.seen == 7
