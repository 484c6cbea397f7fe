"""`siglip2`: the SigLIP 2 vision tower (`google/siglip2-so400m-patch14-224`), the paper's "SigLIP 2" (seed:
`scale_rae_siglip`).

Latent: `hidden_states[-1]` of the vision transformer, i.e. the last encoder layer **before** `post_layernorm`
(Scale-RAE's convention); SigLIP has no CLS token, so all 256 tokens are kept. Frames are bicubic-resized to 224
and normalised with the checkpoint's processor mean/std (0.5 / 0.5) -> 16x16x1152 (patch 14).

Only the vision tower is loaded (`SiglipVisionModel` reads the `vision_model.*` tensors of the full SigLIP
checkpoint, so the text tower never occupies memory); it is the same module as `AutoModel(...).vision_model`.
The attention-pooling head is dropped (unused). The fixed-resolution SigLIP 2 checkpoints use the `siglip`
architecture; NaFlex (`siglip2`) checkpoints need patch masks and are not supported here.
No pixel decoder (`NoDecoderError`): semantic latents decode through an adapter's pixel decoder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import torch

from worldmodel.encoders.frozen import ViTEncoder
from worldmodel.errors import InputError

SUPPORTED = ("siglip", "siglip_vision_model")


class SigLIP2Encoder(ViTEncoder):
    """Frozen SigLIP (2) vision-tower features before the post-LayerNorm (see module docstring)."""

    name = "siglip2"
    default_pretrained = "google/siglip2-so400m-patch14-224"
    default_mean = (0.5, 0.5, 0.5)
    default_std = (0.5, 0.5, 0.5)

    def __init__(
        self,
        pretrained: str | None = None,
        image_size: int | Sequence[int] = 224,
        antialias: bool = True,
        image_mean: Sequence[float] | None = None,
        image_std: Sequence[float] | None = None,
        dtype: str = "float32",
        fingerprint: str | None = None,
    ) -> None:
        from transformers import SiglipVisionModel

        super().__init__(pretrained, dtype)
        directory = self.resolve()
        config_file = directory / "config.json"
        if config_file.is_file():
            kind = json.loads(config_file.read_text()).get("model_type")
            if kind not in SUPPORTED:
                raise InputError(
                    f"{self.what}: {directory} holds a '{kind}' model; expected one of {', '.join(SUPPORTED)} "
                    "(a fixed-resolution SigLIP / SigLIP 2 checkpoint such as google/siglip2-so400m-patch14-224)"
                )
        model = self.load_model(SiglipVisionModel, directory)
        tower = model.vision_model
        if getattr(tower, "use_head", False):
            tower.use_head = False  # the pooled output is never used
            del tower.head
        self.model = model
        cfg = model.config
        self.setup_input(
            directory, image_size, cfg.patch_size, cfg.hidden_size, image_mean, image_std, antialias
        )
        self.finish_loading(fingerprint)

    def tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        # interpolate_pos_encoding lets image_size differ from the checkpoint's (224 is its native size)
        native = tuple(self._size) == (self.model.config.image_size,) * 2
        out = self.model(pixel_values=pixels, output_hidden_states=True, interpolate_pos_encoding=not native)
        return out.hidden_states[-1]

    def options(self) -> dict[str, Any]:
        return self.vit_options()
