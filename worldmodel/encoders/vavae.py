"""`vavae`: VA-VAE f16d32 (LightningDiT's vision-foundation-aligned VAE, default Hub id
`hustvl/vavae-imagenet256-f16d32-dinov2`, file `vavae-imagenet256-f16d32-dinov2.pt`).

Loading: the released single-file checkpoint, `torch.load(weights_only=True)`, tensors under `state_dict` with
the LDM key names (`encoder.*`, `decoder.*`, `quant_conv.*`, `post_quant_conv.*`; training-only keys such as
`loss.*` or the DINOv2 projection are ignored). Instead of vendoring LightningDiT's LDM code (the seed's
`_vavae_src/` is missing from its release), the tensors are renamed into a diffusers `AutoencoderKL` whose
architecture is read off the checkpoint (f16d32: ch 128, ch_mult (1, 1, 2, 2, 4) -> block_out_channels
(128, 128, 256, 256, 512), 2 res blocks, attention in the 16x16 level of encoder and decoder, 32 latent channels).
Key mapping, LDM -> diffusers (n = number of levels):
- `{enc,dec}oder.norm_out` -> `conv_norm_out`; `nin_shortcut` -> `conv_shortcut`;
- `*.mid.block_{1,2}` -> `mid_block.resnets.{0,1}`; `*.mid.attn_1` -> `mid_block.attentions.0`;
- `encoder.down.i.block.j` -> `encoder.down_blocks.i.resnets.j`; `.attn.j` -> `.attentions.j`;
  `.downsample` -> `.downsamplers.0`;
- `decoder.up.i.*` -> `decoder.up_blocks.(n-1-i).*` (LDM numbers decoder levels from the output side), with the
  same block / attn / `upsample` -> `upsamplers.0` renames;
- inside attentions: `norm` -> `group_norm`, `q/k/v` -> `to_q/to_k/to_v`, `proj_out` -> `to_out.0`, and the
  1x1-conv weights `[C, C, 1, 1]` become linear weights `[C, C]`.
Both models pad (0, 1, 0, 1) before their stride-2 convolutions, so the mapping is exact (the tests check it
numerically against a reference LDM implementation).

Latent (seed): frames in [0, 1] -> x * 2 - 1 -> posterior **sample** (`latent="mode"` for the mean), unscaled
(LightningDiT's own per-channel `latents_stats.pt` normalisation is not applied, as in the seed): 256x256 ->
16x16x32. `decode` maps back to [0, 1]. Frames are resized (antialiased bilinear) to `image_size` and encoded in
chunks of `chunk_size` (a memory setting, not in the config).
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from worldmodel.encoders.frozen import KLVAEEncoder, check_chunk_size
from worldmodel.errors import InputError, MissingWeightsError

DEFAULT_FILE = "vavae-imagenet256-f16d32-dinov2.pt"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
_ATTN_LEAF = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
_UP_LEAF = {"block": "resnets", "attn": "attentions", "upsample": "upsamplers.0"}


def _levels(state: dict[str, torch.Tensor], pattern: str) -> list[int]:
    return sorted({int(m[1]) for k in state if (m := re.match(pattern, k))})


def infer_architecture(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """diffusers `AutoencoderKL` kwargs matching an LDM state dict (KeyError if it is not one)."""
    levels = _levels(state, r"encoder\.down\.(\d+)\.")
    n = len(levels)
    blocks = _levels(state, r"encoder\.down\.0\.block\.(\d+)\.")
    z = state["encoder.conv_out.weight"].shape[0] // 2
    embed = state["quant_conv.weight"].shape[0] // 2
    if not n or z != embed:
        raise KeyError("encoder levels / quant_conv")
    enc_attn = set(_levels(state, r"encoder\.down\.(\d+)\.attn\."))
    dec_attn = {n - 1 - i for i in _levels(state, r"decoder\.up\.(\d+)\.attn\.")}
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": tuple(
            "AttnDownEncoderBlock2D" if i in enc_attn else "DownEncoderBlock2D" for i in range(n)
        ),
        "up_block_types": tuple(
            "AttnUpDecoderBlock2D" if i in dec_attn else "UpDecoderBlock2D" for i in range(n)
        ),
        "block_out_channels": tuple(
            int(state[f"encoder.down.{i}.block.0.conv1.weight"].shape[0]) for i in levels
        ),
        "layers_per_block": len(blocks),
        "latent_channels": int(embed),
        "norm_num_groups": 32,
        "mid_block_add_attention": "encoder.mid.attn_1.q.weight" in state,
        "force_upcast": False,
    }


def ldm_to_diffusers(state: dict[str, torch.Tensor], levels: int) -> dict[str, torch.Tensor]:
    """Rename LDM (LightningDiT / taming) VAE tensors to diffusers `AutoencoderKL` names (module docstring)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        part, _, rest = key.partition(".")
        if part in ("quant_conv", "post_quant_conv"):
            out[key] = value
            continue
        if part not in ("encoder", "decoder"):
            continue  # loss.*, linear_proj.*, foundation model: training-only
        rest = rest.replace("nin_shortcut", "conv_shortcut")
        rest = re.sub(r"^norm_out\.", "conv_norm_out.", rest)
        rest = re.sub(r"^mid\.block_(\d)\.", lambda m: f"mid_block.resnets.{int(m[1]) - 1}.", rest)
        rest = re.sub(r"^mid\.attn_1\.", "mid_block.attentions.0.", rest)
        rest = re.sub(r"^down\.(\d+)\.block\.", r"down_blocks.\1.resnets.", rest)
        rest = re.sub(r"^down\.(\d+)\.attn\.", r"down_blocks.\1.attentions.", rest)
        rest = re.sub(r"^down\.(\d+)\.downsample\.", r"down_blocks.\1.downsamplers.0.", rest)
        rest = re.sub(
            r"^up\.(\d+)\.(block|attn|upsample)\.",
            lambda m: f"up_blocks.{levels - 1 - int(m[1])}.{_UP_LEAF[m[2]]}.",
            rest,
        )
        leaf = re.match(r"^(.*attentions\.\d+)\.(norm|q|k|v|proj_out)\.(weight|bias)$", rest)
        if leaf:
            rest = f"{leaf[1]}.{_ATTN_LEAF[leaf[2]]}.{leaf[3]}"
            if value.ndim == 4:
                value = value[:, :, 0, 0]
        out[f"{part}.{rest}"] = value
    return out


