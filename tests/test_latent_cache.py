"""Latent cache: what goes in comes out, stats are right, and untrustworthy files are refused."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from worldmodel.data.latent_cache import FORMAT_VERSION, LatentCache, build_latent_cache
from worldmodel.encoders import load_encoder
from worldmodel.errors import InputError

pytestmark = pytest.mark.usefixtures("one_thread")


def make_episodes(n: int = 3, size: int = 24, with_states: bool = True) -> list[dict]:
    rng = np.random.default_rng(0)
    episodes = []
    for i in range(n):
        t = 5 + 2 * i
        ep = {
            "frames": rng.integers(0, 256, (t, size, size, 3), dtype=np.uint8),
            "actions": rng.normal(size=(t, 2)).astype(np.float32),
            "success": i % 2 == 0,
            "policy": f"policy_{i}",
            "meta": {"seed": i, "coverage": [0.1, 0.5]},
        }
        if with_states:
            ep["states"] = rng.normal(size=(t, 5))
        episodes.append(ep)
    return episodes


@pytest.fixture
def pixels():
    return load_encoder("pixels", image_size=16, factor=4)  # 24x24 frames are resized to 16x16 -> 4x4x48


@pytest.fixture
def cache_path(tmp_path, pixels):
    path = tmp_path / "cache.h5"
    build_latent_cache(
        path, make_episodes(), pixels, batch_size=4, progress=False, metadata={"dataset": "toy"}
    )
    return path


def test_round_trip_of_episodes(cache_path, pixels) -> None:
    cache = LatentCache(cache_path, expected_encoder_config=pixels.get_config())
    episodes = make_episodes()
    assert [e.length for e in cache.episodes] == [5, 7, 9] and cache.num_frames == 21 and len(cache) == 3
    assert cache.encoder_name == "pixels" and cache.encoder_config == pixels.get_config()
    assert cache.latent_shape == (4, 4, 48) and cache.image_size == (16, 16)
    assert cache.metadata == {"dataset": "toy"} and cache.action_dim == 2 and cache.state_dim == 5
    for i, src in enumerate(episodes):
        ep = cache.load_episode(i)
        frames = torch.from_numpy(src["frames"]).permute(0, 3, 1, 2).float() / 255.0
        expected = pixels.encode(frames).numpy().astype(np.float16)
        np.testing.assert_array_equal(ep["latents"], expected.astype(np.float32))
        np.testing.assert_array_equal(ep["actions"], src["actions"])
        np.testing.assert_allclose(ep["states"], src["states"].astype(np.float32))
        assert ep["success"] is (i % 2 == 0) and ep["policy"] == f"policy_{i}"
        assert ep["meta"] == {"seed": i, "coverage": [0.1, 0.5]}
    assert cache.load_all(dtype=np.float16)[2]["latents"].dtype == np.float16
    with pytest.raises(InputError, match="out of range"):
        cache.load_episode(3)


def test_stats_match_numpy(cache_path) -> None:
    cache = LatentCache(cache_path)
    everything = np.concatenate([ep["latents"] for ep in cache.load_all()]).astype(np.float64)
    flat = everything.reshape(-1, everything.shape[-1])
    np.testing.assert_allclose(cache.latent_mean, flat.mean(axis=0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(cache.latent_std, flat.std(axis=0), rtol=1e-5, atol=1e-7)
    normed = cache.normalize(flat.astype(np.float32))
    np.testing.assert_allclose(normed.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(cache.denormalize(normed), flat, atol=1e-5)


def test_file_holds_no_pickles(cache_path) -> None:
    with h5py.File(cache_path, "r") as f:
        assert f.attrs["format_version"] == FORMAT_VERSION
        json.loads(f.attrs["encoder_config"])
        assert f["episodes/0/latents"].dtype == np.float16
        assert f["episodes/0/latents"].chunks == (1, 4, 4, 48)

        def check(obj) -> None:
            for value in obj.attrs.values():
                assert isinstance(value, (str, np.generic, np.ndarray, int, float, bool)), type(value)
                assert getattr(value, "dtype", np.dtype("f4")).kind != "O"

        check(f)
        f.visititems(lambda _name, obj: check(obj))


def test_refuses_cache_of_another_encoder(cache_path, tmp_path) -> None:
    other = load_encoder("pixels", image_size=16, factor=8)
    with pytest.raises(InputError, match="factor.*rebuild the cache"):
        LatentCache(cache_path, expected_encoder_config=other.get_config())
    with pytest.raises(InputError, match="different config"):
        LatentCache(
            cache_path, expected_encoder_config=load_encoder("conv_vae", image_size=16, norm_num_groups=8)
        )


def test_refuses_same_architecture_with_other_weights(tmp_path) -> None:
    torch.manual_seed(0)
    vae_a = load_encoder("conv_vae", image_size=16, block_out_channels=(8, 16), norm_num_groups=4)
    torch.manual_seed(1)
    vae_b = load_encoder("conv_vae", image_size=16, block_out_channels=(8, 16), norm_num_groups=4)
    vae_a.save_pretrained(tmp_path / "vae_a")
    path = tmp_path / "vae.h5"
    build_latent_cache(path, make_episodes(1, 16), vae_a, progress=False)
    moved = load_encoder("conv_vae", pretrained=str(tmp_path / "vae_a"))  # another path, same weights: fine
    assert LatentCache(path, expected_encoder_config=moved).encoder_name == "conv_vae"
    with pytest.raises(InputError, match="fingerprint"):
        LatentCache(path, expected_encoder_config=vae_b)


def test_refuses_missing_truncated_corrupt_and_wrong_version(cache_path, tmp_path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        LatentCache(tmp_path / "nope.h5")
    data = cache_path.read_bytes()
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or corrupt.*rebuild"):
        LatentCache(truncated)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not an hdf5 file at all" * 100)
    with pytest.raises(InputError, match="truncated or corrupt"):
        LatentCache(garbage)
    with h5py.File(cache_path, "a") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(InputError, match="format version"):
        LatentCache(cache_path)
    with h5py.File(cache_path, "a") as f:
        f.attrs["format_version"] = FORMAT_VERSION
        del f["episodes/2"]
    with pytest.raises(InputError, match="fewer episodes"):
        LatentCache(cache_path)


def test_failed_build_leaves_nothing_behind(tmp_path, pixels) -> None:
    def episodes():
        yield from make_episodes(2)
        raise RuntimeError("recording crashed")

    with pytest.raises(RuntimeError, match="recording crashed"):
        build_latent_cache(tmp_path / "c.h5", episodes(), pixels, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_rejects_bad_episodes(tmp_path, pixels) -> None:
    good = make_episodes(1)[0]
    cases = [
        ({**good, "frames": good["frames"].astype(np.float32)}, "uint8"),
        ({**good, "actions": good["actions"][:-1]}, "actions must be"),
        ({**good, "meta": {"bad": object()}}, "JSON"),
    ]
    for episode, message in cases:
        with pytest.raises(InputError, match=message):
            build_latent_cache(tmp_path / "c.h5", [episode], pixels, progress=False)
    with pytest.raises(InputError, match="empty"):
        build_latent_cache(tmp_path / "c.h5", [], pixels, progress=False)
    widths = [good, {**good, "actions": np.zeros((len(good["frames"]), 3))}]
    with pytest.raises(InputError, match="width"):
        build_latent_cache(tmp_path / "c.h5", widths, pixels, progress=False)
    assert not (tmp_path / "c.h5").exists()
