"""`RankConfig`: every setting of a ranking run, typed and checked before any work starts.

`wmeval rank` and `wmeval demo` build one from their Hydra config (`RankConfig.from_config`); Python callers
build one directly. The checks live here, not in the commands, so both entry points fail the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from wmeval.errors import ConfigError
from wmeval.judges.outcomes import check_outcome

RERUN_MODES = ("save", "spawn", "serve", "off")


@dataclass
class RankConfig:
    """What to rank (env, policies, world models), how (episodes, steps, workers) and what to write."""

    env: str = "pusht"
    policies: str | list[str] = "family"  # policy sets (family, heldout) and/or policy names
    world_models: list[str] = field(default_factory=lambda: ["shipped"])
    baseline: bool = True  # also rank with the copy-last-frame world model
    episodes: int | str = 16  # paired start states per policy, or "auto" (see `precision`)
    precision: float | None = None  # episodes="auto": the Spearman 95% CI half-width to reach
    pilot_episodes: int = 16
    max_episodes: int = 256
    max_steps: int = 150
    seed: int = 0
    outcome: str = "graded"
    num_envs: int = 16
    num_steps: int | None = 2
    workers: int | str = 1
    readable_only: bool = False
    n_boot: int = 1000
    device: str = "cpu"
    rerun: str = "save"
    save_rollouts: bool = True
    rerun_episodes: int = 2
    videos: int = 2
    progress: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        check_outcome(self.outcome)
        if self.rerun not in RERUN_MODES:
            raise ConfigError(f"rerun={self.rerun!r} is unknown: choose save, spawn, serve or off")
        if self.episodes != "auto" and (not isinstance(self.episodes, int) or self.episodes < 2):
            raise ConfigError(f"episodes={self.episodes} must be an integer >= 2 for a bootstrap, or auto")
        if self.max_steps < 1:
            raise ConfigError(f"max_steps={self.max_steps} must be >= 1")
        if not isinstance(self.videos, int) or self.videos < 0:
            raise ConfigError(
                f"videos={self.videos} must be an integer >= 0 (episodes per policy; 0: no videos)"
            )

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> RankConfig:
        """The ranking keys of a command's config (a DictConfig or a dict); other keys are the command's."""
        values = {f.name: cfg[f.name] for f in fields(cls) if f.name in cfg}
        for key in ("policies", "world_models"):
            if key in values and not isinstance(values[key], str):
                values[key] = [str(v) for v in values[key]]
        return cls(**values)