def find_checkpoint(directory: Path, checkpoint: str | None, what: str) -> Path:
    if checkpoint is not None:
        path = directory / checkpoint
        if not path.is_file():
            raise MissingWeightsError(
                f"{what}: {path} does not exist: pass checkpoint=<a file in {directory}>"
            )
        return path
    if (directory / DEFAULT_FILE).is_file():
        return directory / DEFAULT_FILE
    found = sorted(
        p
        for p in directory.iterdir()
        if p.suffix in CHECKPOINT_SUFFIXES and not p.name.startswith("latents_stats")
    )
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise MissingWeightsError(
            f"{what}: expected one VA-VAE checkpoint (*.pt) in {directory}, found {names}: "
            f"pass checkpoint=<file name> (the release is {DEFAULT_FILE})"
        )
    return found[0]


class VAVAEEncoder(KLVAEEncoder):
    """Frozen VA-VAE as a diffusers `AutoencoderKL` loaded from the LDM checkpoint (see module docstring)."""

    name = "vavae"
    default_pretrained = "hustvl/vavae-imagenet256-f16d32-dinov2"
    hub_files = [DEFAULT_FILE]

    def __init__(
        self,
        pretrained: str | None = None,
        checkpoint: str | None = None,
        image_size: int | Sequence[int] = 256,
        latent: str = "sample",
        chunk_size: int = 64,
        dtype: str = "float32",
        fingerprint: str | None = None,
    ) -> None:
        from diffusers import AutoencoderKL

        if latent not in ("sample", "mode"):
            raise InputError(f"latent must be 'sample' (the seed) or 'mode' (posterior mean), got {latent!r}")
        super().__init__(pretrained, dtype)
        self.latent, self.chunk_size = latent, check_chunk_size(chunk_size)
        self.hub_files = [checkpoint or DEFAULT_FILE]  # fetch only the one file from a Hub snapshot
        directory = self.resolve()
        path = find_checkpoint(directory, checkpoint, self.what)
        self.checkpoint = path.name
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
            raise MissingWeightsError(
                f"{self.what}: {path} does not load with weights_only=True ({type(err).__name__}): it holds "
                "more than tensors. If you trust its source, re-save only its 'state_dict' (a dict of tensors) with "
                "torch.save in a separate, trusted environment, and point checkpoint= at the new file"
            ) from err
        state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
        try:
            arch = infer_architecture(state)  # type: ignore[arg-type]
        except (KeyError, TypeError, AttributeError) as err:
            raise MissingWeightsError(
                f"{self.what}: {path} is not an LDM VAE checkpoint (no state_dict with encoder.*/decoder.*/"
                "quant_conv.* tensors): pass the VA-VAE release file"
            ) from err
        self.vae = AutoencoderKL(**arch)
        result = self.vae.load_state_dict(
            ldm_to_diffusers(state, len(arch["block_out_channels"])), strict=False
        )
        if result.missing_keys or result.unexpected_keys:
            bad = ", ".join(sorted(result.missing_keys + result.unexpected_keys)[:4])
            raise MissingWeightsError(f"{self.what}: {path} does not map onto the VAE ({bad}, ...)")
        self.set_size(image_size)
        self.finish_loading(fingerprint)

    @property
    def scaling_factor(self) -> float:
        """1: latents are unscaled (LightningDiT's per-channel `latents_stats.pt` is not applied, as in the seed)."""
        return 1.0

    def options(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "image_size": list(self._size), "latent": self.latent}
