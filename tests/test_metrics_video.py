"""Video fidelity: known answers for identical videos, and LPIPS/FID/FVD refuse to run on random weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wmeval.metrics import backbones
from wmeval.metrics.video import (
    VideoConfig,
    mean_psnr,
    pooled_psnr,
    psnr_frames,
    ssim_frames,
    video_fidelity,
)

torch.set_num_threads(1)


def _video(seed: int, n: int = 2, t: int = 3, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).random((n, t, 3, size, size)).astype(np.float32)


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_identical_videos_give_inf_psnr_and_unit_ssim():
    real = _video(0)
    assert np.isinf(psnr_frames(real, real)).all()
    assert np.allclose(ssim_frames(real, real), 1.0)
    assert np.isinf(mean_psnr(psnr_frames(real, real)))
    noisy = np.clip(real + 0.05, 0, 1)
    p = psnr_frames(real, noisy)
    assert np.isfinite(p).all() and (p > 20).all() and (ssim_frames(real, noisy) < 1).all()
    # one identical frame among noisy ones: the mean stays finite (capped per frame)
    mixed = noisy.copy()
    mixed[0, 0] = real[0, 0]
    assert np.isfinite(mean_psnr(psnr_frames(real, mixed)))


def test_identical_frames_count_as_one_grey_level_of_error_not_more():
    """A baseline that copies static frames exactly must not outweigh its errors elsewhere."""
    one_level = 20 * np.log10(255)
    assert mean_psnr(np.array([np.inf, 30.0])) == pytest.approx((one_level + 30.0) / 2)
    # pooled: the mean squared error over both frames is half of the 30 dB frame's
    assert pooled_psnr(np.array([np.inf, 30.0])) == pytest.approx(30.0 + 10 * np.log10(2))
    assert np.isinf(pooled_psnr(np.array([np.inf, np.inf])))
    # an exact copy of one frame and 20 dB elsewhere loses to 35 dB everywhere, whichever way it is averaged
    copy, model = np.array([np.inf, 20.0, 20.0]), np.full(3, 35.0)
    assert mean_psnr(copy) < mean_psnr(model) and pooled_psnr(copy) < pooled_psnr(model)


def test_pretrained_metrics_are_unavailable_without_cached_weights(empty_hub):
    real = _video(0)
    out = video_fidelity(real, {"model": real, "copy_last": _video(1)}, VideoConfig())
    assert np.isinf(out["psnr"]["model"]) and out["ssim"]["model"] == pytest.approx(1.0)
    assert out["psnr"]["copy_last"] < 20 and len(out["psnr"]["by_step"]["model"]) == 3
    assert np.isinf(out["psnr"]["pooled"]["model"]) and out["psnr"]["pooled"]["copy_last"] < 20
    for metric, file in (("lpips", "alexnet"), ("fid", "inception_v3"), ("fvd", "r3d_18")):
        assert isinstance(out[metric], str) and out[metric].startswith("unavailable: "), out[metric]
        assert backbones.BACKBONES[file].filename in out[metric] and str(empty_hub) in out[metric]
    assert not empty_hub.exists() or not any(empty_hub.iterdir())  # nothing was downloaded


def test_a_configured_weights_path_that_is_missing_says_so(empty_hub, tmp_path):
    cfg = VideoConfig(metrics=["lpips"], weights={"alexnet": str(tmp_path / "nope.pth")})
    out = video_fidelity(_video(0), {"model": _video(1)}, cfg)
    assert out["lpips"].startswith("unavailable: ") and "nope.pth" in out["lpips"]


def test_cached_weights_are_loaded_from_the_hub_cache(empty_hub):
    """The loading path, with stand-in (random) checkpoints written where torch.hub keeps real ones."""
    from torchvision.models import alexnet
    from torchvision.models.video import r3d_18

    empty_hub.mkdir(parents=True)
    gen = torch.Generator().manual_seed(0)
    for name, build in (("alexnet", alexnet), ("r3d_18", r3d_18)):
        with torch.device("meta"):  # shapes only: skips the slow random init of the real constructor
            shapes = {k: v.shape for k, v in build(weights=None).state_dict().items()}
        state = {k: 0.05 * torch.randn(shape, generator=gen) for k, shape in shapes.items()}
        state = {k: v.abs() + 0.5 if "running_var" in k else v for k, v in state.items()}  # valid batch norms
        torch.save(state, empty_hub / backbones.BACKBONES[name].filename)
    real, other = _video(0, n=3, t=2), _video(1, n=3, t=2)
    cfg = VideoConfig(metrics=["lpips", "fvd"], fvd_frames=4, fvd_size=32)
    out = video_fidelity(real, {"model": real, "copy_last": other}, cfg)
    assert out["lpips"]["model"] == pytest.approx(0.0, abs=1e-6) and out["lpips"]["copy_last"] > 0
    assert out["fvd"]["model"] == pytest.approx(0.0, abs=1e-6) and out["fvd"]["copy_last"] > 0
    assert out["fvd"]["clips"] == 3
    assert out["fvd"]["backbone"]["network"] == "r3d_18" and out["lpips"]["backbone"]["network"] == "alexnet"


def _reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. (2004) by the formula, with scipy's Gaussian filter (sigma 1.5 truncated to 11x11) on the
    valid positions, per channel then averaged: an independent implementation to compare against."""
    from scipy.ndimage import gaussian_filter

    c1, c2, r = 0.01**2, 0.03**2, 5
    values = []
    for x, y in zip(a, b, strict=True):
        f = lambda v: gaussian_filter(v, 1.5, truncate=r / 1.5, mode="constant")[r:-r, r:-r]  # noqa: E731
        mx, my = f(x), f(y)
        sxx, syy, sxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
        s = (2 * mx * my + c1) * (2 * sxy + c2) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
        values.append(s.mean())
    return float(np.mean(values))


def test_ssim_is_the_gaussian_ssim_of_wang_et_al():
    real = _video(0, n=1, t=2)
    gen = np.clip(real + np.random.default_rng(3).normal(0, 0.1, real.shape), 0, 1)
    quantised = [np.round(np.clip(v, 0, 1) * 255) / 255 for v in (real, gen)]
    got = ssim_frames(real, gen)
    for t in range(2):
        want = _reference_ssim(quantised[0][0, t].astype(np.float64), quantised[1][0, t].astype(np.float64))
        assert got[0, t] == pytest.approx(want, abs=1e-4)


def test_frechet_distance_of_shifted_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert backbones.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert backbones.frechet_distance(a, a + 2.0) == pytest.approx(12.0, rel=1e-3)
