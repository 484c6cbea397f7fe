"""Dataset cards (`datasets/<name>.yaml`): what a dataset is, and how its actions become world-model units.

A card is mostly documentation (source, cameras, storage, success rule); the one section code reads is
`action`, which names the action dimensions and their scaling:

    action:
      names: [x, y, z, roll, pitch, yaw, gripper]
      normalization: min_max          # dims without a fixed range: min_max (-> [-1, 1]) | mean_std
      ranges:                         # fixed per-dim scaling (e.g. the paper's Bridge V2 rescaling)
        x: {from: [-0.05, 0.05], to: [-1.75, 1.75]}
        roll: {from: [-0.25, 0.25], to: [-1.4, 1.4], margin: 0.01}   # clip to [-1.39, 1.39]
        gripper: {from: [1.0, 0.0], to: [-1.0, 1.0], binary: true}  # open 1 -> -1, closed 0 -> +1
      null_action: learned

or `action: {same_as: <card>}` to share another card's layout. Dimensions without a range take their statistics from the dataset's own `meta/stats.json` (LeRobot writes
min/max/mean/std per feature), falling back to the training actions when the file lacks them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from wmeval.errors import ConfigError
from worldmodel.data.actions import ActionLayout

CARDS_DIR = Path(__file__).resolve().parents[2] / "datasets"
#: Top-level fields a card may have. Only `action` is read by code; the rest document the dataset.
DOC_FIELDS = {
    "name", "format", "source", "hub", "license", "citation", "env", "fps", "robot", "cameras", "language",
    "success", "convert", "notes", "max_episode_steps", "recorded_by", "start_states", "storage", "row_layout",
    "features", "coordinates", "goal_pose", "success_rule", "sidecars", "reading", "status",
}  # fmt: skip
ACTION_FIELDS = {"names", "normalization", "ranges", "null_action", "meaning", "same_as"}
RANGE_FIELDS = {"from", "to", "margin", "binary"}
NORMALIZATIONS = ("min_max", "mean_std")


def load_card(card: str | Path) -> dict[str, Any]:
    """A card by name (`bridge_v2` -> datasets/bridge_v2.yaml) or path, checked field by field."""
    path = Path(card)
    if not path.suffix:
        path = CARDS_DIR / f"{card}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CARDS_DIR.glob("*.yaml")))
        raise ConfigError(f"card={card} is neither a card name ({known}) nor a YAML file")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"card {path} must be a YAML mapping of fields")
    _check_fields(data, DOC_FIELDS | {"action"}, f"card {path}")
    action = data.get("action") or {}
    _check_fields(action, ACTION_FIELDS, f"card {path}: action")
    if "same_as" in action:  # another card's action layout (e.g. SOAR uses Bridge V2's), never copied
        if set(action) != {"same_as"}:
            raise ConfigError(f"card {path}: action.same_as stands alone; move the other action fields there")
        data["action"] = action = load_card(action["same_as"]).get("action") or {}
    for name, spec in (action.get("ranges") or {}).items():
        _check_fields(spec, RANGE_FIELDS, f"card {path}: action.ranges.{name}")
        if name not in (action.get("names") or []):
            raise ConfigError(f"card {path}: action.ranges.{name} is not one of action.names; add it there")
    return data


def action_layout(
    card: dict[str, Any], actions: np.ndarray, stats: dict[str, Any] | None, action_key: str
) -> ActionLayout:
    """The card's action layout for a dataset whose (training) actions are `actions [N, A]`."""
    spec = card.get("action") or {}
    dim = actions.shape[1]
    names = [str(n) for n in spec.get("names") or [f"a{i}" for i in range(dim)]]
    if len(names) != dim:
        raise ConfigError(
            f"card {card.get('name')!r} names {len(names)} action dims but {action_key} has {dim}: "
            "fix action.names or pick the right action_key"
        )
    mode = spec.get("normalization", "min_max")
    if mode not in NORMALIZATIONS:
        raise ConfigError(f"card action.normalization={mode!r} is unknown: use {' or '.join(NORMALIZATIONS)}")
    offset, scale = _statistics(mode, actions, (stats or {}).get(action_key) or {})
    clip: list[list[float] | None] = [None] * dim
    binary = [False] * dim
    for i, name in enumerate(names):
        rng = (spec.get("ranges") or {}).get(name)
        if rng is None:
            continue
        (lo, hi), (a, b) = _pair(rng, "from", name), _pair(rng, "to", name)
        scale[i] = (hi - lo) / (b - a)
        offset[i] = lo - a * scale[i]
        if "margin" in rng:
            m = float(rng["margin"])
            clip[i] = [min(a, b) + m, max(a, b) - m]
        elif not rng.get("binary"):
            clip[i] = [min(a, b), max(a, b)]
        binary[i] = bool(rng.get("binary", False))
    return ActionLayout(
        names=names,
        offset=offset.tolist(),
        scale=scale.tolist(),
        clip=clip,
        binary=binary,
        null_action=str(spec.get("null_action", "learned")),
    )


def _statistics(mode: str, actions: np.ndarray, stats: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Offset/scale from the dataset's stats.json when it has them, else from `actions`; constant dims get 1."""
    if mode == "min_max":
        lo = np.asarray(stats.get("min", actions.min(axis=0)), np.float64).reshape(-1)
        hi = np.asarray(stats.get("max", actions.max(axis=0)), np.float64).reshape(-1)
        offset, scale = (lo + hi) / 2, (hi - lo) / 2
    else:
        offset = np.asarray(stats.get("mean", actions.mean(axis=0)), np.float64).reshape(-1)
        scale = np.asarray(stats.get("std", actions.std(axis=0)), np.float64).reshape(-1)
    if offset.shape != (actions.shape[1],):
        raise ConfigError(
            f"meta/stats.json has {offset.size} action stats for {actions.shape[1]} action dims"
        )
    return offset, np.where(scale > 1e-8, scale, 1.0)


def _pair(spec: dict[str, Any], key: str, name: str) -> tuple[float, float]:
    value = spec.get(key)
    if not isinstance(value, (list, tuple)) or len(value) != 2 or float(value[0]) == float(value[1]):
        raise ConfigError(
            f"card action.ranges.{name}.{key} must be two different numbers [a, b], got {value}"
        )
    return float(value[0]), float(value[1])


def _check_fields(data: Any, known: set[str], where: str) -> None:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{where} has unknown field(s) {', '.join(unknown)}: remove or rename them (known: {', '.join(sorted(known))})"
        )
