"""The benchmark entries of `wmeval bench`; each returns a dict naming what it measured and its ratio."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from wmeval.bench.timing import best_time, environment, matmul_flops, sync
from worldmodel import WorldModel, WorldModelConfig
from worldmodel.adapters import build_adapter
from worldmodel.data.clips import ClipSampler, ClipSpec
from worldmodel.dit import DiT, DiTConfig
from worldmodel.encoders import load_encoder
from worldmodel.encoders.precision import dtype_name
from worldmodel.objectives import FlowMatchingConfig, build_objective


def demo_sized_world_model(
    device: torch.device, size: str = "tiny", window: int = 10, num_steps: int = 2
) -> WorldModel:
    """The shipped recipe's shapes (64 px pixels latents, 8x8x192, 5 sim steps x 2-d actions), random weights."""
    torch.manual_seed(0)
    encoder = load_encoder("pixels", image_size=(64, 64), factor=8)
    h, w, d = encoder.latent_shape
    dit_config = DiTConfig.from_size(size, in_channels=d, grid=(h, w), action_dim=10, max_frames=window)
    config = WorldModelConfig(
        encoder=encoder.get_config(),
        adapter={"type": "identity", "in_dim": d},
        dit=dit_config.to_dict(),
        objective={"type": "flow_matching", **FlowMatchingConfig(num_steps=num_steps).to_dict()},
        latent_mean=[0.0] * d,
        latent_std=[1.0] * d,
        action_offset=[256.0, 256.0],
        action_scale=[256.0, 256.0],
        sim_steps_per_frame=5,
    )
    return WorldModel(config, encoder, build_adapter("identity", in_dim=d), DiT(dit_config)).to(device).eval()


