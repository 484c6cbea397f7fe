"""Bench entries about sampling cost vs quality: Euler steps of the shipped model, and batched CEM search."""

from __future__ import annotations

import time
from typing import Any

import torch

from wmeval.bench.timing import best_time, environment, sync
from wmeval.metrics.controllability import CandidateObjective
from wmeval.metrics.imagine import world_model_predictor
from wmeval.metrics.open_loop import open_loop_psnr, open_loop_rollouts
from worldmodel import WorldModel


def _real_episodes(episodes: int, steps: int, seed: int) -> list[dict[str, Any]]:
    """Fresh expert episodes in gym-pusht (frames + actions), so the entry needs no dataset on disk."""
    from policies.registry import make_policy
    from wmeval.envs import make_env
    from wmeval.rollout import rollout

    env = make_env("pusht", num_envs=episodes, max_episode_steps=steps)
    try:
        r = rollout(
            env,
            make_policy("pusht/expert", seed=seed),
            max_steps=steps,
            seeds=[seed * 1000 + i for i in range(episodes)],
            progress=False,
        )
    finally:
        env.close()
    n = int(r.lengths.min())
    return [{"frames": r.frames[i, : n + 1], "actions": r.actions[i, :n]} for i in range(episodes)]


@torch.no_grad()
def euler_steps(
    wm_dir: str,
    device: torch.device,
    steps: tuple[int, ...] = (1, 2, 4, 10),
    episodes: int = 8,
    horizon: int = 6,
    seed: int = 0,
) -> dict[str, Any]:
    """Open-loop PSNR and seconds per frame of the shipped model vs the number of Euler steps.

    Fewer steps are cheaper; this says whether quality holds (x0 prediction tends to make 1-2 steps enough).
    """
    wm = WorldModel.from_pretrained(wm_dir, device=device)
    k = wm.config.sim_steps_per_frame
    data = _real_episodes(episodes, horizon * k, seed)
    rows = []
    for n in steps:
        sync(device)
        start = time.perf_counter()
        quality = open_loop_psnr(open_loop_rollouts(wm, data, horizon, num_steps=n, seed=seed))
        sync(device)
        seconds = (time.perf_counter() - start) / (quality["horizon"] * episodes)
        rows.append({"num_steps": n, "psnr": quality["psnr_model"], "s_per_frame_per_rollout": seconds})
    best = max(row["psnr"] for row in rows)
    return {
        "by_steps": rows,
        # The fewest steps within 0.5 dB of the best (differences below that are seed noise on 8 episodes):
        # where quality holds, this is what sampling should use.
        "fewest_steps_at_best_psnr": min(row["num_steps"] for row in rows if row["psnr"] >= best - 0.5),
        "psnr_copy_last": quality["psnr_copy_last"],
        "default_num_steps": wm.objective.config.num_steps,
        "model": f"shipped world model ({wm_dir}), {episodes} fresh expert episodes, horizon {horizon}",
        "batch": episodes,
        **environment(device, torch.float32),
    }


@torch.no_grad()
def cem_throughput(
    device: torch.device, wm: WorldModel, population: int = 64, windows: int = 2, seed: int = 0
) -> dict[str, Any]:
    """Candidates evaluated per second, as CEM evaluates them: all in one predictor call vs one per call."""
    gen = torch.Generator().manual_seed(seed)
    h, w, c = wm.encoder.latent_shape
    context = torch.randn(windows, 2, h, w, c, generator=gen).to(device)
    targets = torch.randn(windows, 1, h, w, c, generator=gen).to(device)
    noise = torch.randn(windows, 1, h, w, c, generator=gen).to(device)
    true = (torch.rand(windows, 1, wm.action_dim, generator=gen) * 2 - 1).to(device)
    objective = CandidateObjective(world_model_predictor(wm), context, targets, noise)
    candidates = true[:, None] + 0.1 * torch.randn(windows, population, 1, wm.action_dim, generator=gen).to(
        device
    )

    def batched() -> None:
        objective(candidates)

    def one_at_a_time() -> None:
        for p in range(population):
            objective(candidates[:, p : p + 1])

    fast = best_time(batched, device, repeats=2)
    slow = best_time(one_at_a_time, device, repeats=1)
    evaluated = population * windows
    return {
        "candidates_per_s_batched": evaluated / fast,
        "candidates_per_s_one_at_a_time": evaluated / slow,
        "ratio": slow / fast,
        "model": f"demo-size dit, {population} candidates x {windows} windows (one CEM iteration's evaluations)",
        "batch": evaluated,
        **environment(device, torch.float32),
    }
