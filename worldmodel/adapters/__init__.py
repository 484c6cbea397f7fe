"""Adapter registry plus one on-disk format for every adapter: `config.json` + `model.safetensors`.

Adding a family (like S-VAE, whose pixel decoder is a submodule) is one file subclassing `Adapter` and one
line in `ADAPTERS`; `save_adapter` / `load_adapter` need no change because the state dict carries every
submodule and `get_config()` carries everything the constructor needs.
"""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path
from typing import Any

from safetensors.torch import save_model

from worldmodel.adapters.base import Adapter
from worldmodel.errors import InputError, MissingWeightsError
from worldmodel.hub import resolve_pretrained
from worldmodel.io import atomic_path
from worldmodel.reading import load_weights, read_json

#: registry name -> "module:Class", imported lazily
ADAPTERS: dict[str, str] = {
    "identity": "worldmodel.adapters.identity:IdentityAdapter",
    "mlp": "worldmodel.adapters.mlp:MLPAdapter",
    "svae": "worldmodel.adapters.svae:SVAEAdapter",
}

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

__all__ = ["ADAPTERS", "Adapter", "build_adapter", "get_adapter_class", "load_adapter", "save_adapter"]


def get_adapter_class(type: str) -> type[Adapter]:
    """The class registered under `type`; `InputError` listing the known names otherwise."""
    if type not in ADAPTERS:
        raise InputError(f"unknown adapter type '{type}': choose one of {', '.join(sorted(ADAPTERS))}")
    module_name, _, class_name = ADAPTERS[type].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def build_adapter(type: str, **config: Any) -> Adapter:
    """A freshly initialised adapter; `build_adapter(**adapter.get_config())` gives the same architecture."""
    cls = get_adapter_class(type)
    params = inspect.signature(cls.__init__).parameters
    accepted = [n for n in params if n != "self"]
    unknown = sorted(set(config) - set(accepted))
    missing = [n for n, p in params.items() if n != "self" and p.default is p.empty and n not in config]
    if unknown or missing:
        raise InputError(
            f"adapter '{type}': unknown option(s) {unknown or 'none'}, missing {missing or 'none'}; "
            f"accepted are {', '.join(accepted)}"
        )
    return cls(**config)


def save_adapter(adapter: Adapter, directory: str | Path) -> Path:
    """Write `config.json` (format version + `get_config()`) and `model.safetensors`, atomically."""
    with atomic_path(directory) as tmp:
        tmp.mkdir()
        payload = {"format_version": FORMAT_VERSION, "config": adapter.get_config()}
        (tmp / CONFIG_NAME).write_text(json.dumps(payload, indent=2) + "\n")
        save_model(adapter, str(tmp / WEIGHTS_NAME))
    return Path(directory)


def load_adapter(pretrained: str | Path, device: str | None = None) -> Adapter:
    """Load an adapter saved by `save_adapter` from a local directory or a cached Hub id, in eval mode."""
    directory = resolve_pretrained(pretrained, "adapter")
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    if not config_path.is_file() or not weights_path.is_file():
        raise MissingWeightsError(
            f"adapter: {directory} lacks {CONFIG_NAME} or {WEIGHTS_NAME}: pass a directory written by save_adapter"
        )
    fix = "re-save it with save_adapter"
    payload = read_json(config_path, fix)
    try:
        version, config = payload["format_version"], dict(payload["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"adapter: {config_path} is not a valid adapter config ({err!r}): {fix}") from err
    if version != FORMAT_VERSION:
        raise InputError(
            f"adapter: {directory} has format_version {version}, this library reads {FORMAT_VERSION}: retrain it"
        )
    adapter = build_adapter(**config)
    load_weights(adapter, weights_path, f"its config {config_path}", fix, device=device or "cpu")
    return adapter.eval()
