"""Training objectives behind one interface: flow matching (the paper's setting) and DDPM (v-prediction)."""

from typing import Any

from worldmodel.errors import InputError
from worldmodel.objectives.base import Objective
from worldmodel.objectives.ddpm import DDPM, DDPMConfig
from worldmodel.objectives.flow_matching import FlowMatching, FlowMatchingConfig, default_shift, shift_time

__all__ = [
    "DDPM",
    "DDPMConfig",
    "FlowMatching",
    "FlowMatchingConfig",
    "Objective",
    "build_objective",
    "default_shift",
    "shift_time",
]


def build_objective(config: dict[str, Any], tokens_per_frame: int, channels: int) -> Objective:
    """`{"type": "flow_matching" | "ddpm", **options}` -> the objective (tokens/channels set the FM shift)."""
    options = dict(config)
    kind = options.pop("type", "flow_matching")
    try:
        if kind == "flow_matching":
            return FlowMatching(FlowMatchingConfig(**options), tokens_per_frame, channels)
        if kind == "ddpm":
            return DDPM(DDPMConfig(**options))
    except TypeError as err:
        raise InputError(f"objective '{kind}': {err}") from err
    raise InputError(f"objective type {kind!r} is unknown: choose flow_matching or ddpm")


def objective_config(objective: Objective) -> dict[str, Any]:
    """The `{"type": ..., **options}` dict that `build_objective` takes back."""
    kind = "ddpm" if isinstance(objective, DDPM) else "flow_matching"
    return {"type": kind, **objective.config.to_dict()}
