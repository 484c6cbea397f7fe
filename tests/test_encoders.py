"""Encoders: the registry, the lossless pixels space, and the trainable conv_vae (save/load, training, errors)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from worldmodel.encoders import ENCODERS, get_encoder_class, load_encoder
from worldmodel.encoders.conv_vae import ConvVAEConfig
from worldmodel.encoders.train_conv_vae import train_conv_vae
from worldmodel.errors import InputError, MissingWeightsError

# a tiny conv_vae (16x16 -> 8x8x4) keeps every test here well under a second or two on CPU
TINY = {"image_size": 16, "block_out_channels": (8, 16), "latent_channels": 4, "norm_num_groups": 4}


# tiny models on a shared 2-core machine: a second intra-op thread only adds spin-wait contention
pytestmark = pytest.mark.usefixtures("no_onednn", "one_thread")


def uint8_frames(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Smooth random blobs on a light background: learnable, unlike white noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    frames = np.full((n, size, size, 3), 230.0)
    for i in range(n):
        cy, cx = rng.uniform(0.2, 0.8, 2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.02)
        frames[i] -= blob[..., None] * rng.uniform(80, 200, 3)
    return frames.clip(0, 255).astype(np.uint8)


def as_input(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0


# -- registry -------------------------------------------------------------------------------------------


def test_registry_lists_known_names_and_rejects_unknown() -> None:
    assert {"pixels", "conv_vae"} <= set(ENCODERS)
    with pytest.raises(InputError, match="conv_vae.*pixels|pixels.*conv_vae"):
        load_encoder("sd3_vea")
    with pytest.raises(InputError, match="factor"):
        load_encoder("pixels", fator=4)
    with pytest.raises(InputError, match="no weights"):
        load_encoder("pixels", pretrained="some/dir")
    assert get_encoder_class("pixels").name == "pixels"


def test_worldmodel_imports_neither_wmeval_policies_nor_lerobot() -> None:
    code = (
        "import sys, worldmodel.encoders, worldmodel.adapters, worldmodel.data;"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'wmeval', 'policies', 'lerobot'});"
        "assert not bad, bad;"
        "assert 'worldmodel.encoders.conv_vae' not in sys.modules, 'registry must import lazily'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# -- pixels ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "factor", "shape"), [(96, 6, (16, 16, 108)), (64, 4, (16, 16, 48))])
def test_pixels_round_trips_exactly(size: int, factor: int, shape: tuple[int, int, int]) -> None:
    enc = load_encoder("pixels", image_size=size, factor=factor)
    frames = np.random.default_rng(0).integers(0, 256, (3, size, size, 3), dtype=np.uint8)
    z = enc.encode(as_input(frames))
    assert tuple(z.shape) == (3, *shape) == (3, *enc.latent_shape)
    assert z.min() >= -1.0 and z.max() <= 1.0
    back = (enc.decode(z) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(back, frames)


def test_pixels_layout_and_resize() -> None:
    enc = load_encoder("pixels", image_size=8, factor=4)
    x = torch.rand(1, 3, 8, 8)
    z = enc.encode(x)
    # token (0, 1) holds the patch rows 0..3, cols 4..7; channel c*f*f + i*f + j, mapped to [-1, 1]
    assert torch.allclose(z[0, 0, 1, 1 * 16 + 2 * 4 + 3], x[0, 1, 2, 7] * 2 - 1)
    big = torch.rand(2, 3, 24, 24)
    assert tuple(enc.encode(big).shape) == (2, 2, 2, 48)
    assert tuple(enc.decode(enc.encode(big)).shape) == (2, 3, 8, 8)
    with pytest.raises(InputError, match="divisible"):
        load_encoder("pixels", image_size=10, factor=4)


def test_pixels_config_rebuilds_same_space() -> None:
    enc = load_encoder("pixels", image_size=(32, 48), factor=8)
    cfg = json.loads(json.dumps(enc.get_config()))
    again = load_encoder(**cfg)
    x = torch.rand(2, 3, 32, 48)
    assert torch.equal(enc.encode(x), again.encode(x))


# -- conv_vae -------------------------------------------------------------------------------------------


def test_conv_vae_save_load_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    enc = load_encoder("conv_vae", **TINY, scaling_factor=0.5)
    enc.save_pretrained(tmp_path / "vae")
    assert (tmp_path / "vae" / "diffusion_pytorch_model.safetensors").is_file()
    assert json.loads((tmp_path / "vae" / "config.json").read_text())["scaling_factor"] == 0.5
    loaded = load_encoder("conv_vae", pretrained=str(tmp_path / "vae"))
    x = as_input(uint8_frames(4, 16))
    with torch.inference_mode():
        z = enc.encode(x)
        assert torch.equal(z, loaded.encode(x))
        assert tuple(z.shape) == (4, 8, 8, 4) == (4, *loaded.latent_shape)
        frames = loaded.decode(z)
    assert tuple(frames.shape) == (4, 3, 16, 16)
    assert frames.min() >= 0.0 and frames.max() <= 1.0
    # a config saved after loading rebuilds the same space, from JSON
    cfg = json.loads(json.dumps(loaded.get_config()))
    with torch.inference_mode():
        assert torch.equal(load_encoder(**cfg).encode(x), z)


def test_conv_vae_missing_weights_name_the_path(tmp_path, monkeypatch) -> None:
    missing = tmp_path / "no_such_vae"
    with pytest.raises(MissingWeightsError, match="no_such_vae.*local directory"):
        load_encoder("conv_vae", pretrained=str(missing))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingWeightsError, match="nobody-wmeval/not-a-vae.*HF_HUB_OFFLINE"):
        load_encoder("conv_vae", pretrained="nobody-wmeval/not-a-vae")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingWeightsError, match="config.json"):
        load_encoder("conv_vae", pretrained=str(tmp_path / "empty"))


def test_conv_vae_config_never_comes_back_random() -> None:
    cfg = load_encoder("conv_vae", **TINY).get_config()
    assert cfg["pretrained"] is None
    with pytest.raises(MissingWeightsError, match="fingerprint"):
        load_encoder(**cfg)  # untrained + unsaved: the weights it names cannot be recovered


def test_train_conv_vae_reduces_loss_and_saves(tmp_path) -> None:
    frames = uint8_frames(48, 32)  # resized to 16x16 once, up front
    kwargs = dict(config=ConvVAEConfig(**TINY), batch_size=8, lr=3e-3, seed=3, progress=False)
    result = train_conv_vae(frames, steps=30, out_dir=tmp_path / "vae", **kwargs)
    first, last = np.mean(result.loss_history[:3]), np.mean(result.loss_history[-3:])
    assert last < 0.5 * first, (first, last)
    assert result.num_holdout == 5 and np.isfinite(result.psnr_holdout)
    loaded = load_encoder("conv_vae", pretrained=str(tmp_path / "vae"))
    assert loaded.scaling_factor == pytest.approx(result.scaling_factor)
    assert loaded.get_config()["fingerprint"] == result.encoder.get_config()["fingerprint"]
    with torch.inference_mode():
        z = loaded.encode(as_input(frames[:16]))
    assert 0.5 < float(z.std()) < 2.0  # the stored scaling brings latents near unit variance
    with pytest.raises(InputError, match="overwrite"):
        train_conv_vae(frames, steps=1, out_dir=tmp_path / "vae", **kwargs)


def test_train_conv_vae_is_deterministic_for_a_seed() -> None:
    frames = uint8_frames(24, 16)
    kwargs = dict(config=ConvVAEConfig(**TINY), steps=4, batch_size=4, seed=1, progress=False)
    a, b = train_conv_vae(frames, **kwargs), train_conv_vae(frames, **kwargs)
    assert a.loss_history == b.loss_history
    assert a.encoder.get_config()["fingerprint"] == b.encoder.get_config()["fingerprint"]
    # an encoder's get_config() is accepted as a training config (its weight keys are ignored)
    c = train_conv_vae(frames, **{**kwargs, "seed": 2, "config": a.encoder.get_config()})
    assert c.loss_history != a.loss_history
    assert c.encoder.latent_shape == a.encoder.latent_shape
