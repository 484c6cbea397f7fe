"""Pretrained video ViT families (qwen25vl, vjepa2): the documented latent grid, the processor's exact
preprocessing and patch packing, the library's forward, and how frames map to latents in time. Offline: see
`test_encoder_families.py`."""

from __future__ import annotations

import pytest
import torch

from tests.encoder_fixtures import (
    FAMILY_TEST_SETTINGS,
    as_input,
    assert_frozen_semantic,
    rebuilt,
    uint8_frames,
)
from worldmodel.encoders import load_encoder
from worldmodel.errors import InputError

pytestmark = FAMILY_TEST_SETTINGS


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

    clip = {"crop_size": crop, "patch_size": 4, "frames_per_clip": 2, "tubelet_size": 2}
    encoder = {"hidden_size": 48, "num_attention_heads": 2, "num_hidden_layers": 1}
    predictor = {"pred_hidden_size": 24, "pred_num_attention_heads": 2, "pred_num_hidden_layers": 1}
    return VJEPA2Config(**clip, **encoder, **predictor, pred_num_mask_tokens=2)


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
