"""`wmeval record`: roll a policy (or every member of the policy family) in the real env into a LeRobotDataset v3.

Everything is validated before the first step, and the dataset is written into a temporary directory that is
renamed onto `out` only at the end, so a failure or Ctrl-C leaves nothing half-written behind.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from wmeval.errors import ConfigError
from wmeval.io import atomic_path

SEED_STRIDE = 1_000_000  # env seeds of member m, episode i: seed * SEED_STRIDE + m * 10_000 + i


def resolve_policies(env: str, policy: str, variant: str) -> list[str]:
    """A policy set of the env's task (`family`, `heldout`) -> every member of that set (with `@image` when
    variant=image); `play` -> `<env>/play`; otherwise the single name."""
    from wmeval.envs.registry import POLICY_SETS, get_task

    if variant not in ("state", "image"):
        raise ConfigError(f"variant={variant!r} is unknown: choose state (privileged) or image")
    task = get_task(env)
    if policy in POLICY_SETS:
        names = task.policy_set(policy)
        return [f"{n}@image" for n in names] if variant == "image" else names
    if policy == "play":
        return [f"{env}/play" + ("@image" if variant == "image" else "")]
    return [str(policy)]


def episode_seeds(seed: int, member: int, episodes: int) -> list[int]:
    """Distinct, reproducible start states per member (more diverse data for world models)."""
    return [seed * SEED_STRIDE + member * 10_000 + i for i in range(episodes)]


def check_out(out: Any, overwrite: bool) -> Path:
    """Refuse a non-empty `out` unless overwrite=true; creates nothing (the atomic rename does)."""
    if out is None or str(out) == "":
        path = Path("outputs") / "record" / time.strftime("%Y%m%d-%H%M%S")
    else:
        path = Path(str(out)).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"out={path} is a file, not a directory: choose another out=DIR")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise ConfigError(
            f"out={path} exists and is not empty: pass overwrite=true to replace it, or another out=DIR"
        )
    return path


def _variant(name: str) -> str:
    if name.startswith("lerobot:"):
        return "lerobot"
    return "image" if name.endswith("@image") else "state"


def run(cfg: DictConfig) -> dict[str, Any]:
    from policies.registry import make_policy
    from wmeval.envs import make_env
    from wmeval.envs.registry import get_task
    from wmeval.rollout import rollout

    episodes, max_steps, num_envs = int(cfg.episodes), int(cfg.max_steps), int(cfg.num_envs)
    if episodes <= 0:
        raise ConfigError(f"episodes={cfg.episodes} must be a positive number of episodes per policy")
    if max_steps <= 0:
        raise ConfigError(f"max_steps={cfg.max_steps} must be a positive number of steps")
    if num_envs <= 0:
        raise ConfigError(f"num_envs={cfg.num_envs} must be positive")
    if cfg.storage not in ("image", "video"):
        raise ConfigError(f"storage={cfg.storage!r} is unknown: choose image (lossless PNG) or video")
    task = get_task(str(cfg.env))
    task.recorder()
    out = check_out(cfg.out, bool(cfg.overwrite))
    names = resolve_policies(str(cfg.env), str(cfg.policy), str(cfg.variant))
    env = make_env(str(cfg.env), min(num_envs, episodes), max_episode_steps=max_steps)
    seed = int(cfg.seed)
    policies = [make_policy(n, seed=seed * 1000 + m) for m, n in enumerate(names)]  # fail before any work
    from wmeval.data.lerobot_writer import (
        EPISODES_FILE,
        RECORD_FILE,
        ROW_LAYOUT,
        create_dataset,
        package_versions,
        write_rollouts,
    )

    summaries = []
    started = time.time()
    try:
        with atomic_path(out) as tmp:
            dataset = create_dataset(
                tmp, str(cfg.repo_id), int(env.metadata.get("render_fps", 10)), task, cfg.storage == "video"
            )
            sidecar = tmp / EPISODES_FILE
            bar = tqdm(total=len(names) * episodes, desc="record", unit="episode", disable=not cfg.progress)
            for m, (name, policy) in enumerate(zip(names, policies, strict=True)):
                seeds = episode_seeds(seed, m, episodes)
                parts = []
                for i in range(0, episodes, env.num_envs):
                    chunk = seeds[i : i + env.num_envs]
                    r = rollout(
                        env, policy, max_steps=max_steps, seeds=chunk, progress=False, policy_name=name
                    )
                    extra = {"variant": _variant(name), "env": str(cfg.env)}
                    write_rollouts(dataset, r, task, name, extra, sidecar)
                    r.frames = None  # written; free the memory
                    parts.append(r)
                    bar.update(len(chunk))
                    bar.set_postfix(policy=name)
                summary = type(parts[0]).concatenate(parts).summary()
                summaries.append({**summary, "seeds": [seeds[0], seeds[-1]]})
            bar.close()
            dataset.finalize()
            record = {
                "command": "wmeval record",
                "config": OmegaConf.to_container(cfg, resolve=True),
                "policies": summaries,
                "storage": str(cfg.storage),
                "row_layout": ROW_LAYOUT,
                "seconds": round(time.time() - started, 1),
                "versions": package_versions(),
            }
            (tmp / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
    finally:
        env.close()
    for s in summaries:
        print(
            f"{s['policy']:<28} success {s['success_rate']:.2f}  max-cov>=0.8 {s['max_coverage_ge_0.8']:.2f}  "
            f"mean max-cov {s['max_coverage_mean']:.3f}  ({s['episodes']} episodes)"
        )
    print(f"wrote {len(names) * episodes} episodes to {out}")
    return record
