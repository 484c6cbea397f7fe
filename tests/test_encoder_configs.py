"""Every encoder family is selectable from the CLI (`encoder=<family>`, with its default Hub id), and `wmeval train`
/ `train-adapter` run on tiny local models of a ViT family (siglip2) and a VAE family (sd3_vae), offline."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import wmeval.conf
from tests.wm_fixtures import TINY_TRAIN
from wmeval.cli import compose_config, main
from worldmodel import WorldModel
from worldmodel.encoders import ENCODERS, get_encoder_class
from worldmodel.encoders.frozen import FrozenEncoder
from worldmodel.encoders.siglip2 import SigLIP2Encoder

pytestmark = pytest.mark.usefixtures("one_thread", "offline_hub")
TINY_VIT = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}


@pytest.mark.parametrize("family", sorted(ENCODERS))
def test_every_family_has_a_config_whose_keys_its_class_takes(family: str) -> None:
    path = Path(wmeval.conf.__file__).parent / "encoder" / f"{family}.yaml"
    assert path.is_file(), f"`encoder={family}` has no config: add {path.name}"
    encoder = OmegaConf.load(path)
    cls = get_encoder_class(family)
    assert encoder.type == family
    accepted = set(inspect.signature(cls.__init__).parameters) | {"type", "pretrained"}
    assert set(encoder) <= accepted, set(encoder) - accepted
    if issubclass(cls, FrozenEncoder):  # pretrained families name their default Hub id
        assert encoder.pretrained == cls.default_pretrained


def test_a_family_is_chosen_and_overridden_from_the_command_line() -> None:
    cfg = compose_config("train-adapter", ["encoder=webssl", "encoder.pretrained=DIR", "data=x"])
    assert cfg.encoder.type == "webssl" and cfg.encoder.pretrained == "DIR" and cfg.encoder.image_size == 224


@pytest.mark.parametrize("recipe", ["pusht_tiny", "pusht_tokens"])
@pytest.mark.parametrize("family", sorted(ENCODERS))
def test_a_recipe_takes_any_encoder_family_as_is(recipe: str, family: str) -> None:
    # a recipe picks its encoder's config file and sets no encoder keys, so `encoder=<family>` swaps the whole
    # group: no recipe key reaches a family that does not take it
    default = OmegaConf.load(Path(wmeval.conf.__file__).parent / "encoder" / f"{family}.yaml")
    given = ["encoder.pretrained=DIR"] if "pretrained" in default.keys() else []
    cfg = compose_config("train", [f"recipe={recipe}", f"encoder={family}", *given, "data=x"])
    if given:
        default.pretrained = "DIR"
    assert OmegaConf.to_container(cfg.encoder) == OmegaConf.to_container(default)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    out = tmp_path_factory.mktemp("rec") / "ds"
    args = ["record", "env=pusht", "policy=pusht/expert", "episodes=2", "max_steps=20", "progress=false"]
    assert main([*args, f"out={out}"]) == 0
    return out


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """A two-tower SigLIP checkpoint and a diffusers pipeline `vae/`, each as `save_pretrained` writes it."""
    from diffusers import AutoencoderKL
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    cfg = SiglipConfig(
        text_config={**TINY_VIT, "vocab_size": 64, "max_position_embeddings": 8},
        vision_config={**TINY_VIT, "patch_size": 4, "image_size": 32},
    )
    SiglipModel(cfg).save_pretrained(root / "siglip2")
    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(root / "siglip2")
    AutoencoderKL(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=4,
        layers_per_block=1,
    ).save_pretrained(root / "sd3" / "vae")
    return root


def _train(recorded, out, *overrides: str) -> dict:  # noqa: ANN001
    args = ["train", f"data={recorded}", f"out={out}", "optim.steps=2", "optim.checkpoint_every=2"]
    assert main([*args, *TINY_TRAIN, *overrides]) == 0
    return json.loads((out / "train_summary.json").read_text())


def test_train_on_a_tiny_local_siglip2_then_an_adapter_gives_it_pixels(
    recorded, tiny_models, tmp_path
) -> None:
    enc = [f"encoder.pretrained={tiny_models / 'siglip2'}", "encoder.image_size=32"]
    summary = _train(recorded, tmp_path / "wm", "encoder=siglip2", *enc)
    assert summary["steps"] == 2 and "psnr_model" not in summary["evals"][-1]  # no decoder: latent space only
    wm = WorldModel.from_pretrained(tmp_path / "wm" / "model")
    assert isinstance(wm.encoder, SigLIP2Encoder) and wm.encoder.latent_shape == (8, 8, 32)

    args = ["train-adapter", f"data={recorded}", "encoder=siglip2", *enc, "adapter=svae_tiny"]
    assert (
        main([*args, f"out={tmp_path / 'ad'}", "optim.steps=2", "optim.batch_size=4", "progress=false"]) == 0
    )
    adapter = [f"adapter.pretrained={tmp_path / 'ad' / 'adapter'}", "adapter=svae"]
    summary = _train(recorded, tmp_path / "wm2", "encoder=siglip2", *enc, *adapter)
    assert np.isfinite(summary["evals"][-1]["psnr_model"])  # frames through the adapter's pixel decoder


def test_train_on_a_tiny_local_sd3_vae(recorded, tiny_models, tmp_path) -> None:
    enc = ["encoder=sd3_vae", f"encoder.pretrained={tiny_models / 'sd3'}", "encoder.image_size=32"]
    summary = _train(recorded, tmp_path / "wm", *enc)
    assert np.isfinite(summary["evals"][-1]["psnr_model"])
    config = json.loads((tmp_path / "wm" / "model" / "world_model.json").read_text())
    assert config["encoder"]["type"] == "sd3_vae" and config["dit"]["in_channels"] == 4
