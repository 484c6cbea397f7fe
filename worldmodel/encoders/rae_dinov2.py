"""`rae_dinov2`: DINOv2-B with registers as in RAE (`facebook/dinov2-with-registers-base`), the seed's `rae`.

Latent: the last layer's patch tokens after the final LayerNorm **without its affine** weight and bias (RAE
normalises features to zero mean / unit variance per token and drops DINOv2's learned scale, which would make
some channels dominate the diffusion loss); CLS + the 4 register tokens are dropped. 224x224 input with patch 14
-> 16x16x768. Frames are bicubic-resized to `image_size` and normalised with the checkpoint's processor mean/std
(ImageNet). No pixel decoder here: the seed's ViT-MAE decoder is not used by the paper; semantic latents decode
through an adapter's pixel decoder (`decode` raises `NoDecoderError`).

Weights: transformers `Dinov2WithRegistersModel` format (a Hub snapshot or a `save_pretrained` directory).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from worldmodel.encoders.frozen import ViTEncoder


class RAEDinov2Encoder(ViTEncoder):
    """Frozen DINOv2-with-registers patch features, un-affined final LayerNorm (see module docstring)."""

    name = "rae_dinov2"
    default_pretrained = "facebook/dinov2-with-registers-base"

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
        from transformers import Dinov2WithRegistersModel

        super().__init__(pretrained, dtype)
        directory = self.resolve()
        model = self.load_model(Dinov2WithRegistersModel, directory, "dinov2_with_registers")
        cfg = model.config
        # RAE: keep the normalisation, drop the learned affine
        model.layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps, elementwise_affine=False)
        self.model = model
        self.num_prefix = 1 + int(cfg.num_register_tokens)
        self.setup_input(
            directory, image_size, cfg.patch_size, cfg.hidden_size, image_mean, image_std, antialias
        )
        self.finish_loading(fingerprint)

    def tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixels).last_hidden_state[:, self.num_prefix :]

    def options(self) -> dict[str, Any]:
        return self.vit_options()
