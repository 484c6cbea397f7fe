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


#: Older-layout columns a task can still read: column a dataset lacks -> (column it has, converter of its rows).
Upgrades = dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]]
#: states [N, S] -> one observation key's batch [N, ...]
StateObservation = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Recording:
    """A task's own columns in a recorded LeRobotDataset (its state and action; camera and `next.*` columns are
    the writer's), and how recordings in an older layout of the task read back as if they had the new one."""

    #: LeRobot feature spec of the task's columns, e.g. `observation.state`, `observation.environment_state`
    features: Mapping[str, dict[str, Any]]
    #: env states [T, S] (the infos' `state`) -> {column: [T, ...]} for every state column of `features`
    columns: Callable[[np.ndarray], dict[str, np.ndarray]]
    #: a dataset's features -> the columns it lacks that can be derived from one it has (empty: current layout)
    upgrades: Callable[[Mapping[str, Any]], Upgrades]


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
    #: observation key -> how an imagined env computes it from the estimated states [N, S] (the real env's
    #: observations of its state, e.g. PushT's `agent_pos`, keypoints and pose, so policies see the same keys)
    state_keys: Mapping[str, StateObservation] = field(default_factory=dict)
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
    #: how `wmeval record` writes this task's rollouts as LeRobot rows, and reads its older recordings
    recording: Recording | None = None

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

    def recorder(self) -> Recording:
        if self.recording is None or self.reward is None:
            raise ConfigError(
                f"env={self.name!r} declares no recording layout and reward: its rollouts cannot be saved"
            )
        return self.recording

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


def recording_upgrades(robot_type: Any, features: Mapping[str, Any]) -> Upgrades:
    """The columns a recording of the task `robot_type` (the name wmeval's writer stores in meta/info.json) lacks
    in its older layout, and how to derive each; {} for another robot or a recording in the current layout."""
    if not isinstance(robot_type, str) or robot_type not in TASKS:
        return {}
    recording = get_task(robot_type).recording
    return {} if recording is None else recording.upgrades(features)
