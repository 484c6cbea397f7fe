"""`eval_info/<world>/<policy>.json`: every world's rollouts in `lerobot-eval`'s own layout.

Each file holds exactly what `lerobot.scripts.lerobot_eval.eval_policy` returns for one policy in one env:
`per_episode` (`episode_ix`, `sum_reward`, `max_reward`, `success`, `seed`) and `aggregated` (`avg_sum_reward`,
`avg_max_reward`, `pc_success`, `eval_s`, `eval_ep_s`), plus `video_paths` when episodes were rendered. One
file per (world, policy) pair because that is the unit `eval_policy` reports on: a LeRobot user reads
`eval_info/real/<policy>.json` as the simulator's `lerobot-eval` result and `eval_info/<world model>/<policy>.json`
as the same evaluation run inside that world model, from the same seeds, with the same tools.

Reward is the env's reward applied to the judge's coverage at every step (the simulator's coverage in the real
world, the state reader's estimate in imagination), so real and imagined files are directly comparable; for
PushT that is gym-pusht's own reward, `clip(coverage / 0.95, 0, 1)`. Success is the strict outcome (the
task's success rule). Sums and maxima run over each episode's own steps (`lerobot-eval`'s mask also counts one
step past the end, which in a world model is not an observed step).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from wmeval.envs.lerobot_env import Reward, env_reward
from wmeval.io import write_json
from wmeval.rollout import Rollouts

EVAL_INFO_DIR = "eval_info"


def file_name(name: str) -> str:
    """A policy or world name as one path component (`lerobot:owner/name` -> `lerobot_owner_name`)."""
    return re.sub(r"[^A-Za-z0-9@.+=-]+", "_", name).strip("._") or "unnamed"


def eval_info(rollouts: Rollouts, reward: Reward, video_paths: list[str] | None = None) -> dict[str, Any]:
    """`eval_policy`'s dict for one policy's rollouts in one world (no extra rollout: read off `rollouts`)."""
    rewards = reward(rollouts.coverage[:, 1:])  # step t's reward is the coverage after action t
    mask = rollouts.mask()
    sums = np.where(mask, rewards, 0.0).sum(axis=1)
    maxes = np.where(mask, rewards, -np.inf).max(axis=1, initial=-np.inf)
    maxes = np.where(rollouts.lengths > 0, maxes, 0.0)
    n = rollouts.num_episodes
    eval_s = float(rollouts.meta.get("eval_s", float("nan")))
    info: dict[str, Any] = {
        "per_episode": [
            {
                "episode_ix": i,
                "sum_reward": float(sums[i]),
                "max_reward": float(maxes[i]),
                "success": bool(rollouts.success[i]),
                "seed": int(rollouts.seeds[i]),
            }
            for i in range(n)
        ],
        "aggregated": {
            "avg_sum_reward": float(np.nanmean(sums)),
            "avg_max_reward": float(np.nanmean(maxes)),
            "pc_success": float(np.nanmean(rollouts.success) * 100),
            "eval_s": eval_s,
            "eval_ep_s": eval_s / n,
        },
    }
    if video_paths is not None:
        info["video_paths"] = list(video_paths)
    return info


def write_eval_infos(
    out: Path,
    worlds: dict[str, dict[str, Rollouts]],
    env: str,
    video_paths: dict[str, dict[str, list[str]]] | None = None,
) -> dict[str, dict[str, Path]]:
    """`out/eval_info/<world>/<policy>.json` for every world -> policy -> `Rollouts` (written atomically)."""
    reward = env_reward(env)
    videos = video_paths or {}
    written: dict[str, dict[str, Path]] = {}
    for world, by_policy in worlds.items():
        written[world] = {}
        for policy, runs in by_policy.items():
            path = out / EVAL_INFO_DIR / file_name(world) / f"{file_name(policy)}.json"
            write_json(path, eval_info(runs, reward, videos.get(world, {}).get(policy)))
            written[world][policy] = path
    return written
