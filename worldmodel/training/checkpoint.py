"""Resumable training checkpoints: safetensors for tensors, JSON for the rest; written atomically.

A checkpoint holds everything that makes resuming bit-exact on CPU: model, EMA, optimizer state, the loss
generator's state and the clip sampler's state. No pickle: optimizer state is flattened into named tensors.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from worldmodel.errors import InputError
from worldmodel.io import atomic_path
from worldmodel.reading import load_weights, read_json, read_tensors

STEP_DIR = re.compile(r"^step_(\d{8})$")


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, param_state in state["state"].items():
        for key, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    for idx, values in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    directory: Path,
    step: int,
    model: torch.nn.Module,
    ema: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    extra: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write `directory/step_XXXXXXXX/` atomically and prune all but the newest `keep` checkpoints."""
    path = directory / f"step_{step:08d}"
    optim_tensors, optim_meta = _flatten_optimizer(optimizer)
    with atomic_path(path) as tmp:
        tmp.mkdir(parents=True)
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
            tmp / "model.safetensors",
        )
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in ema.state_dict().items()}, tmp / "ema.safetensors"
        )
        optim_tensors["rng.torch"] = generator.get_state()
        save_file(optim_tensors, tmp / "trainer.safetensors")
        (tmp / "state.json").write_text(json.dumps({"step": step, "optimizer": optim_meta, **extra}) + "\n")
    for old in sorted(checkpoints(directory))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def checkpoints(directory: Path) -> list[Path]:
    """Complete checkpoints (temporaries are dot-prefixed and never match), oldest first."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_dir() and STEP_DIR.match(p.name))


def load_checkpoint(
    path: Path,
    model: torch.nn.Module,
    ema: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> dict[str, Any]:
    """Restore everything `save_checkpoint` wrote; returns the JSON state (step, sampler state, history)."""
    unreadable = f"delete {path} to resume from the checkpoint before it"
    other = "resume with the settings it was trained with, or train afresh in another out=DIR"
    state = read_json(path / "state.json", unreadable)
    for name, module in (("model", model), ("ema", ema)):
        load_weights(module, path / f"{name}.safetensors", "this run's model", unreadable, mismatch_fix=other)
    trainer, _ = read_tensors(path / "trainer.safetensors", unreadable)
    try:
        generator.set_state(trainer.pop("rng.torch"))
        _check_optimizer_shapes(optimizer, trainer)
        optimizer.load_state_dict(_unflatten_optimizer(trainer, state["optimizer"]))
    except (RuntimeError, ValueError, KeyError, TypeError) as err:
        first = str(err).strip().splitlines()[0]
        raise InputError(
            f"checkpoint {path}: trainer.safetensors and state.json belong to another model or optimizer "
            f"({first}): {other}"
        ) from err
    return state


def _check_optimizer_shapes(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    """Per-parameter state (Adam's moments) must have its parameter's shape; `load_state_dict` never checks."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for name, value in tensors.items():
        _, idx, key = name.split(".", 2)
        if value.ndim and int(idx) < len(params) and value.shape != params[int(idx)].shape:
            raise ValueError(
                f"{key} of parameter {idx} has shape {tuple(value.shape)}, not {tuple(params[int(idx)].shape)}"
            )
