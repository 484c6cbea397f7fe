"""Checked reading of a saved policy-side model (`policies` may not import `worldmodel`, so it keeps its own).

A damaged `config.json` or `model.safetensors` (truncated, empty, another format, other shapes, another
architecture) becomes one `PolicyError` line naming the file and the fix, not a library's own exception.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from policies.errors import PolicyError


def read_json(path: Path, fix: str) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PolicyError(
            f"{path} is not valid JSON (truncated, empty or another format: {err}): {fix}"
        ) from err
    if not isinstance(value, dict):
        raise PolicyError(f"{path} holds a JSON {type(value).__name__}, not the object it should: {fix}")
    return value


def load_weights(module: torch.nn.Module, path: Path, against: str, fix: str, device: str = "cpu") -> None:
    """Load `path` into `module` after checking that it is a safetensors file with the module's shapes."""
    from safetensors.torch import load_file

    try:
        state = load_file(path, device=device)
    except Exception as err:  # safetensors raises several types for truncated or foreign files
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PolicyError(
            f"{path} cannot be read (truncated, empty or not a safetensors file: {first}): {fix}"
        ) from err
    expected = module.state_dict()
    wrong = sorted(set(expected) ^ set(state)) + [
        k for k in state if k in expected and state[k].shape != expected[k].shape
    ]
    if wrong:
        raise PolicyError(
            f"{path} does not match {against} ({wrong[:3]}): it holds another model's weights; {fix}"
        )
    module.load_state_dict(state)
