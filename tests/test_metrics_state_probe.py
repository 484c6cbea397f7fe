"""PushT state read-out errors on pushed steps, and the success-probe block, with known answers."""

from __future__ import annotations

import numpy as np
import torch

from wmeval.metrics.state import pushed_steps, state_errors
from wmeval.metrics.success_probe import probe_features, success_probe


def _reader(images: torch.Tensor) -> torch.Tensor:
    """A stand-in estimator: block x = 512 * the frame's mean brightness, everything else 0."""
    x = images.mean(dim=(1, 2, 3)) * 512
    zeros = torch.zeros_like(x)
    return torch.stack([zeros, zeros, x, zeros, zeros], -1)


def test_block_error_counts_only_pushed_steps_and_copy_last_is_worse():
    # block x per frame (context = 1): still, pushed by 64, still, pushed by 64
    xs = np.array([[128.0, 128.0, 192.0, 192.0, 256.0]])
    states = np.zeros((1, 5, 5))
    states[..., 2] = xs
    real = np.broadcast_to((xs / 512)[:, :, None, None, None], (1, 5, 3, 8, 8)).astype(np.float32)
    copy = np.broadcast_to(real[:, :1], real.shape)
    assert pushed_steps(states, context=1).tolist() == [[False, True, False, True]]
    out = state_errors(_reader, states, {"real_frames": real, "copy_last": copy}, context=1)
    assert out["pushed_steps"] == 2 and out["steps"] == 4
    assert out["values"]["real_frames"]["block_px_pushed"] < 1e-3
    assert np.isclose(out["values"]["copy_last"]["block_px_pushed"], (64 + 128) / 2, atol=1e-3)
    by_step = out["values"]["copy_last"]["by_step"]["block_px_pushed"]
    assert np.isnan(by_step[0]) and np.isclose(by_step[3], 128, atol=1e-3)


def test_success_probe_separates_and_reports_the_drop():
    rng = np.random.default_rng(0)

    def episode(success: bool) -> np.ndarray:
        z = rng.normal(size=(5, 4, 4, 3))
        z[..., 0] += 2.0 if success else -2.0
        return probe_features(z)

    labels = [True, False] * 6
    train = [episode(s) for s in labels]
    held = [True, False, True, False]
    real = [episode(s) for s in held]
    blind = [probe_features(rng.normal(size=(5, 4, 4, 3))) for _ in held]
    out = success_probe(train, labels, {"real": real, "world_model": blind}, held)
    assert out["values"]["real"]["balanced_accuracy"] == 1.0 and out["values"]["real"]["roc_auc"] == 1.0
    assert out["values"]["drop"] == 1.0 - out["values"]["world_model"]["balanced_accuracy"]
    assert success_probe(train[:2:2] * 2, [False, False], {"real": real}, held)["values"].startswith(
        "unavailable"
    )
