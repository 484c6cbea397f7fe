"""Tasks by name: what an env is, asked here by every module, so that adding one is one file and one line.

A task module (like `wmeval/envs/pusht.py`, LeRobot's `PushtEnv` pattern) declares a `TASK = Task(...)`: how to
build its real env, how its imagined worlds are judged, its state layout and its named policy sets. The
modules are imported only when asked for, so naming a task costs nothing until it is used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

import gymnasium as gym
import numpy as np

from wmeval.errors import ConfigError
from wmeval.judges.frame import FrameJudge

#: task name -> the module that defines its `TASK`.
TASKS: dict[str, str] = {
    "pusht": "wmeval.envs.pusht",
}

#: The named policy sets a task may declare (`wmeval rank policies=family`, `wmeval record policy=heldout`).
POLICY_SETS = ("family", "heldout")


@dataclass(frozen=True)
class Task:
    """One env's declaration; the optional parts are None where the task has none."""

    name: str
    #: (num_envs, **kwargs) -> the real gymnasium vector env, infos carrying `state`, `coverage`, `is_success`.
    make_env: Callable[..., gym.vector.VectorEnv]
    #: what judges the real rollouts, as the report names it
    real_judge: str
    #: the real env's control rate (steps per second), which saved rollouts and videos keep
    fps: int = 10
    #: observation key -> (lo, hi) slice of the estimated state an imagined env fills it from
    state_keys: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    #: policy set name (one of POLICY_SETS) -> its policy names
    policy_sets: Mapping[str, Callable[[], list[str]]] = field(default_factory=dict)
    #: a trained estimator's directory (None: the shipped one) -> the state estimator; the one place it loads
    load_estimator: Callable[[str | None], Any] | None = None
    #: where the shipped estimator lives, for reports
    shipped_estimator: str = ""
    #: state estimator -> the judge of imagined frames
    frame_judge: Callable[[Any], FrameJudge] | None = None
    #: (frames, val_frames, epochs=, batch_size=, lr=, seed=) -> (trained estimator, held-out errors)
    train_estimator: Callable[..., tuple[Any, dict[str, Any]]] | None = None
    #: judged coverage [...] -> the real env's reward [...], so an imagined env pays the real env's formula
    reward: Callable[[np.ndarray], np.ndarray] | None = None

    def estimator(self, directory: str | None = None) -> Any:
        if self.load_estimator is None:
            raise ConfigError(f"env={self.name!r} has no state estimator: it cannot read state off frames")
        return self.load_estimator(directory)

    def judge(self, estimator: str | None = None) -> FrameJudge:
        """The frame judge of this task's imagined worlds, reading with the estimator in `estimator` (None:
        the shipped one)."""
        if self.frame_judge is None:
            raise ConfigError(f"env={self.name!r} has no frame judge, so it has no imagined counterpart yet")
        return self.frame_judge(self.estimator(estimator))

    def policy_set(self, name: str) -> list[str]:
        if name not in self.policy_sets:
            known = ", ".join(self.policy_sets) or "none"
            raise ConfigError(f"env={self.name!r} has no policy set {name!r}: it has {known}")
        return self.policy_sets[name]()


def task_names() -> tuple[str, ...]:
    return tuple(TASKS)


def get_task(name: Any, key: str = "env") -> Task:
    """The task registered as `name`; an unknown one is a one-line error (naming `key`) listing the known."""
    if not isinstance(name, str) or name not in TASKS:
        raise ConfigError(f"{key}={name!r} is unknown: choose one of {', '.join(TASKS)}")
    return import_module(TASKS[name]).TASK
