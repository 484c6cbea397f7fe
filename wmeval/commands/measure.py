"""`wmeval measure`: real success of a policy (or each family member) in the real env, as JSON + markdown.

The family table in policies/pusht/README.md is produced by this command; the rank command compares world
models against the same numbers.
"""

from __future__ import annotations

import time
from typing import Any

from omegaconf import DictConfig, OmegaConf

from wmeval.commands.record import episode_seeds, resolve_policies
from wmeval.errors import ConfigError
from wmeval.io import prepare_out_dir, write_json, write_text


def run(cfg: DictConfig) -> dict[str, Any]:
    from policies.registry import make_policy
    from wmeval.envs import make_env
    from wmeval.rollout import rollout

    episodes, max_steps = int(cfg.episodes), int(cfg.max_steps)
    if episodes <= 0 or max_steps <= 0 or int(cfg.num_envs) <= 0 or int(cfg.obs_every) <= 0:
        raise ConfigError("episodes, max_steps, num_envs and obs_every must all be positive")
    names = resolve_policies(str(cfg.env), str(cfg.policy), str(cfg.variant))
    if not cfg.render and any(n.endswith("@image") for n in names):
        raise ConfigError("image-based policies need frames: pass render=true")
    seed = int(cfg.seed)
    policies = [make_policy(n, seed=seed * 1000 + m) for m, n in enumerate(names)]
    out = prepare_out_dir(cfg.out, "measure", overwrite=bool(cfg.overwrite))
    env = make_env(
        str(cfg.env),
        min(int(cfg.num_envs), episodes),
        max_episode_steps=max_steps,
        obs_type="pixels_agent_pos" if cfg.render else "state",
    )
    rows = []
    try:
        for m, (name, policy) in enumerate(zip(names, policies, strict=True)):
            start = time.time()
            seeds = episode_seeds(seed, m, episodes)
            r = rollout(
                env,
                policy,
                max_steps=max_steps,
                seeds=seeds,
                obs_every=int(cfg.obs_every),
                progress=bool(cfg.progress),
                keep_frames=False,
                policy_name=name,
            )
            rows.append(
                {**r.summary(), "seeds": [seeds[0], seeds[-1]], "seconds": round(time.time() - start, 1)}
            )
    finally:
        env.close()
    command = "wmeval measure " + " ".join(
        f"{k}={v}" for k, v in OmegaConf.to_container(cfg).items() if k != "out"
    )
    result = {"command": command, "max_steps": max_steps, "policies": rows}
    write_json(out / "measure.json", result)
    table = markdown_table(rows, episodes, max_steps, seed)
    write_text(out / "measure.md", table + "\n")
    print(table)
    return result


def markdown_table(rows: list[dict[str, Any]], episodes: int, max_steps: int, seed: int) -> str:
    lines = [
        "| policy | success | max-cov >= 0.8 | mean max-cov | mean length | episodes | steps | seed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['policy']} | {r['success_rate']:.2f} | {r['max_coverage_ge_0.8']:.2f} | "
            f"{r['max_coverage_mean']:.3f} | {r['mean_length']:.0f} | {episodes} | {max_steps} | {seed} |"
        )
    return "\n".join(lines)
