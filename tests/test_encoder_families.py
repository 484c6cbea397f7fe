"""Pretrained encoder families: each loads a tiny random model saved in its library's own format, gives the
documented latent grid, preprocesses exactly as the library's own processor, matches the library's forward, and
fails offline with a message naming the Hub id and the local-directory fix. Nothing here downloads anything."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.ldm_vae_reference import LDMVAE
from worldmodel.encoders import load_encoder
from worldmodel.encoders.base import NoDecoderError
from worldmodel.errors import InputError, MissingWeightsError

IMAGENET = {"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}
FAMILIES = ["sd3_vae", "rae_dinov2", "webssl", "siglip2", "qwen25vl", "vjepa2", "cosmos", "vavae"]


@pytest.fixture(autouse=True)
def _offline_small_cpu(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """Offline with an empty Hugging Face cache (nothing can download), one thread, no oneDNN kernel warm-up."""
    import huggingface_hub.constants as hf_constants

    empty = tmp_path_factory.mktemp("hf_home")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(empty))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(empty / "hub"))
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", False)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def uint8_frames(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Smooth random colour gradients + noise, [n, size, size, 3] uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = rng.uniform(0, 255, (n, 1, 1, 3)) * yy[None, ..., None] + rng.uniform(0, 255, (n, 1, 1, 3)) * (
        1 - xx[None, ..., None]
    )
    return (0.7 * base + rng.uniform(0, 70, (n, size, size, 3))).clip(0, 255).astype(np.uint8)


def as_input(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0


def rebuilt(enc):
    """`load_encoder(**config)` after a JSON round trip, as a latent cache or checkpoint would do it."""
    return load_encoder(**json.loads(json.dumps(enc.get_config())))


def assert_frozen_semantic(enc) -> None:
    enc.train()
    assert not enc.training and not any(p.requires_grad for p in enc.parameters())
    assert not enc.has_decoder
    with pytest.raises(NoDecoderError, match="adapter"):
        enc.decode(torch.zeros(1, *enc.latent_shape))


# -- offline behaviour, every family --------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_offline_without_weights_names_the_hub_id_and_the_fix(family: str) -> None:
    from worldmodel.encoders import get_encoder_class

    hub_id = get_encoder_class(family).default_pretrained
    with pytest.raises(
        MissingWeightsError, match=rf"{re.escape(hub_id)}.*HF_HUB_OFFLINE.*pretrained=<local directory>"
    ):
        load_encoder(family)


def test_unknown_option_and_missing_directory_are_one_line_errors(tmp_path) -> None:
    with pytest.raises(InputError, match="imag_size.*accepted are.*image_size"):
        load_encoder("siglip2", pretrained=str(tmp_path), imag_size=224)
    with pytest.raises(MissingWeightsError, match="config.json"):
        load_encoder("webssl", pretrained=str(tmp_path))
    with pytest.raises(MissingWeightsError, match="encoder.jit"):
        load_encoder("cosmos", pretrained=str(tmp_path))
    with pytest.raises(MissingWeightsError, match="no_such_dir.*local directory"):
        load_encoder("vavae", pretrained=str(tmp_path / "no_such_dir"))


# -- DINOv2 with registers (RAE) ------------------------------------------------------------------------


def test_rae_dinov2_drops_prefix_tokens_and_the_layernorm_affine(tmp_path) -> None:
    from transformers import (
        AutoImageProcessor,
        BitImageProcessor,
        Dinov2WithRegistersConfig,
        Dinov2WithRegistersModel,
    )

    torch.manual_seed(0)
    cfg = Dinov2WithRegistersConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        patch_size=4,
        image_size=16,
    )
    model = Dinov2WithRegistersModel(cfg).eval()
    nn.init.uniform_(model.layernorm.weight, 0.5, 2.0)  # a non-trivial affine, which RAE must ignore
    nn.init.normal_(model.layernorm.bias)
    model.save_pretrained(tmp_path)
    BitImageProcessor(
        size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}, **IMAGENET
    ).save_pretrained(tmp_path)
    enc = load_encoder("rae_dinov2", pretrained=str(tmp_path), image_size=16)
    assert enc.latent_shape == (4, 4, 32) and enc.image_size == (16, 16)
    frames = uint8_frames(2, 16)
    pix = AutoImageProcessor.from_pretrained(tmp_path, use_fast=False)(
        list(frames), return_tensors="pt"
    ).pixel_values
    torch.testing.assert_close(enc.normalize(as_input(frames)), pix, atol=1e-5, rtol=0)
    z = enc.encode(as_input(frames))
    with torch.no_grad():
        out = model(pixel_values=pix, output_hidden_states=True)
    ref = F.layer_norm(out.hidden_states[-1], (32,), eps=cfg.layer_norm_eps)[:, 5:]  # CLS + 4 registers
    torch.testing.assert_close(z.reshape(2, 16, 32), ref, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(z.reshape(2, 16, 32), out.last_hidden_state[:, 5:], atol=1e-2)
    assert tuple(enc.encode(as_input(uint8_frames(1, 28))).shape) == (1, 4, 4, 32)  # any input size
    assert torch.equal(rebuilt(enc).encode(as_input(frames)), z)
    assert_frozen_semantic(enc)


# -- Web-DINO -------------------------------------------------------------------------------------------


def test_webssl_matches_dinov2_last_hidden_state_without_cls(tmp_path) -> None:
    from transformers import AutoImageProcessor, BitImageProcessor, Dinov2Config, Dinov2Model

    torch.manual_seed(1)
    cfg = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        patch_size=4,
        image_size=16,
    )
    model = Dinov2Model(cfg).eval()
    model.save_pretrained(tmp_path)
    BitImageProcessor(
        size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}, **IMAGENET
    ).save_pretrained(tmp_path)
    enc = load_encoder("webssl", pretrained=str(tmp_path), image_size=16)
    frames = uint8_frames(3, 16, seed=1)
    pix = AutoImageProcessor.from_pretrained(tmp_path, use_fast=False)(
        list(frames), return_tensors="pt"
    ).pixel_values
    torch.testing.assert_close(enc.normalize(as_input(frames)), pix, atol=1e-5, rtol=0)
    z = enc.encode(as_input(frames))
    assert tuple(z.shape) == (3, 4, 4, 32) == (3, *enc.latent_shape)
    with torch.no_grad():
        ref = model(pixel_values=pix).last_hidden_state[:, 1:]
    torch.testing.assert_close(z.reshape(3, 16, 32), ref, atol=1e-4, rtol=1e-4)
    cfg_json = enc.get_config()
    assert cfg_json["image_mean"] == IMAGENET["image_mean"] and cfg_json["pretrained"] == str(tmp_path)
    assert torch.equal(rebuilt(enc).encode(as_input(frames)), z)
    with pytest.raises(MissingWeightsError, match="fingerprint"):
        load_encoder(**{**cfg_json, "fingerprint": "0" * 16})
    half = load_encoder("webssl", pretrained=str(tmp_path), image_size=16, dtype="bfloat16")
    assert half.model_param().dtype == torch.bfloat16 and half.get_config()["dtype"] == "bfloat16"
    zh = half.encode(as_input(frames))
    assert zh.dtype == torch.float32 and float((zh - z).abs().mean()) < 0.05 * float(z.abs().mean())
    assert_frozen_semantic(enc)


# -- SigLIP 2 -------------------------------------------------------------------------------------------


def test_siglip2_takes_the_vision_tower_before_post_layernorm(tmp_path) -> None:
    from transformers import AutoImageProcessor, AutoModel, SiglipConfig, SiglipImageProcessor, SiglipModel

    torch.manual_seed(2)
    tiny = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    cfg = SiglipConfig(
        text_config={**tiny, "vocab_size": 64, "max_position_embeddings": 8},
        vision_config={**tiny, "patch_size": 4, "image_size": 16},
    )
    SiglipModel(cfg).save_pretrained(tmp_path)  # the full two-tower checkpoint, as on the Hub
    SiglipImageProcessor(size={"height": 16, "width": 16}).save_pretrained(tmp_path)
    enc = load_encoder("siglip2", pretrained=str(tmp_path), image_size=16)
    assert enc.latent_shape == (4, 4, 32) and enc.get_config()["image_std"] == [0.5, 0.5, 0.5]
    proc = AutoImageProcessor.from_pretrained(tmp_path, use_fast=False)
    frames = uint8_frames(2, 16, seed=2)
    pix = proc(list(frames), return_tensors="pt").pixel_values
    torch.testing.assert_close(enc.normalize(as_input(frames)), pix, atol=1e-5, rtol=0)
    z = enc.encode(as_input(frames))
    vision = AutoModel.from_pretrained(tmp_path).vision_model.eval()  # the seed's AutoModel(...).vision_model
    with torch.no_grad():
        pre_ln = vision.encoder(inputs_embeds=vision.embeddings(pix)).last_hidden_state
        post_ln = vision(pixel_values=pix).last_hidden_state
    torch.testing.assert_close(z.reshape(2, 16, 32), pre_ln, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(z.reshape(2, 16, 32), post_ln, atol=1e-2)  # post-LN is not used
    # larger frames: the antialiased bicubic resize tracks the processor's PIL resize
    big = uint8_frames(2, 40, seed=3)
    diff = (enc.normalize(as_input(big)) - proc(list(big), return_tensors="pt").pixel_values).abs()
    assert float(diff.mean()) < 0.02 and float(diff.max()) < 0.2, (float(diff.mean()), float(diff.max()))
    assert torch.equal(rebuilt(enc).encode(as_input(frames)), z)
    assert_frozen_semantic(enc)


# -- Qwen2.5-VL visual tower ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory: pytest.TempPathFactory):
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessor

    torch.manual_seed(3)
    vision = {
        "depth": 2,
        "hidden_size": 32,
        "num_heads": 2,
        "intermediate_size": 64,
        "patch_size": 4,
        "window_size": 16,
        "out_hidden_size": 48,
        "fullatt_block_indexes": [1],
    }
    text = {"vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
    model = Qwen2_5_VLForConditionalGeneration(
        Qwen2_5_VLConfig(
            vision_config=vision, text_config={**text, "num_key_value_heads": 1, "intermediate_size": 64}
        )
    )
    path = tmp_path_factory.mktemp("qwen")
    model.save_pretrained(path)  # the full VLM checkpoint, as on the Hub
    Qwen2VLImageProcessor(patch_size=4, merge_size=2, min_pixels=8 * 8, max_pixels=64 * 64).save_pretrained(
        path
    )
    return path, model.model.visual.eval()


def test_qwen25vl_image_mode_matches_processor_and_tower(qwen_dir) -> None:
    from transformers import AutoImageProcessor

    path, visual = qwen_dir
    frames = uint8_frames(2, 16, seed=4)
    proc = AutoImageProcessor.from_pretrained(path, use_fast=False)(images=list(frames), return_tensors="pt")
    merged = load_encoder(
        "qwen25vl", pretrained=str(path), image_size=16, temporal="image", features="merged"
    )
    assert merged.temporal_downsample_factor == 1 and merged.latent_shape == (2, 2, 48)
    clips = merged.normalize(as_input(frames)).unsqueeze(1).expand(-1, 2, -1, -1, -1)
    pixels, grid = merged.patchify(clips)
    torch.testing.assert_close(pixels, proc.pixel_values, atol=1e-5, rtol=0)
    assert grid.tolist() == proc.image_grid_thw.tolist()
    with torch.no_grad():
        ref = visual(proc.pixel_values, grid_thw=proc.image_grid_thw)  # [2 * 2 * 2, 48]
    zm = merged.encode(as_input(frames))
    torch.testing.assert_close(zm.reshape(-1, 48), ref, atol=1e-4, rtol=1e-4)
    # "vit" features: the pre-merge grid; re-merging it with the tower's own MLP gives the tower's output
    enc = load_encoder("qwen25vl", pretrained=str(path), image_size=16, temporal="image")
    z = enc.encode(as_input(frames))
    assert tuple(z.shape) == (2, 4, 4, 32) == (2, *enc.latent_shape)
    groups = z.reshape(2, 2, 2, 2, 2, 32).permute(0, 1, 3, 2, 4, 5).reshape(-1, 4 * 32)
    with torch.no_grad():
        torch.testing.assert_close(visual.merger.mlp(groups), ref, atol=1e-4, rtol=1e-4)
    assert torch.equal(rebuilt(enc).encode(as_input(frames)), z)
    assert_frozen_semantic(enc)


def test_qwen25vl_pairs_frames_in_time(qwen_dir, tmp_path) -> None:
    from transformers import Qwen2VLVideoProcessor

    path, visual = qwen_dir
    enc = load_encoder("qwen25vl", pretrained=str(path), image_size=16)
    assert enc.temporal_downsample_factor == 2 and enc.get_config()["temporal"] == "pairs"
    x = as_input(uint8_frames(5, 24, seed=5))  # 24 px: resized to 16 inside
    z = enc.encode(x)
    assert tuple(z.shape) == (3, 4, 4, 32)  # (0,1) (2,3) (4,4)
    torch.testing.assert_close(z[1:2], enc.encode(x[2:4]), atol=1e-5, rtol=0)  # pairs are independent
    image = load_encoder("qwen25vl", pretrained=str(path), image_size=16, temporal="image")
    torch.testing.assert_close(z[2:], image.encode(x[4:]), atol=1e-5, rtol=0)  # odd tail pairs with itself
    assert not torch.allclose(z[:1], image.encode(x[:1]), atol=1e-3)  # the second frame matters
    assert tuple(enc.encode_video(x[:4].reshape(2, 2, 3, 24, 24)).shape) == (2, 1, 4, 4, 32)
    # the processor's video path packs a 2-frame clip exactly as `patchify` does
    frames = uint8_frames(2, 16, seed=6)
    vp = Qwen2VLVideoProcessor(patch_size=4, merge_size=2, min_pixels=8 * 8, max_pixels=64 * 64)
    ref = vp(videos=[torch.from_numpy(frames).permute(0, 3, 1, 2)], return_tensors="pt", do_resize=False)
    pixels, grid = enc.patchify(enc.normalize(as_input(frames)).unsqueeze(0))
    torch.testing.assert_close(pixels, ref.pixel_values_videos, atol=1e-5, rtol=0)
    assert grid.tolist() == ref.video_grid_thw.tolist()
    # a visual-tower-only save_pretrained directory loads to the same latents
    visual.save_pretrained(tmp_path)
    alone = load_encoder("qwen25vl", pretrained=str(tmp_path), image_size=16, image_mean=enc.image_mean)
    assert torch.equal(alone.encode(x[:2]), z[:1])
    with pytest.raises(InputError, match="multiple of 8"):
        load_encoder("qwen25vl", pretrained=str(path), image_size=20)


# -- V-JEPA 2 -------------------------------------------------------------------------------------------


def _vjepa2_config(crop: int):
    from transformers import VJEPA2Config

    return VJEPA2Config(
        crop_size=crop,
        patch_size=4,
        frames_per_clip=2,
        tubelet_size=2,
        hidden_size=48,
        num_attention_heads=2,
        num_hidden_layers=1,
        pred_hidden_size=24,
        pred_num_attention_heads=2,
        pred_num_hidden_layers=1,
        pred_num_mask_tokens=2,
    )


def test_vjepa2_image_mode_one_latent_per_frame(tmp_path) -> None:
    from transformers import VJEPA2Model, VJEPA2VideoProcessor

    torch.manual_seed(4)
    model = VJEPA2Model(_vjepa2_config(16)).eval()
    model.save_pretrained(tmp_path)
    VJEPA2VideoProcessor(crop_size=16).save_pretrained(tmp_path)
    enc = load_encoder("vjepa2", pretrained=str(tmp_path), image_size=16)
    assert enc.latent_shape == (4, 4, 48) and enc.temporal_downsample_factor == 1
    frames = uint8_frames(3, 16, seed=7)
    proc = VJEPA2VideoProcessor.from_pretrained(tmp_path)
    video = torch.from_numpy(frames).permute(0, 3, 1, 2)
    pix = proc(
        videos=[video], do_resize=False, do_center_crop=False, return_tensors="pt"
    ).pixel_values_videos[0]
    torch.testing.assert_close(enc.normalize(as_input(frames)), pix, atol=1e-5, rtol=0)
    z = enc.encode(as_input(frames))
    with torch.no_grad():  # each frame as an explicit 2-frame tubelet of itself
        ref = model(pixel_values_videos=pix.unsqueeze(1).repeat(1, 2, 1, 1, 1), skip_predictor=True)
    torch.testing.assert_close(z.reshape(3, 16, 48), ref.last_hidden_state, atol=1e-4, rtol=1e-4)
    assert torch.equal(rebuilt(enc).encode(as_input(frames)), z)
    assert_frozen_semantic(enc)
    # another input size re-points RoPE at the new grid: same as a model whose crop_size is that size
    wide = load_encoder("vjepa2", pretrained=str(tmp_path), image_size=24)
    twin = VJEPA2Model(_vjepa2_config(24)).eval()
    twin.load_state_dict(model.state_dict())
    x24 = as_input(uint8_frames(1, 24, seed=8))
    with torch.no_grad():
        ref24 = twin(
            pixel_values_videos=wide.normalize(x24).unsqueeze(1), skip_predictor=True
        ).last_hidden_state
    torch.testing.assert_close(wide.encode(x24).reshape(1, 36, 48), ref24, atol=1e-4, rtol=1e-4)


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
