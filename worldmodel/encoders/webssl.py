"""`webssl`: Web-DINO ViT-L (`facebook/webssl-dino300m-full2b-224`), the paper's "Web-DINO" (seed:
`scale_rae_webssl`).

Latent: transformers `Dinov2Model` `last_hidden_state` (after the model's own final LayerNorm, affine kept, as
Scale-RAE trained on it) without the CLS token (and without register tokens, should a checkpoint have any).
Frames are bicubic-resized to 224 and normalised with the checkpoint's processor mean/std -> 16x16x1024 (patch 14).
No pixel decoder (`NoDecoderError`): the paper decodes semantic latents through an adapter's pixel decoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from worldmodel.encoders.frozen import ViTEncoder


class WebSSLEncoder(ViTEncoder):
    """Frozen Web-DINO patch features (see module docstring)."""

    name = "webssl"
    default_pretrained = "facebook/webssl-dino300m-full2b-224"

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
        from transformers import Dinov2Model

        super().__init__(pretrained, dtype)
        directory = self.resolve()
        model = self.load_model(Dinov2Model, directory, "dinov2")
        cfg = model.config
        self.model = model
        self.num_prefix = 1 + int(getattr(cfg, "num_register_tokens", 0) or 0)
        self.setup_input(
            directory, image_size, cfg.patch_size, cfg.hidden_size, image_mean, image_std, antialias
        )
        self.finish_loading(fingerprint)

    def tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixels).last_hidden_state[:, self.num_prefix :]

    def options(self) -> dict[str, Any]:
        return self.vit_options()
