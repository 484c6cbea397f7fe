"""What gets ranked: policies from set or policy names, world models from directories, Hub ids or `shipped`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from wmeval.envs.registry import POLICY_SETS, get_task
from wmeval.errors import ConfigError
from wmeval.provenance import in_training_data, training_data
from wmeval.shipped import SHIPPED, shipped_path
from worldmodel import WorldModel
from worldmodel.baselines import CopyLastFrameWorldModel
from worldmodel.hub import looks_like_hub_id, split_revision

log = logging.getLogger(__name__)


def resolve_policy_sets(env: str, policies: str | list[str]) -> dict[str, list[str]]:
    """A policy set the env's task names (`family`, `heldout`) -> its members, image-based (a world model gives
    pixels, not sim state); any other names form the set `listed`. A string is one entry; a list may mix sets
    and names."""
    task = get_task(env)
    entries = [policies] if isinstance(policies, str) else [str(p) for p in policies]
    sets: dict[str, list[str]] = {}
    for entry in entries:
        if entry in POLICY_SETS:
            sets[entry] = [f"{n}@image" for n in task.policy_set(entry)]
        else:
            sets.setdefault("listed", []).append(entry)
    names = [n for group in sets.values() for n in group]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ConfigError(
            f"policies={entries} must name at least two distinct policies: give `family`, `heldout`, "
            "both ([family,heldout]) or a list of policy names"
        )
    return sets


def resolve_world_models(specs: list[str], baseline: bool, device: str) -> dict[str, Any]:
    """name -> world model for each spec, plus the copy-last baseline (shaped like the first) when asked."""
    models: dict[str, Any] = {}
    for spec in specs:
        path = shipped_path(spec)
        name = spec if spec in SHIPPED else path.name if path.name != "model" else path.parent.name
        if spec in SHIPPED and not (path / "world_model.json").is_file():
            raise ConfigError(
                f"the shipped world model {spec!r} is missing at {path}: reinstall, or pass world_models=[DIR]"
            )
        models[name] = load_world_model(str(path), device=device)
    if not models:
        raise ConfigError("world_models is empty: pass at least one model directory (or `shipped`)")
    if baseline:
        models["copy_last"] = load_world_model("copy_last", reference=next(iter(models.values())))
    return models


def load_world_model(spec: str, *, reference: Any = None, device: str = "cpu") -> Any:
    """A world model from a directory or a Hub id (`owner/name[@revision]`, read from the Hugging Face cache),
    or `copy_last` (the baseline, shaped like `reference`)."""
    if spec == "copy_last":
        if reference is None:
            raise ConfigError(
                "world model 'copy_last' needs a real world model beside it to copy its protocol"
            )
        ref = reference.config
        return CopyLastFrameWorldModel(
            reference.image_size, ref.raw_action_dim, ref.sim_steps_per_frame, ref.action_mode
        )
    if not Path(spec).is_dir() and not looks_like_hub_id(split_revision(spec)[0]):
        raise ConfigError(
            f"world model {spec!r} is not a directory: pass a `wmeval train` output's model/ dir "
            "or a Hub id (owner/name) in the Hugging Face cache"
        )
    return WorldModel.from_pretrained(spec, device=device)


def warn_in_training_data(policies: dict[str, Any], world_models: dict[str, Any]) -> None:
    """Say which ranked policies produced a world model's training data: their fidelity is in-distribution."""
    for wm_name, wm in world_models.items():
        training = training_data(wm)
        seen = [p for p in policies if in_training_data(p, training)]
        if seen:
            log.warning(
                "%s was trained on the behaviour of %s: ranking them measures replay of training data, "
                "not ranking of new policies (the report flags them; read the held-out set's fidelity)",
                wm_name,
                ", ".join(seen),
            )
