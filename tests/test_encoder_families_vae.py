"""Pretrained VAE and tokenizer families (sd3_vae, cosmos, vavae): each loads a tiny random model saved in its
release format, encodes as the library's own forward does and decodes back to [0, 1]. Offline: see
`test_encoder_families.py`."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.encoder_fixtures import FAMILY_TEST_SETTINGS, as_input, rebuilt, uint8_frames
from tests.ldm_vae_reference import LDMVAE
from worldmodel.encoders import load_encoder
from worldmodel.encoders.base import NoDecoderError
from worldmodel.errors import InputError, MissingWeightsError

pytestmark = FAMILY_TEST_SETTINGS


# -- SD3 VAE --------------------------------------------------------------------------------------------


def test_sd3_vae_samples_scaled_posterior_and_decodes(tmp_path) -> None:
    from diffusers import AutoencoderKL

    torch.manual_seed(5)
    vae = AutoencoderKL(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=4,
        layers_per_block=1,
        scaling_factor=1.5,
        shift_factor=0.25,
    ).eval()
    vae.save_pretrained(tmp_path / "pipe" / "vae")  # diffusers pipeline layout, like the Hub repo
    enc = load_encoder("sd3_vae", pretrained=str(tmp_path / "pipe"), image_size=16, chunk_size=2)
    assert enc.latent_shape == (8, 8, 4) and enc.get_config()["latent"] == "sample"
    x = as_input(uint8_frames(3, 16, seed=9))
    with torch.no_grad():
        dist = vae.encode(x * 2 - 1).latent_dist
        z_ref = dist.sample(torch.Generator().manual_seed(7)) * 1.5
        mean = dist.mode() * 1.5
    z = enc.encode(x, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(z[:2], z_ref[:2].permute(0, 2, 3, 1), atol=1e-5, rtol=1e-5)  # first chunk
    assert not torch.allclose(enc.encode(x), enc.encode(x))  # a sample, not the mode
    mode = load_encoder("sd3_vae", pretrained=str(tmp_path / "pipe"), image_size=16, latent="mode")
    zm = mode.encode(x)
    torch.testing.assert_close(zm, mean.permute(0, 2, 3, 1), atol=1e-5, rtol=1e-5)  # no shift_factor
    out = mode.decode(zm)
    with torch.no_grad():
        ref = ((vae.decode(mean / 1.5).sample + 1) / 2).clamp(0, 1)
    assert tuple(out.shape) == (3, 3, 16, 16)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert tuple(mode.encode(as_input(uint8_frames(1, 32))).shape) == (1, 8, 8, 4)
    assert torch.equal(rebuilt(mode).encode(x), zm)
    vae.save_pretrained(tmp_path / "bare")  # an AutoencoderKL directory without vae/
    assert torch.equal(
        load_encoder("sd3_vae", pretrained=str(tmp_path / "bare"), image_size=16, latent="mode").encode(x), zm
    )


# -- Cosmos ---------------------------------------------------------------------------------------------


class _TinyCosmosEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 4, stride=4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.conv(x),)  # continuous Cosmos scripts return (latent,)


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # building the fixture scripts
def test_cosmos_loads_torchscript_pair(tmp_path) -> None:
    torch.manual_seed(6)
    enc_m, dec_m = _TinyCosmosEncoder(), nn.Sequential(nn.ConvTranspose2d(4, 3, 4, stride=4), nn.Tanh())
    torch.jit.save(torch.jit.script(enc_m), str(tmp_path / "encoder.jit"))
    torch.jit.save(torch.jit.script(dec_m), str(tmp_path / "decoder.jit"))
    enc = load_encoder(
        "cosmos", pretrained=str(tmp_path), image_size=16, spatial_compression=4, latent_channels=4
    )
    assert enc.latent_shape == (4, 4, 4) and enc.has_decoder
    x = as_input(uint8_frames(2, 16, seed=10))
    z = enc.encode(x)
    with torch.no_grad():
        torch.testing.assert_close(z, enc_m(x * 2 - 1)[0].permute(0, 2, 3, 1))
        torch.testing.assert_close(enc.decode(z), (dec_m(z.permute(0, 3, 1, 2)) + 1) / 2)
    assert tuple(enc.decode(z).shape) == (2, 3, 16, 16)
    assert torch.equal(rebuilt(enc).encode(x), z)
    wrong = load_encoder(
        "cosmos", pretrained=str(tmp_path), image_size=16, spatial_compression=2, latent_channels=4
    )
    with pytest.raises(InputError, match="spatial_compression"):
        wrong.encode(x)
    (tmp_path / "enc_only").mkdir()
    (tmp_path / "encoder.jit").rename(tmp_path / "enc_only" / "encoder.jit")
    alone = load_encoder(
        "cosmos",
        pretrained=str(tmp_path / "enc_only"),
        image_size=16,
        spatial_compression=4,
        latent_channels=4,
    )
    assert not alone.has_decoder and torch.equal(alone.encode(x), z)
    with pytest.raises(NoDecoderError, match="decoder.jit"):
        alone.decode(z)


# -- VA-VAE ---------------------------------------------------------------------------------------------


def test_vavae_maps_the_released_ldm_checkpoint_exactly(tmp_path) -> None:
    torch.manual_seed(7)
    ref = LDMVAE().eval()
    for name, p in ref.named_parameters():  # non-trivial norms so a swapped norm/affine would show
        if "norm" in name:
            nn.init.uniform_(p, 0.5, 1.5) if name.endswith("weight") else nn.init.normal_(p, std=0.1)
    state = {
        **ref.state_dict(),
        "loss.logvar": torch.zeros(()),
        "linear_proj.weight": torch.randn(8, 4, 1, 1),
    }
    torch.save({"state_dict": state}, tmp_path / "vavae-imagenet256-f16d32-dinov2.pt")
    torch.save({"mean": torch.zeros(4)}, tmp_path / "latents_stats.pt")  # the Hub repo ships this too
    enc = load_encoder("vavae", pretrained=str(tmp_path), image_size=32, latent="mode")
    assert (
        enc.latent_shape == (16, 16, 4)
        and enc.get_config()["checkpoint"] == "vavae-imagenet256-f16d32-dinov2.pt"
    )
    x = as_input(uint8_frames(2, 32, seed=11))
    z = enc.encode(x)
    with torch.no_grad():
        mean = ref.moments(x * 2 - 1)[:, :4]
        torch.testing.assert_close(z, mean.permute(0, 2, 3, 1), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(
            enc.decode(z), ((ref.decode(mean) + 1) / 2).clamp(0, 1), atol=1e-4, rtol=1e-4
        )
    sampled = load_encoder("vavae", pretrained=str(tmp_path), image_size=32)
    zs = sampled.encode(x, generator=torch.Generator().manual_seed(0))
    assert tuple(zs.shape) == tuple(z.shape) and not torch.allclose(zs, z)
    assert torch.equal(rebuilt(enc).encode(x), z)
    torch.save({"state_dict": state, "hparams": _Pickled()}, tmp_path / "other.pt")
    with pytest.raises(MissingWeightsError, match="weights_only"):
        load_encoder("vavae", pretrained=str(tmp_path), checkpoint="other.pt")


class _Pickled:
    """An arbitrary object: a checkpoint holding one must not be unpickled."""
