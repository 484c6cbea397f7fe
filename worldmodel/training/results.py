"""The record every trainer returns: its summary numbers plus the trained module."""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from typing import Any


@dataclass
class TrainResult:
    """Base of the trainers' result dataclasses. The trained module is a field declared with `repr=False`;
    `to_dict()` is the JSON-safe summary without it (and without deep-copying it, as `asdict` would)."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self) if f.repr}
