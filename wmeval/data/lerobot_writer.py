"""Rollouts -> LeRobotDataset v3 rows, through LeRobot's own `create` / `add_frame` / `save_episode`.

Row layout (one episode of T executed steps has T + 1 rows, so the final observation, the one that shows
success, is kept for world models and judges): row t holds observation t, the action taken at t, and
`next.*` after that action. The last row holds the final observation; its action repeats the previous one
(never executed) and `is_final_observation` marks it.
"""

from __future__ import annotations

import json
import logging
import platform
from pathlib import Path
from typing import Any

import numpy as np

from wmeval.rollout import Rollouts

EPISODES_FILE = "meta/wmeval_episodes.jsonl"
RECORD_FILE = "meta/wmeval_record.json"
STATE_NAMES = ["agent_x", "agent_y", "block_x", "block_y", "block_theta"]


def pusht_features(image_shape: tuple[int, int, int] = (96, 96, 3), use_videos: bool = False) -> dict:
    """LeRobot feature spec of a recorded PushT dataset."""
    return {
        "observation.image": {
            "dtype": "video" if use_videos else "image",
            "shape": image_shape,
            "names": ["height", "width", "channels"],
        },
        "observation.state": {"dtype": "float32", "shape": (2,), "names": ["agent_x", "agent_y"]},
        "observation.environment_state": {"dtype": "float32", "shape": (5,), "names": STATE_NAMES},
        "action": {"dtype": "float32", "shape": (2,), "names": ["target_x", "target_y"]},
        "next.reward": {"dtype": "float32", "shape": (1,), "names": None},
        "next.success": {"dtype": "bool", "shape": (1,), "names": None},
        "next.done": {"dtype": "bool", "shape": (1,), "names": None},
        "coverage": {"dtype": "float32", "shape": (1,), "names": None},
        "is_final_observation": {"dtype": "bool", "shape": (1,), "names": None},
    }


def create_dataset(root: Path, repo_id: str, fps: int, use_videos: bool = False) -> Any:
    """An empty PushT-layout LeRobotDataset at `root` (which must not exist yet), quiet while it is written."""
    logging.getLogger("lerobot").setLevel(logging.WARNING)
    import datasets

    datasets.disable_progress_bars()  # one progress bar (ours), not one per saved episode
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    return LeRobotDataset.create(
        repo_id=repo_id,
        fps=fps,
        features=pusht_features(use_videos=use_videos),
        root=root,
        robot_type="pusht",
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


def add_episode(dataset: Any, episode: dict[str, Any], task: str) -> None:
    """Append one trimmed episode (`Rollouts.episode(i)`) as T + 1 rows and save it."""
    frames, actions, states, cov = (
        episode["frames"],
        episode["actions"],
        episode["states"],
        episode["coverage"],
    )
    steps = len(actions)
    step_success = np.asarray(episode["step_success"], bool)
    for t in range(steps + 1):
        final = t == steps
        a = actions[min(t, steps - 1)]
        after = min(t + 1, steps)
        dataset.add_frame(
            {
                "observation.image": frames[t],
                "observation.state": states[t, :2].astype(np.float32),
                "observation.environment_state": states[t].astype(np.float32),
                "action": np.asarray(a, np.float32),
                "next.reward": np.array([cov[after]], np.float32),
                "next.success": np.array([bool(step_success[min(t, steps - 1)])]),
                "next.done": np.array([t >= steps - 1]),
                "coverage": np.array([cov[t]], np.float32),
                "is_final_observation": np.array([final]),
                "task": task,
            }
        )
    dataset.save_episode()


def write_rollouts(
    dataset: Any,
    rollouts: Rollouts,
    task: str,
    extra: dict[str, Any],
    sidecar: Path,
    start_states: np.ndarray | None = None,
) -> None:
    """Append every episode of `rollouts` and one JSON line per episode to the sidecar.

    Each line names the episode's start state: `start_states [N, S]` when given (an imagined rollout's own
    first state is only an estimate of the real one it started from), else the episode's first state.
    """
    with open(sidecar, "a") as f:
        for i in range(rollouts.num_episodes):
            ep = rollouts.episode(i)
            index = dataset.meta.total_episodes
            add_episode(dataset, ep, task)
            start = start_states[i] if start_states is not None else ep["states"][0]
            line = {
                "episode_index": index,
                "policy": task,
                "seed": ep["seed"],
                "start_state": np.asarray(start, float).round(4).tolist(),
                "success": ep["success"],
                "length": ep["length"],
                "max_coverage": float(np.max(ep["coverage"])),
                "final_coverage": float(ep["coverage"][-1]),
                **extra,
            }
            f.write(json.dumps(line) + "\n")
