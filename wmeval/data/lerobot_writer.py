"""Rollouts -> LeRobotDataset v3 rows, through LeRobot's own `create` / `add_frame` / `save_episode`.

Row layout (LeRobot's, as in `lerobot/pusht`): an episode of T executed steps has T rows. Row t holds
observation t, the action taken at t, and `next.reward` / `next.success` / `next.done` / `next.coverage` of the
step that action leads to; `next.done` is true on the last row only. The observation after the last action is
not a row (its coverage is the last row's `next.coverage`). The task declares its own columns
(`wmeval.envs.registry.Recording`); for PushT, `observation.environment_state` holds the tee's 16 keypoint
coordinates as gym-pusht's `get_keypoints` gives them and `observation.pose` the 5-d state
[agent x, agent y, block x, block y, block theta] (see `datasets/pusht.yaml`). `coverage` is the coverage of
the row's own observation and `next.reward` the env's reward for the step.

Recordings made before this layout have T + 1 rows (the last holds the final observation and repeats the last
action; `is_final_observation` marks it) and PushT's 5-d state in `observation.environment_state`;
`wmeval.data.lerobot_episodes.load_episodes` reads both.
"""

from __future__ import annotations

import json
import logging
import platform
from pathlib import Path
from typing import Any

import numpy as np

from wmeval.envs.registry import Task
from wmeval.rollout import Rollouts

EPISODES_FILE = "meta/wmeval_episodes.jsonl"
RECORD_FILE = "meta/wmeval_record.json"
#: what the manifests say about the rows
ROW_LAYOUT = "T rows per episode of T steps (LeRobot's): row t = observation t, action t, next.* of that step"


def dataset_features(task: Task, image_shape: tuple[int, int, int], use_videos: bool = False) -> dict:
    """LeRobot feature spec of a recording of `task`: its camera, the task's own columns, and the step's."""
    flag = {"dtype": "bool", "shape": (1,), "names": None}
    scalar = {"dtype": "float32", "shape": (1,), "names": None}
    return {
        "observation.image": {
            "dtype": "video" if use_videos else "image",
            "shape": image_shape,
            "names": ["height", "width", "channels"],
        },
        **task.recorder().features,
        "next.reward": scalar,
        "next.success": flag,
        "next.done": flag,
        "next.coverage": scalar,
        "coverage": scalar,
    }


def create_dataset(
    root: Path,
    repo_id: str,
    fps: int,
    task: Task,
    use_videos: bool = False,
    image_shape: tuple[int, int, int] = (96, 96, 3),
) -> Any:
    """An empty LeRobotDataset of `task`'s recordings at `root` (which must not exist yet), quiet while it is
    written; its `robot_type` names the task, so readers know which task's older layouts it may have."""
    logging.getLogger("lerobot").setLevel(logging.WARNING)
    import datasets

    datasets.disable_progress_bars()  # one progress bar (ours), not one per saved episode
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    return LeRobotDataset.create(
        repo_id=repo_id,
        fps=fps,
        features=dataset_features(task, image_shape, use_videos),
        root=root,
        robot_type=task.name,
        use_videos=use_videos,
    )


def package_versions() -> dict[str, str]:
    """Versions that decide what a recorded episode looks like, for the dataset's manifest."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("lerobot", "gymnasium", "gym-pusht", "torch", "wmeval"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def add_episode(dataset: Any, episode: dict[str, Any], task: Task, instruction: str) -> None:
    """Append one trimmed episode (`Rollouts.episode(i)`) as T rows and save it."""
    frames, actions, cov = episode["frames"], episode["actions"], np.asarray(episode["coverage"])
    steps = len(actions)
    columns = task.recorder().columns(episode["states"][:steps])
    reward = np.asarray(task.reward(cov[1:]), np.float32)
    step_success = np.asarray(episode["step_success"], bool)
    for t in range(steps):
        dataset.add_frame(
            {
                "observation.image": frames[t],
                **{key: col[t] for key, col in columns.items()},
                "action": np.asarray(actions[t], np.float32),
                "next.reward": reward[t : t + 1],
                "next.success": step_success[t : t + 1],
                "next.done": np.array([t == steps - 1]),
                "next.coverage": np.array([cov[t + 1]], np.float32),
                "coverage": np.array([cov[t]], np.float32),
                "task": instruction,
            }
        )
    dataset.save_episode()


def write_rollouts(
    dataset: Any,
    rollouts: Rollouts,
    task: Task,
    instruction: str,
    extra: dict[str, Any],
    sidecar: Path,
    start_states: np.ndarray | None = None,
) -> None:
    """Append every episode of `rollouts` (of `task`, LeRobot task string `instruction`: the policy's name) and
    one JSON line per episode to the sidecar.

    Each line names the episode's start state: `start_states [N, S]` when given (an imagined rollout's own
    first state is only an estimate of the real one it started from), else the episode's first state.
    """
    with open(sidecar, "a") as f:
        for i in range(rollouts.num_episodes):
            ep = rollouts.episode(i)
            index = dataset.meta.total_episodes
            add_episode(dataset, ep, task, instruction)
            start = start_states[i] if start_states is not None else ep["states"][0]
            line = {
                "episode_index": index,
                "policy": instruction,
                "seed": ep["seed"],
                "start_state": np.asarray(start, float).round(4).tolist(),
                "success": ep["success"],
                "length": ep["length"],
                "max_coverage": float(np.max(ep["coverage"])),
                "final_coverage": float(ep["coverage"][-1]),
                **extra,
            }
            f.write(json.dumps(line) + "\n")
