"""Start a DiT from another run's weights, keeping only tensors whose names and shapes match.

Used to move a single-view model to several views: the views only widen the token grid, whose
RoPE tables are not saved, so every weight carries over; anything that does not fit (another latent width,
action size or head) keeps its fresh initialisation and is reported, never silently dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from worldmodel.errors import InputError
from worldmodel.reading import read_tensors
from worldmodel.training.checkpoint import checkpoints

#: prefixes of the DiT's transformer blocks: what `freeze_backbone_steps` holds still
BACKBONE_PREFIXES = ("spatial_blocks.", "temporal_blocks.")


def resolve_weights(source: str | Path) -> Path:
    """The safetensors file behind `source`: a world-model dir (its EMA `dit.safetensors`), a checkpoint dir
    (`ema.safetensors`, else `model.safetensors`), a training run dir (its newest checkpoint), or the file."""
    path = Path(source)
    if path.is_file():
        return path
    candidates = [path / "dit.safetensors", path / "ema.safetensors", path / "model.safetensors"]
    if (path / "model").is_dir():
        candidates.append(path / "model" / "dit.safetensors")
    newest = checkpoints(path / "checkpoints")
    if newest:
        candidates.append(newest[-1] / "ema.safetensors")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise InputError(
        f"init_from={source} holds no DiT weights: pass a world-model directory (with dit.safetensors), "
        "a checkpoint directory (step_XXXXXXXX) or a training run directory"
    )


def load_matching_weights(model: torch.nn.Module, source: str | Path) -> dict[str, Any]:
    """Copy every tensor of `source` whose name and shape match `model`; return what was loaded and skipped."""
    path = resolve_weights(source)
    state, _ = read_tensors(path, "point init_from at another file")
    own = model.state_dict()
    loaded, mismatched = [], []
    for name, value in state.items():
        if name in own and tuple(own[name].shape) == tuple(value.shape):
            loaded.append(name)
        elif name in own:
            mismatched.append(f"{name} {tuple(value.shape)} -> {tuple(own[name].shape)}")
    if not loaded:
        raise InputError(f"init_from: no tensor in {path} matches this model: is it a DiT checkpoint?")
    with torch.no_grad():
        for name in loaded:
            own[name].copy_(state[name])
    return {
        "source": str(path),
        "loaded": len(loaded),
        "skipped_shape": mismatched,
        "missing_in_source": sorted(set(own) - set(state)),
        "unused_in_source": sorted(set(state) - set(own)),
    }


def is_backbone(name: str) -> bool:
    return name.startswith(BACKBONE_PREFIXES)
