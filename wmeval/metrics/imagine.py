"""Latent-space rollouts for the metrics: real context latents + actions + explicit noise -> imagined latents.

Why not `WorldModel.step`: the metrics need (a) the imagined latents, not only decoded frames (the IDM and
the probe read latents), (b) any batch layout, e.g. CEM's candidates x windows in one DiT call per denoising
step, (c) the noise given explicitly, so every candidate of a window sees the same noise, and (d) gradients
for the gradient-based action search. `worldmodel.sampling.imagine_latents` gives all four with the sampler
`WorldModel.step` runs; this module feeds it recorded episodes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from worldmodel import WorldModel
from worldmodel.data.actions import step_actions
from worldmodel.data.frames import to_model_frames
from worldmodel.sampling import imagine_latents, rollout_noise

#: context [B, C, h, w, c], normalised actions [B, k, A], noise [B, k, h, w, c] -> latents [B, k, h, w, c].
Predictor = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def world_model_predictor(wm: WorldModel, num_steps: int | None = None) -> Predictor:
    """`imagine_latents` bound to a world model, as the controllability search expects."""

    def predict(context: torch.Tensor, actions: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return imagine_latents(wm, context, actions, noise, num_steps)

    return predict


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
