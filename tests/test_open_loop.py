import numpy as np
import pytest

from tests.wm_fixtures import tiny_world_model
from wmeval.metrics.open_loop import open_loop_psnr, open_loop_rollouts, open_loop_state_errors, psnr


def test_psnr_of_identical_frames_is_inf_unless_capped():
    x = np.random.default_rng(0).random((2, 3, 4, 4))
    assert np.isinf(psnr(x, x)).all()
    assert psnr(x, x, max_db=100.0).tolist() == [100.0, 100.0]
    assert psnr(x, np.clip(x + 0.1, 0, 1)).max() < 21


def _episodes(n: int = 2, length: int = 9) -> list[dict]:
    rng = np.random.default_rng(0)
    return [
        {
            "frames": rng.integers(0, 255, (length, 32, 32, 3), dtype=np.uint8),
            "actions": rng.uniform(0, 32, (length, 2)).astype(np.float32),
        }
        for _ in range(n)
    ]


def test_open_loop_rollouts_and_baselines():
    wm = tiny_world_model(sim_steps_per_frame=2)
    rollouts = open_loop_rollouts(wm, _episodes(), horizon=3)
    assert rollouts["real"].shape == rollouts["imagined"].shape == (2, 4, 3, 32, 32)
    assert np.array_equal(rollouts["real"][:, 0], rollouts["imagined"][:, 0])
    scores = open_loop_psnr(rollouts)
    assert scores["horizon"] == 3 and len(scores["psnr_model_by_step"]) == 3


def test_state_errors_compare_the_model_with_copying_the_start_frame():
    """A reader that returns each frame's mean intensity as every state component."""
    rng = np.random.default_rng(1)
    real = rng.random((2, 4, 3, 8, 8)).astype(np.float32)
    perfect = {"real": real, "imagined": real.copy()}

    def reader(frames: np.ndarray) -> np.ndarray:
        return np.repeat(frames.reshape(len(frames), -1).mean(1, keepdims=True), 5, axis=1).astype(float)

    errors = open_loop_state_errors(perfect, reader, frame_size=(8, 8))
    assert errors["agent_err_px_model"] == pytest.approx(0.0)
    assert errors["agent_err_px_copy_last"] > 0
