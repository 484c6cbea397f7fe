"""S-VAE adapter, its pixel decoder and losses, its trainer, and the DiT transfer helpers (init_from, freezing)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from worldmodel.adapters import build_adapter, load_adapter, save_adapter
from worldmodel.adapters.svae_losses import kl_weight_at, load_lpips, ms_ssim, spectral_loss
from worldmodel.adapters.train_svae import SVAETrainConfig, compute_losses, train_svae
from worldmodel.errors import InputError

PIX = {
    "base_channels": 8,
    "channel_multipliers": [1, 2],
    "num_res_blocks": 1,
    "attn_resolutions": [4],
    "attn_heads": 2,
    "norm_groups": 4,
}
ARCH = {"latent_dim": 4, "num_layers": 1, "num_heads": 2, "ffn_dim": 32}


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(pixel: bool = True, seed: int = 0):  # noqa: ANN201
    torch.manual_seed(seed)
    return build_adapter("svae", in_dim=16, **ARCH, pixel_decoder={**PIX, "grid": [4, 4]} if pixel else None)


def toy_data(n: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """16-d tokens on a 3-d subspace with channels of very different scale, and frames that depend on them."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(3, 16)) * np.geomspace(0.1, 10, 16)
    codes = rng.normal(size=(n, 4, 4, 3))
    latents = (codes @ basis + 5.0).astype(np.float32)
    frames = np.repeat(np.repeat(((np.tanh(codes) + 1) * 127.5).astype(np.uint8), 2, 1), 2, 2)
    return latents, frames  # frames [n, 8, 8, 3]


def test_shapes_layers_and_config_errors() -> None:
    ad = tiny()
    assert ad.latent_dim == 4 and ad.has_pixel_decoder and len(ad.enc_layers) == len(ad.dec_layers) == 1
    assert ad.to_moments.out_features == 8 and ad.from_latent.in_features == 4  # Linear D -> 2d, d -> D
    x = torch.randn(3, 4, 4, 16)
    with torch.no_grad():
        z = ad.eval().encode(x)
        frames = ad.decode_pixels(z)
    assert tuple(z.shape) == (3, 4, 4, 4) and tuple(ad.decode(z).shape) == (3, 4, 4, 16)
    assert tuple(frames.shape) == (3, 3, 8, 8) and 0 <= float(frames.min()) and float(frames.max()) <= 1
    assert not tiny(pixel=False).has_pixel_decoder
    with pytest.raises(NotImplementedError, match="no pixel decoder"):
        tiny(pixel=False).decode_pixels(z)
    with pytest.raises(InputError, match="num_heads=3 must divide"):
        build_adapter("svae", in_dim=16, num_heads=3)
    with pytest.raises(InputError, match="16 channels"):
        ad.encode(torch.randn(1, 4, 4, 15))
    big = build_adapter("svae", in_dim=24, num_heads=12)  # paper defaults: 3 layers, FFN 3072, d=96
    assert big.latent_dim == 96 and len(big.enc_layers) == 3
    assert big.enc_layers[0].linear1.out_features == 3072 and big.enc_layers[0].self_attn.num_heads == 12


def test_mean_at_eval_sample_in_training() -> None:
    ad = tiny(pixel=False)
    x = torch.randn(2, 4, 4, 16)
    with torch.no_grad():
        ad.eval()
        mu, logvar = ad.moments(ad.normalize_input(x))
        assert torch.equal(ad.encode(x), mu) and torch.equal(ad.encode(x), ad.encode(x))
        ad.train()
        a, b = ad.encode(x), ad.encode(x)
        assert not torch.allclose(a, b)
        draws = torch.stack([ad.encode(x) for _ in range(400)])
        assert torch.allclose(draws.mean(0), mu, atol=0.25)
        assert torch.allclose(draws.std(0), torch.exp(0.5 * logvar), rtol=0.25)


def test_kl_warms_up_linearly_over_the_first_fifth() -> None:
    assert kl_weight_at(0, 100, 1e-4) == 0.0
    assert kl_weight_at(10, 100, 1e-4) == pytest.approx(0.5e-4)
    assert kl_weight_at(20, 100, 1e-4) == pytest.approx(1e-4)
    assert kl_weight_at(99, 100, 1e-4) == pytest.approx(1e-4)
    ad, x = tiny(pixel=False).eval(), torch.randn(2, 4, 4, 16)  # eval: no sampling noise between the calls
    cfg = SVAETrainConfig(**ARCH, steps=100, cos_weight=0.0, spec_weight=0.0, kl_weight=1.0)
    with torch.no_grad():
        early, late = compute_losses(ad, x, None, cfg, 0), compute_losses(ad, x, None, cfg, 50)
    assert float(early["total"]) == pytest.approx(float(early["mse"]), rel=1e-5)
    assert float(late["total"]) == pytest.approx(float(late["mse"] + late["kl"]), rel=1e-5)


def test_loss_terms_on_identical_inputs() -> None:
    x = torch.rand(2, 3, 32, 32)
    assert float(ms_ssim(x, x)) == pytest.approx(1.0, abs=1e-5)
    assert float(ms_ssim(x, torch.rand(2, 3, 32, 32))) < 0.5
    g = torch.randn(2, 4, 4, 6)
    assert float(spectral_loss(g, g)) == 0.0 and float(spectral_loss(g, g + 1)) > 0


