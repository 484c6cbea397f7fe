"""Pretrained encoder families: each loads a tiny random model saved in its library's own format, gives the
documented latent grid, preprocesses exactly as the library's own processor, matches the library's forward, and
fails offline with a message naming the Hub id and the local-directory fix. Nothing here downloads anything.

This file: offline behaviour of every family, and the image ViTs (rae_dinov2, webssl, siglip2); the video ViTs
are in `test_encoder_families_video.py`, the VAEs and tokenizers in `test_encoder_families_vae.py`."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.encoder_fixtures import (
    FAMILY_TEST_SETTINGS,
    as_input,
    assert_frozen_semantic,
    rebuilt,
    uint8_frames,
)
from worldmodel.encoders import load_encoder
from worldmodel.errors import InputError, MissingWeightsError

IMAGENET = {"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}
FAMILIES = ["sd3_vae", "rae_dinov2", "webssl", "siglip2", "qwen25vl", "vjepa2", "cosmos", "vavae"]
#: one tiny transformer block, width 32: enough to tell the right tokens from the wrong ones
TINY_VIT = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}

pytestmark = FAMILY_TEST_SETTINGS


def save_with_imagenet_processor(model, path) -> None:
    """A DINOv2-style checkpoint as on the Hub: the model plus a 16 px ImageNet-normalising processor."""
    from transformers import BitImageProcessor

    model.save_pretrained(path)
    BitImageProcessor(
        size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}, **IMAGENET
    ).save_pretrained(path)


def processor_pixels(path, frames: np.ndarray) -> torch.Tensor:
    """What the checkpoint's own (slow, PIL) image processor feeds the model."""
    from transformers import AutoImageProcessor

    proc = AutoImageProcessor.from_pretrained(path, use_fast=False)
    return proc(list(frames), return_tensors="pt").pixel_values


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
    from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    torch.manual_seed(0)
    cfg = Dinov2WithRegistersConfig(**TINY_VIT, patch_size=4, image_size=16)
    model = Dinov2WithRegistersModel(cfg).eval()
    nn.init.uniform_(model.layernorm.weight, 0.5, 2.0)  # a non-trivial affine, which RAE must ignore
    nn.init.normal_(model.layernorm.bias)
    save_with_imagenet_processor(model, tmp_path)
    enc = load_encoder("rae_dinov2", pretrained=str(tmp_path), image_size=16)
    assert enc.latent_shape == (4, 4, 32) and enc.image_size == (16, 16)
    frames = uint8_frames(2, 16)
    pix = processor_pixels(tmp_path, frames)
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
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(1)
    model = Dinov2Model(Dinov2Config(**TINY_VIT, patch_size=4, image_size=16)).eval()
    save_with_imagenet_processor(model, tmp_path)
    enc = load_encoder("webssl", pretrained=str(tmp_path), image_size=16)
    frames = uint8_frames(3, 16, seed=1)
    pix = processor_pixels(tmp_path, frames)
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
    cfg = SiglipConfig(
        text_config={**TINY_VIT, "vocab_size": 64, "max_position_embeddings": 8},
        vision_config={**TINY_VIT, "patch_size": 4, "image_size": 16},
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
