"""PCK: identical videos agree perfectly; LK recovers a known translation; CoTracker is never downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wmeval.errors import ConfigError
from wmeval.metrics.pck import LucasKanadeTracker, PCKConfig, make_tracker, pck, query_grid


def _texture(size: int = 96, seed: int = 0) -> np.ndarray:
    import cv2

    noise = np.random.default_rng(seed).random((size, size, 3)).astype(np.float32)
    return (cv2.GaussianBlur(noise, (0, 0), 1.5) * 255).clip(0, 255).astype(np.uint8)


def _translated(frames: int = 6, shift=(1.0, 0.5), size: int = 64) -> np.ndarray:
    """A textured image moving by `shift` (dx, dy) px per frame, cropped from a larger canvas (no borders)."""
    import cv2

    canvas = _texture(size + 32)
    out = []
    for t in range(frames):
        m = np.float32([[1, 0, -16 + shift[0] * t], [0, 1, -16 + shift[1] * t]])
        out.append(cv2.warpAffine(canvas, m, (size, size), flags=cv2.INTER_LINEAR))
    return np.stack(out)


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def test_query_grid_has_the_margin():
    q = query_grid(64, 64, n=16, margin=0.02)
    assert q.shape == (256, 2)
    assert q.min() == pytest.approx(0.02 * 63) and q.max() == pytest.approx(0.98 * 63)


def test_lk_recovers_a_known_translation():
    video = _translated(shift=(1.0, 0.5))
    queries = query_grid(64, 64, n=8, margin=0.2)
    tracks, visible = LucasKanadeTracker(scale=0.5).track(video, queries)
    assert visible[-1].mean() > 0.9
    moved = tracks[-1][visible[-1]] - queries[visible[-1]]
    assert np.allclose(np.median(moved, 0), [5.0, 2.5], atol=0.25)
    assert np.abs(moved - [5.0, 2.5]).max() < 1.0


def test_identical_videos_give_pck_one_and_a_wrong_video_less(empty_hub):
    real = _translated(frames=5)[None]
    still = np.repeat(real[:, :1], 5, axis=1)
    out = pck(real, {"model": real.copy(), "copy_last": still}, context=1, cfg=PCKConfig(grid=8))
    model, copy = out["values"]["model"], out["values"]["copy_last"]
    assert out["tracker"] == "opencv_lucas_kanade" and "CoTracker not used" in out["tracker_note"]
    for key in ("pck@5", "pck@10", "pck@20", "pck@40"):
        assert model[key] == 1.0
    assert model["coverage"] == model["coverage_real"] > 0.6  # points near the leading edges leave the frame
    assert copy["pck@5"] < 0.5  # the still video's points stay put while the real ones move 1.25-5 px
    assert len(model["by_step"]["pck@5"]) == 4
    assert out["thresholds_px"]["pck@5"] == pytest.approx(5 * 64 / 256)


def test_cotracker_is_only_used_from_the_cache(empty_hub):
    tracker, note = make_tracker(PCKConfig(tracker="cotracker"), 64)
    assert tracker.name == "opencv_lucas_kanade" and "not in" in note


@pytest.fixture
def cotracker_hub(empty_hub, tmp_path):
    """A tiny CoTracker in the torch.hub cache layout: repository with hubconf.py, checkpoint under checkpoints/."""
    import shutil

    import torch

    hub = tmp_path / "torch" / "hub"
    repo = hub / "facebookresearch_co-tracker_main"
    repo.mkdir(parents=True)
    shutil.copy(Path(__file__).with_name("tiny_cotracker_hubconf.py"), repo / "hubconf.py")
    (hub / "checkpoints").mkdir()
    torch.save({"velocity": torch.tensor([1.5, -0.5])}, hub / "checkpoints" / "cotracker2.pth")
    return hub


def test_cotracker_from_the_hub_cache_loads_its_checkpoint_and_tracks(cotracker_hub):
    tracker, note = make_tracker(PCKConfig(tracker="cotracker"), 64)
    assert tracker.name == "cotracker:cotracker2" and "local torch.hub cache" in note
    video = _translated(frames=4)
    queries = query_grid(64, 64, n=4)
    tracks, visible = tracker.track(video, queries)
    assert tracks.shape == (4, 16, 2) and visible.shape == (4, 16) and visible.dtype == bool
    # the checkpoint's velocity, not the untrained zeros: the weights came from <hub dir>/checkpoints
    np.testing.assert_allclose(tracks[3] - queries, np.tile([4.5, -1.5], (16, 1)), atol=1e-5)


def test_pck_runs_through_the_cached_cotracker(cotracker_hub):
    real = _translated(frames=4)[None]
    out = pck(real, {"model": real.copy()}, context=1, cfg=PCKConfig(grid=4))
    assert out["tracker"] == "cotracker:cotracker2" and out["values"]["model"]["pck@5"] == 1.0
    assert out["values"]["model"]["coverage"] == 1.0


def test_cotracker_online_models_are_refused(cotracker_hub):
    with pytest.raises(ConfigError, match="online models track in windows"):
        make_tracker(PCKConfig(tracker="auto", cotracker_model="cotracker3_online"), 64)
