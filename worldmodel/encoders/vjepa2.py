"""`vjepa2`: a V-JEPA 2 video ViT used in **image mode** (default `facebook/vjepa2-vitl-fpc64-256`, transformers
`VJEPA2Model`, encoder only; the JEPA predictor is dropped).

Latent: the encoder output after its final LayerNorm, one latent per frame. Frames are bicubic-resized to 256 and
normalised with ImageNet mean/std (or the checkpoint's video-processor stats) -> 16x16x1024 (patch 16).

Tubelets: V-JEPA 2 patchifies video with tubelets of 2 frames. Each frame is fed alone as a 1-frame clip, which
transformers' `VJEPA2Embeddings` repeats to fill the tubelet (the frame paired with itself), so one frame gives
exactly one latent grid and `temporal_downsample_factor == 1`; the world model keeps one action per frame.

RoPE positions: transformers derives token positions from `config.crop_size`, so for an `image_size` other than
the checkpoint's crop size every attention layer's `grid_size` is re-pointed at `image_size / patch` (square only).

The paper used **V-JEPA 2.1** ViT-L/16 (`vjepa2_1_vitl_dist_vitG_384.pt`, trained at 384, RoPE), loaded from the
`facebookresearch/vjepa2` source with its dedicated tubelet-1 image patch embedding (`patch_embed_img`) and the
output of its last norm. That checkpoint is not in transformers format and is not loaded by this module. To use
it: (1) `torch.load(path, weights_only=True)["ema_encoder"]`, strip the `module.` / `backbone.` prefixes; (2) map
the timm-style keys onto `VJEPA2Model.encoder` as transformers' `convert_vjepa2_to_hf.py` does (`patch_embed.proj`
-> `embeddings.patch_embeddings.proj`, `blocks.N.attn.qkv` split into `layer.N.attention.{query,key,value}`,
`blocks.N.attn.proj` -> `layer.N.attention.proj`, `norm1/norm2/mlp.fc1/mlp.fc2` alike, `norm` -> `layernorm`);
(3) `save_pretrained` a `VJEPA2Model` with `crop_size=384, patch_size=16, tubelet_size=2, hidden_size=1024,
num_hidden_layers=24, num_attention_heads=16` and pass that directory as `pretrained`. Caveats, unverified: 2.1's
image path uses its own 2D patch embedding (`patch_embed_img`), which the 3D tubelet embedding only emulates if
its kernel is split across the two (identical) frames, i.e. `proj3d[:, :, t] = proj2d / 2` for t in {0, 1}; and
2.1's hierarchical/"dist" extras (per-block norms `norms_block`) have no transformers counterpart, so only the
final norm's output (`norms_block[-1]` in the seed) can be reproduced; the seed built 2.1 with
`interpolate_rope=True`, which may rescale RoPE positions to the 24x24 training grid at 256 input, whereas
transformers' RoPE uses integer positions on the 16x16 grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from worldmodel.encoders.frozen import ViTEncoder
from worldmodel.errors import InputError


class VJEPA2Encoder(ViTEncoder):
    """Frozen V-JEPA 2 encoder in image mode: one frame -> one latent grid (see module docstring)."""

    name = "vjepa2"
    default_pretrained = "facebook/vjepa2-vitl-fpc64-256"
    #: one latent per frame: each frame fills its own tubelet
    temporal_downsample_factor = 1

    def __init__(
        self,
        pretrained: str | None = None,
        image_size: int | Sequence[int] = 256,
        antialias: bool = True,
        image_mean: Sequence[float] | None = None,
        image_std: Sequence[float] | None = None,
        dtype: str = "float32",
        fingerprint: str | None = None,
    ) -> None:
        from transformers import VJEPA2Model

        super().__init__(pretrained, dtype)
        directory = self.resolve()
        full = self.load_model(VJEPA2Model, directory)
        cfg = full.config
        self.model = full.encoder  # the predictor only serves JEPA training
        self.setup_input(
            directory, image_size, cfg.patch_size, cfg.hidden_size, image_mean, image_std, antialias
        )
        if self._size[0] != self._size[1]:
            raise InputError(f"{self.what}: image_size must be square (RoPE grid), got {self._size}")
        grid = self._size[0] // cfg.patch_size
        for module in self.model.modules():
            if hasattr(module, "grid_size"):
                module.grid_size = grid
        self.tubelet_size = int(cfg.tubelet_size)
        self.finish_loading(fingerprint)

    def tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        # [B, 3, H, W] -> a 1-frame clip [B, T=1, 3, H, W]; the embedding repeats it to fill the tubelet
        return self.model(pixel_values_videos=pixels.unsqueeze(1)).last_hidden_state

    def options(self) -> dict[str, Any]:
        return self.vit_options()