def test_pixel_gradient_stops_at_z_in_svae_and_flows_in_psvae() -> None:
    latents, frames = toy_data(4)
    x = torch.from_numpy(latents)
    target = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    for stage, reaches_adapter in (("svae", False), ("psvae", True)):
        ad = tiny().train()
        cfg = SVAETrainConfig(**ARCH, pixel_decoder=PIX, stage=stage, steps=10)
        terms = compute_losses(ad, x, target, cfg, step=5)
        assert {"pix_mse", "ms_ssim", "pixel"} <= set(terms) and "lpips" not in terms
        terms["pixel"].backward()
        enc_grad = sum(float(p.grad.abs().sum()) for p in ad.enc_layers.parameters() if p.grad is not None)
        dec_grad = sum(float(p.grad.abs().sum()) for p in ad.pixel_decoder.parameters() if p.grad is not None)
        assert dec_grad > 0
        assert (enc_grad > 0) is reaches_adapter, (stage, enc_grad)


def test_training_lowers_the_loss_is_deterministic_and_stores_statistics(tmp_path) -> None:
    latents, frames = toy_data()
    cfg = SVAETrainConfig(**ARCH, pixel_decoder=PIX, steps=60, batch_size=16, lr=3e-3, seed=3)
    result = train_svae(latents, cfg, frames=frames, out_dir=tmp_path / "ad", progress=False)
    again = train_svae(latents, cfg, frames=frames, progress=False)
    assert result.loss_history == again.loss_history  # same seed, same numbers
    h = result.loss_history
    assert np.mean(h[-5:]) < 0.5 * np.mean(h[:5]), (h[:5], h[-5:])
    assert result.explained_variance > 0.5 and result.pixel_psnr_holdout is not None
    assert result.num_holdout_frames == 5 and result.lpips.startswith(("unavailable", "available"))
    ad = result.adapter
    mean, std = ad.latent_statistics()
    z = ad.eval().encode(torch.from_numpy(latents[:5]))
    assert z.abs().max() < 50 and torch.all(std > 0) and mean.shape == (4,)
    assert torch.allclose(ad.input_mean, torch.from_numpy(latents[5:]).reshape(-1, 16).mean(0), atol=0.5)


def test_save_load_round_trip_keeps_pixel_decoder_and_statistics(tmp_path) -> None:
    ad = tiny().eval()
    ad.set_input_statistics(torch.arange(16.0), torch.full((16,), 2.0))
    ad.set_latent_statistics(torch.ones(4), torch.full((4,), 3.0), tokens=10)
    save_adapter(ad, tmp_path / "ad")
    saved = json.loads((tmp_path / "ad" / "config.json").read_text())["config"]
    assert saved["type"] == "svae" and saved["pixel_decoder"]["grid"] == [4, 4]
    loaded = load_adapter(tmp_path / "ad")
    x = torch.randn(2, 4, 4, 16)
    with torch.inference_mode():
        z = loaded.encode(x)
        assert torch.equal(z, ad.encode(x)) and torch.equal(loaded.decode(z), ad.decode(z))
        assert torch.equal(loaded.decode_pixels(z), ad.decode_pixels(z))
    assert torch.equal(loaded.latent_statistics()[1], torch.full((4,), 3.0))
    assert tiny().latent_statistics() is None  # fresh: not measured, so the DiT trainer measures its own
    plain = build_adapter("svae", in_dim=16, **ARCH, output_norm=False)  # for pixel / VAE tokens
    assert isinstance(plain.dec_norm, torch.nn.Identity) and plain.get_config()["output_norm"] is False
    save_adapter(plain, tmp_path / "plain")
    assert isinstance(load_adapter(tmp_path / "plain").dec_norm, torch.nn.Identity)


def test_lpips_unavailable_without_cached_weights(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    model, status = load_lpips("vgg")
    assert model is None and status.startswith("unavailable") and "vgg16-397923af.pth" in status
    latents, frames = toy_data(24)
    cfg = SVAETrainConfig(**ARCH, pixel_decoder=PIX, steps=2, batch_size=4, lpips_after_samples=0)
    assert train_svae(latents, cfg, frames=frames, progress=False).lpips.startswith("unavailable")
    off = SVAETrainConfig(**ARCH, pixel_decoder=PIX, steps=1, batch_size=4, lpips_weight=0.0)
    assert train_svae(latents, off, frames=frames, progress=False).lpips == "off (weight 0)"


def test_mlp_adapter_with_input_norm_round_trips(tmp_path) -> None:
    from worldmodel.adapters.train_mlp import train_mlp_adapter

    latents, _ = toy_data(32)
    result = train_mlp_adapter(
        latents, 4, steps=30, batch_size=128, lr=3e-3, progress=False, normalize_input=True
    )
    ad = result.adapter
    assert ad.get_config()["input_norm"] is True and float(ad.input_std.max()) > 5 * float(ad.input_std.min())
    save_adapter(ad, tmp_path / "mlp")
    loaded = load_adapter(tmp_path / "mlp")
    x = torch.from_numpy(latents[:2])
    with torch.inference_mode():
        assert torch.equal(loaded.decode(loaded.encode(x)), ad.decode(ad.encode(x)))
