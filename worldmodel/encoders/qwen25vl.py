"""`qwen25vl`: the Qwen2.5-VL visual tower alone (default `Qwen/Qwen2.5-VL-3B-Instruct`; the seed's `qwen`).

Temporal patching: the tower's patch embedding is a Conv3d over **pairs of frames** (temporal_patch_size 2).
With `temporal="pairs"` (default, the seed's video mode) `encode([T, 3, H, W])` reads its frames as one
time-ordered sequence and returns `[ceil(T / 2), h, w, D]`: frames (0, 1) -> latent 0, (2, 3) -> latent 1, ...
(an odd last frame is paired with itself, as the seed does). `temporal_downsample_factor == 2` says so; a world
model on these latents must then **concatenate each pair of consecutive actions** into one action per latent step
(action_dim doubles; equivalently sim_steps_per_frame doubles), the seed's `downsample_actions_temporal`. Use
`encode_video([B, T, 3, H, W])` to pair frames within clips. Pairs never attend to each other (the tower's
attention is per temporal slice), so chunking a sequence at even offsets changes nothing.
`temporal="image"` instead pairs every frame with itself (as the Qwen processor does for still images): one
latent per frame, `temporal_downsample_factor == 1`.

Features (`features=`):
- `"vit"` (default, the seed's: its README lists 1280-d latents): the last ViT block's patch tokens through the
  merger's RMSNorm (`merger.ln_q`), **before** the 2x2 spatial merge. 224 input (patch 14) -> 16x16x1280 for the
  3B tower, the 256 tokens per frame of the paper.
- `"merged"`: the tower's real output after the 2x2 PatchMerger MLP (the tokens the LLM sees):
  224 -> 8x8x2048 (3B). 256 is not a multiple of 28 (patch x merge): the default image_size=224 resizes 256 frames
  to 224; `image_size=252` (the Qwen processor's rounding of 256) gives 18x18x1280 ("vit") or 9x9x2048 ("merged").

Preprocessing: bicubic resize to `image_size` (a multiple of 28), the checkpoint processor's mean/std (OpenAI
CLIP), and the processor's exact patch flattening. Weights: a Qwen2.5-VL checkpoint directory (only its
`visual.*` / `model.visual.*` safetensors are read, the LLM never loads) or a `save_pretrained` of
`Qwen2_5_VisionTransformerPretrainedModel`. No pixel decoder (`NoDecoderError`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from worldmodel.encoders.frozen import ViTEncoder
from worldmodel.errors import InputError, MissingWeightsError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
PREFIXES = ("model.visual.", "visual.")


def read_visual_state(directory: Path, what: str) -> dict[str, torch.Tensor]:
    """The visual tower's tensors from (possibly sharded) safetensors, without reading the LLM's."""
    from safetensors import safe_open

    index = directory / "model.safetensors.index.json"
    if index.is_file():
        weight_map: dict[str, str] = json.loads(index.read_text())["weight_map"]
        files = sorted(
            {f for k, f in weight_map.items() if k.startswith(PREFIXES)} or set(weight_map.values())
        )
    else:
        files = sorted(p.name for p in directory.glob("*.safetensors"))
    if not files:
        raise MissingWeightsError(
            f"{what}: {directory} has no *.safetensors weights: pass a Qwen2.5-VL checkpoint"
        )
    keys: dict[str, list[str]] = {}
    for name in files:
        with safe_open(str(directory / name), framework="pt") as f:
            keys[name] = list(f.keys())
    full = any(k.startswith(PREFIXES) for names in keys.values() for k in names)  # else a visual-only save
    state: dict[str, torch.Tensor] = {}
    for name, names in keys.items():
        with safe_open(str(directory / name), framework="pt") as f:
            for key in names:
                prefix = next((p for p in PREFIXES if key.startswith(p)), None)
                if prefix is not None or not full:
                    state[key[len(prefix or "") :]] = f.get_tensor(key)
    return state


def load_visual(directory: Path, what: str) -> nn.Module:
    from transformers.modeling_utils import no_init_weights
    from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import Qwen2_5_VLVisionConfig
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VisionTransformerPretrainedModel

    if not (directory / "config.json").is_file():
        raise MissingWeightsError(
            f"{what}: {directory} has no config.json: pass a Qwen2.5-VL checkpoint directory"
        )
    config = Qwen2_5_VLVisionConfig.from_pretrained(directory)  # picks `vision_config` out of a full config
    with no_init_weights():
        model = Qwen2_5_VisionTransformerPretrainedModel(config)
    result = model.load_state_dict(read_visual_state(directory, what), strict=False)
    if result.missing_keys:
        missing = ", ".join(sorted(result.missing_keys)[:4])
        raise MissingWeightsError(f"{what}: {directory} lacks visual-tower weights ({missing}, ...)")
    return model


class Qwen25VLEncoder(ViTEncoder):
    """Frozen Qwen2.5-VL visual tower with its temporal pair patching (see module docstring)."""

    name = "qwen25vl"
    default_pretrained = "Qwen/Qwen2.5-VL-3B-Instruct"
    default_mean = CLIP_MEAN
    default_std = CLIP_STD

    def __init__(
        self,
        pretrained: str | None = None,
        image_size: int | Sequence[int] = 224,
        temporal: str = "pairs",
        features: str = "vit",
        antialias: bool = True,
        image_mean: Sequence[float] | None = None,
        image_std: Sequence[float] | None = None,
        dtype: str = "float32",
        fingerprint: str | None = None,
    ) -> None:
        if temporal not in ("pairs", "image"):
            raise InputError(f"temporal must be 'pairs' (the seed's video mode) or 'image', got {temporal!r}")
        if features not in ("vit", "merged"):
            raise InputError(
                f"features must be 'vit' (pre-merge, 1280-d) or 'merged' (2048-d), got {features!r}"
            )
        super().__init__(pretrained, dtype)
        directory = self.resolve()
        visual = load_visual(directory, self.what)
        cfg = visual.config
        if features == "vit":
            visual.merger.mlp = nn.Identity()  # merger = ln_q + view(-1, 4 * hidden): un-merged, normalised
        self.visual = visual
        self.temporal, self.features = temporal, features
        self.merge, self.tps = int(cfg.spatial_merge_size), int(cfg.temporal_patch_size)
        if self.tps != 2:
            raise InputError(f"{self.what}: expected temporal_patch_size 2, the checkpoint has {self.tps}")
        multiple = cfg.patch_size * self.merge
        hidden = cfg.hidden_size if features == "vit" else cfg.out_hidden_size
        self.setup_input(
            directory, image_size, cfg.patch_size, hidden, image_mean, image_std, antialias, multiple
        )
        if features == "merged":
            self.patch = cfg.patch_size * self.merge  # one latent token per merged 2x2 patch group
        self.finish_loading(fingerprint)

    @property
    def temporal_downsample_factor(self) -> int:
        """Frames per latent: 2 in "pairs" mode (concatenate action pairs), 1 in "image" mode."""
        return 2 if self.temporal == "pairs" else 1

    def patchify(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[N, 2, 3, H, W] -> the processor's `pixel_values` [N*gh*gw, 3*2*p*p] and `grid_thw` [N, 3]."""
        n, t, c, height, width = clips.shape
        p, m = self.visual.patch_size, self.merge
        gh, gw = height // p, width // p
        x = clips.reshape(n, t, c, gh // m, m, p, gw // m, m, p).permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
        grid = torch.tensor([[1, gh, gw]] * n, dtype=torch.long, device=clips.device)
        return x.reshape(n * gh * gw, c * t * p * p), grid

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """[T, 3, H, W] (one time-ordered sequence in "pairs" mode) -> [ceil(T/2) or T, h, w, D]."""
        x = self.normalize(frames)
        if self.temporal == "pairs":
            if x.shape[0] % 2:
                x = torch.cat([x, x[-1:]])
            clips = x.reshape(x.shape[0] // 2, 2, *x.shape[1:])
        else:
            clips = x.unsqueeze(1).expand(-1, 2, -1, -1, -1)
        pixels, grid = self.patchify(clips)
        with torch.no_grad():
            out = self.visual(pixels.to(self.model_param().dtype), grid_thw=grid)
        n, (h, w, d), m = clips.shape[0], self.latent_shape, self.merge
        if self.features == "merged":
            return out.reshape(n, h, w, d).float()
        out = out.reshape(n, h // m, w // m, m, m, d).permute(0, 1, 3, 2, 4, 5)
        return out.reshape(n, h, w, d).float()

    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, T, 3, H, W] clips -> [B, T', h, w, D], pairing frames within each clip (T' = ceil(T/2) in pairs)."""
        if frames.ndim != 5:
            raise InputError(f"frames must be [B, T, 3, H, W], got shape {tuple(frames.shape)}")
        if self.temporal == "pairs" and frames.shape[1] % 2:
            frames = torch.cat([frames, frames[:, -1:]], dim=1)
        z = self.encode(frames.flatten(0, 1))
        return z.reshape(frames.shape[0], -1, *z.shape[1:])

    def options(self) -> dict[str, Any]:
        return {**self.vit_options(), "temporal": self.temporal, "features": self.features}
