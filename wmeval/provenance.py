"""What a world model was trained on, and whether a ranked policy's behaviour is part of it.

Ranking the policies whose recordings trained a world model measures how well it replays its training data,
not how well it ranks new policies. `wmeval train` records the policies behind its training episodes in the
model's manifest (`meta.training_policies`, kept across warm starts), so every report can say which ranked
policies are in-distribution.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def behaviour_name(policy: str) -> str:
    """The behaviour behind a policy name: `pusht/expert@image` acts as `pusht/expert` does (only where its
    state comes from differs), so both count as the same behaviour."""
    return str(policy).split("@", 1)[0]


def training_data(world_model: Any) -> dict[str, Any] | None:
    """`{"data", "policies"}` from a world model's manifest; None for a model without one (a baseline).

    `policies` is None when the manifest predates this record (unknown, not empty).
    """
    meta = getattr(getattr(world_model, "config", None), "meta", None)
    if not isinstance(meta, dict) or not meta:
        return None
    policies = meta.get("training_policies")
    return {"data": meta.get("data"), "policies": None if policies is None else sorted(policies)}


def in_training_data(policy: str, training: dict[str, Any] | None) -> bool | None:
    """Whether `policy`'s behaviour produced (part of) the training data; None when that is unknown."""
    if training is None or training.get("policies") is None:
        return None
    return behaviour_name(policy) in {behaviour_name(p) for p in training["policies"]}


def policies_in(episodes: Iterable[dict[str, Any]]) -> list[str]:
    """The distinct behaviours of a dataset's episodes (`policy` from wmeval's sidecar, else the task)."""
    return sorted({behaviour_name(ep["policy"]) for ep in episodes if ep.get("policy")})
