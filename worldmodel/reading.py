"""Checked reading of saved files: every artefact's JSON and safetensors files go through these functions.

A damaged file (truncated, empty, of another format, with tensors of other shapes, or from another
architecture) must reach the user as one `InputError` line that names the file and says what to do, not as
a library's own exception (`SafetensorError`, `JSONDecodeError`, a multi-line `load_state_dict` report).
Each caller passes its `fix`: the sentence that tells the user what to do about that artefact.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from worldmodel.errors import InputError, MissingWeightsError


def read_json(path: str | Path, fix: str) -> dict[str, Any]:
    """The JSON object in `path`; a missing, unreadable or non-object file is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"{path} does not exist: {fix}")
    try:
        value = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(
            f"{path} is not valid JSON (truncated, empty or another format: {err}): {fix}"
        ) from err
    if not isinstance(value, dict):
        raise InputError(f"{path} holds a JSON {type(value).__name__}, not the object it should: {fix}")
    return value


def read_tensors(
    path: str | Path, fix: str, framework: str = "pt", device: str | torch.device = "cpu"
) -> tuple[dict[str, Any], dict[str, str]]:
    """The tensors and the metadata of the safetensors file `path` (framework "pt" or "numpy")."""
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"{path} does not exist: {fix}")
    try:
        options = {"device": str(device)} if framework == "pt" else {}
        with safe_open(str(path), framework=framework, **options) as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except Exception as err:  # safetensors raises several types for truncated or foreign files
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(
            f"{path} cannot be read (truncated, empty or not a safetensors file: {first}): {fix}"
        ) from err


def check_shapes(
    expected: Mapping[str, torch.Tensor], found: Mapping[str, Any], path: str | Path, against: str, fix: str
) -> None:
    """Refuse `found` (read from `path`) unless it has exactly `expected`'s tensor names and shapes."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    reshaped = [
        f"{k} {tuple(found[k].shape)} != {tuple(expected[k].shape)}"
        for k in found
        if k in expected and tuple(found[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or reshaped:
        raise InputError(
            f"{path} does not match {against} (missing {missing[:3]}, unexpected {unexpected[:3]}, other shape "
            f"{reshaped[:3]}): it holds another architecture's weights; {fix}"
        )


def load_weights(
    module: torch.nn.Module,
    path: str | Path,
    against: str,
    fix: str,
    mismatch_fix: str | None = None,
    device: str | torch.device = "cpu",
) -> None:
    """Read `path`, check its names and shapes against `module`'s state dict, then load it (strict).

    `mismatch_fix` replaces `fix` when the file is readable but belongs to another architecture.
    """
    state, _ = read_tensors(path, fix, device=device)
    check_shapes(module.state_dict(), state, path, against, mismatch_fix or fix)
    module.load_state_dict(state)