def _timed_step(wm: WorldModel, actions: torch.Tensor, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    wm.step(actions)
    sync(device)
    return time.perf_counter() - start


@torch.no_grad()
def kv_cache(device: torch.device, batch: int = 16, window: int = 10, rounds: int = 3) -> dict[str, Any]:
    """Per-frame cost stays flat with the cache (bounded window) and beats recomputing the window.

    Each round rolls one batch of rollouts, times frame 8 and frame 64 with the cache, then switches the same
    rollouts to the uncached path (`set_use_cache(False)`) and times the next frame. The fastest of the rounds
    counts: the least noisy estimate on a shared machine.
    """
    wm = demo_sized_world_model(device, window=window)
    actions = torch.rand(batch, wm.action_dim, device=device) * 512
    t8 = t64 = t64_nocache = float("inf")
    for r in range(rounds):
        wm.reset(torch.rand(batch, 1, 3, *wm.image_size, device=device), use_cache=True, seed=r)
        for _ in range(7):
            wm.step(actions)
        t8 = min(t8, _timed_step(wm, actions, device))
        for _ in range(8, 63):
            wm.step(actions)
        t64 = min(t64, _timed_step(wm, actions, device))
        wm.set_use_cache(False)
        t64_nocache = min(t64_nocache, _timed_step(wm, actions, device))
    return {
        "s_per_frame_at_8": t8,
        "s_per_frame_at_64": t64,
        "s_per_frame_at_64_nocache": t64_nocache,
        "flatness": t64 / t8,
        "speedup": t64_nocache / t64,
        "targets": {"flatness": "<= 1.2", "speedup": ">= 5"},
        "model": f"dit tiny, window {window} frames, {wm.objective.config.num_steps} Euler steps",
        "batch": batch,
        **environment(device, torch.float32),
    }


def bench_world_model(device: torch.device, world_model: str | None) -> tuple[WorldModel, str]:
    """The model the rollout entries time, and how to name it: a saved model directory or shipped name, `tokens`
    (an untrained model of `recipe=pusht_tokens`'s shapes) or None (the demo-sized pixel DiT)."""
    if world_model is None:
        return demo_sized_world_model(device), "dit tiny + state estimator"
    if world_model == "tokens":
        from wmeval.bench.token_model import token_world_model

        wm = token_world_model(device)
        return wm, _with_renderer(wm, f"token dit {wm.dit.config.size} ({wm.dit.config.grid[1]} tokens)")
    from wmeval.shipped import shipped_path

    wm = WorldModel.from_pretrained(shipped_path(world_model), device=device)
    return wm, _with_renderer(wm, world_model)


def _with_renderer(wm: WorldModel, label: str) -> str:
    """The model's label, plus its renderer's precision where it has one (object tokens may render in bf16)."""
    dtype = wm.encoder.render_dtype
    renderer = f" (renderer {dtype_name(dtype)})" if dtype is not None else ""
    return f"{label}{renderer} + state estimator"


def _imagined_steps_per_s(
    batch: int, frames: int, device: torch.device, world_model: str | None = None
) -> tuple[float, str]:
    """Best of 3 timed runs of `frames` generated frames each, after one untimed run (as every entry)."""
    from wmeval.envs.imagined import make_imagined_env

    wm, name = bench_world_model(device, world_model)
    env = make_imagined_env("pusht", wm, batch, max_episode_steps=10_000)
    env.reset(seed=list(range(batch)))
    actions = np.full((batch, 2), 256.0, np.float32)
    steps = frames * env.sim_steps_per_frame
    seconds = best_time(lambda: [env.step(actions) for _ in range(steps)], device)
    env.close()
    return batch * steps / seconds, name


def _real_steps_per_s(batch: int, steps: int) -> float:
    """Best of 3 timed runs of `steps` simulator steps each, after one untimed run, as for imagination."""
    from wmeval.envs import make_env

    env = make_env("pusht", num_envs=batch, max_episode_steps=10_000)
    env.reset(seed=list(range(batch)))
    actions = np.full((batch, 2), 256.0, np.float32)
    seconds = best_time(lambda: [env.step(actions) for _ in range(steps)], torch.device("cpu"))
    env.close()
    return batch * steps / seconds


@torch.no_grad()
def batch_scaling(device: torch.device, frames: int = 6, world_model: str | None = None) -> dict[str, Any]:
    """Imagined env steps per second at batch 1 vs 64: one batched model call serves every rollout."""
    one, name = _imagined_steps_per_s(1, frames, device, world_model)
    many, _ = _imagined_steps_per_s(64, frames, device, world_model)
    return {
        "steps_per_s_batch_1": one,
        "steps_per_s_batch_64": many,
        "ratio": many / one,
        "targets": {"ratio": ">= 20 on CPU"},
        "model": name,
        "batch": [1, 64],
        **environment(device, torch.float32),
    }


@torch.no_grad()
def rollout_vs_sim(
    device: torch.device, batch: int = 64, frames: int = 6, world_model: str | None = None
) -> dict[str, Any]:
    """Imagined vs real (gym-pusht, rendering pixels) env steps per second at the same batch, for intuition."""
    imagined, name = _imagined_steps_per_s(batch, frames, device, world_model)
    real = _real_steps_per_s(batch, steps=10)
    return {
        "imagined_steps_per_s": imagined,
        "real_steps_per_s": real,
        "ratio": imagined / real,
        "targets": {"ratio": ">= 5"},
        "model": name,
        "batch": batch,
        **environment(device, torch.float32),
    }


def _train_setup(size: str, tokens: tuple[int, int], channels: int, n_frames: int, device: torch.device):  # noqa: ANN202
    torch.manual_seed(0)
    config = DiTConfig.from_size(size, in_channels=channels, grid=tokens, action_dim=10, max_frames=n_frames)
    model = DiT(config).to(device)
    objective = build_objective({"type": "flow_matching"}, tokens[0] * tokens[1], channels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    episodes = [
        {
            "latents": np.random.default_rng(i).standard_normal((60, *tokens, channels), dtype=np.float32),
            "actions": np.zeros((60, 2), np.float32),
        }
        for i in range(8)
    ]
    sampler = ClipSampler(
        episodes, ClipSpec(n_frames=n_frames, max_history=2, sim_steps_per_frame=5), [0, 0], [1, 1]
    )
    return model, objective, optimizer, sampler


def train_mfu(
    device: torch.device,
    size: str,
    tokens: tuple[int, int],
    channels: int,
    n_frames: int,
    batch: int,
    dtype: torch.dtype,
) -> dict[str, Any]:
    """Achieved FLOP/s of a DiT training step (counted by torch's flop counter) over in-process matmul FLOP/s."""
    model, objective, optimizer, sampler = _train_setup(size, tokens, channels, n_frames, device)
    data = sampler.sample(batch)
    latents, actions, history = data["latents"].to(device), data["actions"].to(device), data["num_history"]

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = objective.loss(model, latents, actions, history)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    flops = counter.get_total_flops()
    seconds = best_time(step, device, repeats=3)
    peak = matmul_flops(device, dtype)
    return {
        "flops_per_step": flops,
        "s_per_step": seconds,
        "achieved_flops": flops / seconds,
        "matmul_flops": peak,
        "mfu": flops / seconds / peak,
        "targets": {"mfu": ">= 0.5 on a GPU in bf16 for DiT-S/B at the paper's token counts"},
        "model": f"dit {size}, {tokens[0]}x{tokens[1]} tokens x {n_frames} frames, {channels} channels",
        "batch": batch,
        **environment(device, dtype),
    }


def data_stall(device: torch.device, batch: int = 16, steps: int = 5) -> dict[str, Any]:
    """Fraction of a training step spent drawing the batch from the in-memory latent cache."""
    model, objective, optimizer, sampler = _train_setup("tiny", (8, 8), 192, 6, device)
    waiting = total = 0.0
    for _ in range(steps):
        t0 = time.perf_counter()
        data = sampler.sample(batch)
        latents, actions = data["latents"].to(device), data["actions"].to(device)
        t1 = time.perf_counter()
        loss = objective.loss(model, latents, actions, data["num_history"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync(device)
        waiting, total = waiting + t1 - t0, total + time.perf_counter() - t0
    return {
        "data_s_per_step": waiting / steps,
        "s_per_step": total / steps,
        "fraction": waiting / total,
        "targets": {"fraction": "<= 0.05"},
        "model": "dit tiny, 8x8 tokens x 6 frames",
        "batch": batch,
        **environment(device, torch.float32),
    }
