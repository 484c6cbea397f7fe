"""Latent-space rollouts for the metrics: real context latents + actions + explicit noise -> imagined latents.

Why not `WorldModel.step`: the metrics need (a) the imagined latents, not only decoded frames (the IDM and
the probe read latents), (b) any batch layout, e.g. CEM's candidates x windows in one DiT call per denoising
step, (c) the noise given explicitly, so every candidate of a window sees the same noise, and (d) gradients
for the gradient-based action search. This is the same sampler as `WorldModel`'s uncached path (full context,
context frames at `context_level` with the null action, any objective's `sample_step`, generated frames fed back with their actions); a test
pins that both give the same frames for the same seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from wmeval.metrics.open_loop import to_model_frames
from worldmodel import WorldModel
from worldmodel.data.actions import step_actions

#: context [B, C, h, w, c], normalised actions [B, k, A], noise [B, k, h, w, c] -> latents [B, k, h, w, c].
Predictor = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def imagine_latents(
    wm: WorldModel,
    context: torch.Tensor,
    actions: torch.Tensor,
    noise: torch.Tensor,
    num_steps: int | None = None,
) -> torch.Tensor:
    """Autoregressive rollout of k frames from real normalised `context` latents (oldest first).

    `actions [B, k, A]` are normalised (`wm.normalize_actions`); `noise [B, k, h, w, c]` is the initial noise of
    each new frame. One DiT call per Euler step over the whole batch; differentiable when grad is enabled.
    """
    b, c = context.shape[:2]
    k = actions.shape[1]
    window = wm.context_frames - 1
    keep = min(c, window)
    dev = context.device
    lat = context[:, c - keep :]
    act = torch.zeros(b, keep, actions.shape[-1], device=dev, dtype=actions.dtype)
    null = torch.ones(b, keep, dtype=torch.bool, device=dev)
    taus = wm.objective.timesteps(num_steps)
    level = wm.objective.config.context_level
    position, out = keep, []
    for j in range(k):
        x, a = noise[:, j : j + 1], actions[:, j : j + 1]
        new_null = torch.zeros(b, 1, dtype=torch.bool, device=dev)
        ctx = lat.shape[1]
        frame_pos = torch.arange(position - ctx, position + 1, device=dev)
        t_ctx = torch.full((b, ctx), level, device=dev)
        for tau, tau_next in zip(taus[:-1], taus[1:], strict=True):
            t_all = torch.cat((t_ctx, torch.full((b, 1), tau, device=dev)), 1)
            raw = wm.dit(
                torch.cat((lat, x), 1),
                t_all,
                torch.cat((act, a), 1),
                action_null=torch.cat((null, new_null), 1),
                frame_pos=frame_pos,
            )[:, -1:]
            pred = wm.objective.prediction_from(raw, lat[:, -1:])
            x = wm.objective.sample_step(x, pred, tau, tau_next)
        out.append(x)
        lat = torch.cat((lat, x), 1)[:, -window:]
        act = torch.cat((act, a), 1)[:, -window:]
        null = torch.cat((null, new_null), 1)[:, -window:]
        position += 1
    return torch.cat(out, 1)


def world_model_predictor(wm: WorldModel, num_steps: int | None = None) -> Predictor:
    """`imagine_latents` bound to a world model, as the controllability search expects."""

    def predict(context: torch.Tensor, actions: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return imagine_latents(wm, context, actions, noise, num_steps)

    return predict


def rollout_noise(
    batch: int, steps: int, latent_shape: tuple[int, ...], seed: int, device: Any = "cpu"
) -> torch.Tensor:
    """Noise drawn exactly as `WorldModel.reset(seed=)` + `step` draw it: one [B, 1, ...] tensor per frame."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    noise = [torch.randn((batch, 1, *latent_shape), generator=gen) for _ in range(steps)]
    return torch.cat(noise, 1).to(device)


def chunk_actions(
    actions: np.ndarray, k: int, steps: int, start: int = 0, mode: str = "concat"
) -> np.ndarray:
    """Raw per-sim-step actions [T, a] -> world-model actions [steps, A]: chunk j leads into frame j + 1.

    Chunk j comes from `actions[start + j*k : start + (j+1)*k]`, the sim steps between world-model frames,
    concatenated or (mode `sampled`) only the first (`worldmodel.data.actions.step_actions`).
    """
    block = np.asarray(actions[start : start + steps * k], dtype=np.float32)
    return step_actions(block, k, mode)


@torch.no_grad()
def encode_strided(
    wm: WorldModel, frames: np.ndarray, stride: int, batch_size: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames uint8 [T, H, W, 3] at every `stride`-th step -> (model frames [T', 3, h, w], latents [T', ...])."""
    chosen = to_model_frames(np.ascontiguousarray(frames[::stride]), wm.image_size)
    latents = [
        wm.encode_frames(chosen[i : i + batch_size][None].to(wm.device))[0].cpu()
        for i in range(0, len(chosen), batch_size)
    ]
    return chosen, torch.cat(latents)


@torch.no_grad()
def open_loop_latents(
    wm: WorldModel,
    latents: list[torch.Tensor],
    actions: list[np.ndarray],
    context: int,
    horizon: int,
    *,
    num_steps: int | None = None,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = False,
) -> torch.Tensor:
    """Imagined latents [N, horizon, ...] of each episode from its first `context` real latents.

    `latents[i]` are episode i's real latents at world-model stride, `actions[i]` its raw per-step actions.
    Episodes run in batches of `batch_size`; the noise of batch b comes from seed + b, as `WorldModel` would.
    """
    k, mode = wm.config.sim_steps_per_frame, wm.config.action_mode
    outs = []
    starts = range(0, len(latents), batch_size)
    for b, s in enumerate(tqdm(starts, desc="imagine rollouts", disable=not progress, leave=False)):
        ctx = torch.stack([z[:context] for z in latents[s : s + batch_size]]).to(wm.device)
        raw = [chunk_actions(a, k, horizon, (context - 1) * k, mode) for a in actions[s : s + batch_size]]
        act = wm.normalize_actions(torch.as_tensor(np.stack(raw)))
        noise = rollout_noise(len(ctx), horizon, tuple(ctx.shape[2:]), seed + b, wm.device)
        outs.append(imagine_latents(wm, ctx, act, noise, num_steps).cpu())
    return torch.cat(outs)
