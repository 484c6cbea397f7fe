"""A ranking's rollouts as LeRobotDatasets: one per world (the real env, each world model), each with a manifest.

The layout is `wmeval record`'s (same features, row layout and per-episode sidecar), so a saved world reads
back like any recorded dataset (LeRobot's own loader, or `wmeval.data.lerobot_episodes.load_episodes`).
Imagined episodes carry the judge's estimated states (their frames have no simulator state) and name the real
start state they were paired with.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from wmeval.data.lerobot_writer import (
    EPISODES_FILE,
    RECORD_FILE,
    ROW_LAYOUT,
    create_dataset,
    package_versions,
    write_rollouts,
)
from wmeval.envs.registry import get_task
from wmeval.errors import WmevalError
from wmeval.io import atomic_path, write_json
from wmeval.rollout import Rollouts

REAL = "real"


def save_rank_rollouts(
    root: Path,
    real: Mapping[str, Rollouts],
    imagined: Mapping[str, Mapping[str, Rollouts]],
    *,
    checkpoints: Mapping[str, str],
    judges: Mapping[str, str],
    env: str,
    seed: int,
    fps: int,
    progress: bool = True,
) -> dict[str, Path]:
    """Write `root/<world>/` for the real env and each world model; returns world -> dataset directory.

    `checkpoints` names each world model's checkpoint and `judges` says what scored the real and the imagined
    episodes (keys "real" and "imagined"); both go into every dataset's manifest.
    """
    worlds: dict[str, Mapping[str, Rollouts]] = {REAL: real, **imagined}
    total = sum(r.num_episodes for by_policy in worlds.values() for r in by_policy.values())
    task = get_task(env)
    bar = tqdm(total=total, desc="save rollouts", unit="episode", disable=not progress)
    written = {}
    for world, by_policy in worlds.items():
        is_real = world == REAL
        with atomic_path(root / world) as tmp:
            dataset = create_dataset(tmp, f"wmeval/rollouts_{world}", fps, task)
            summaries = []
            for policy, rollouts in by_policy.items():
                start = None if is_real else _paired_start_states(real[policy], rollouts, world)
                extra = {"world": world, "env": env}
                write_rollouts(
                    dataset, rollouts, task, policy, extra, tmp / EPISODES_FILE, start_states=start
                )
                summaries.append(rollouts.summary())
                bar.update(rollouts.num_episodes)
            dataset.finalize()
            write_json(
                tmp / RECORD_FILE,
                {
                    "command": "wmeval rank",
                    "world": world,
                    "env": env,
                    "checkpoint": f"{env} simulator" if is_real else checkpoints[world],
                    "states": "simulator state"
                    if is_real
                    else "estimated from the generated frames by the judge's state reader",
                    "judge": judges[REAL if is_real else "imagined"],
                    "seed": seed,
                    "policies": summaries,
                    "row_layout": ROW_LAYOUT,
                    "versions": package_versions(),
                },
            )
        written[world] = root / world
    bar.close()
    return written


def _paired_start_states(real: Rollouts, imagined: Rollouts, world: str) -> np.ndarray | None:
    """The real start states an imagined rollout began from (paired by seed), when the env reports states."""
    if not np.array_equal(real.seeds, imagined.seeds):
        raise WmevalError(
            f"rollouts in {world} were not started from the real rollouts' seeds: rank pairs them by seed"
        )
    return None if real.states is None else real.states[:, 0]
