"""The world model's one sampler: denoise each new frame against a sliding window of context latents.

`WorldModel.step` (closed-loop rollouts, with or without the KV cache) and the metrics' latent rollouts
(`imagine_latents`: any batch layout, explicit noise, differentiable) both run `denoise_frame`, so every number
the harness reports comes from the same sampling. Context frames sit at the objective's `context_level` with
the null action; each generated frame is fed back with the action that led into it; the window keeps the
newest `max_frames - 1` frames and their absolute positions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import torch

from worldmodel.dit import DiT
from worldmodel.objectives.base import Objective

if TYPE_CHECKING:
    from worldmodel.rigid import RigidGroups
    from worldmodel.world_model import WorldModel


@dataclass
class SamplingContext:
    """The context window of B rollouts and, when sampling with it, the DiT's KV cache of that window."""

    latents: torch.Tensor  # [B, T_ctx, h, w, C] normalised context latents, oldest first
    actions: torch.Tensor  # [B, T_ctx, A] normalised actions into each context frame
    null: torch.Tensor  # [B, T_ctx] unknown actions
    position: int  # absolute index of the next frame
    cache: Any = None  # TemporalKVCache of the window, or None: recompute the window at every step
    rigid: Callable[[torch.Tensor], torch.Tensor] | None = None  # keeps rigid token groups rigid (rigid.py)

    @classmethod
    def start(
        cls,
        latents: torch.Tensor,
        action_dim: int,
        window: int,
        dtype: torch.dtype = torch.float32,
        rigid: RigidGroups | None = None,
    ) -> SamplingContext:
        """Real history latents `[B, T, ...]` -> a window of the newest `window` of them, actions unknown.

        `rigid`: token groups to keep rigid, in the shapes they have in the newest real frame.
        """
        b, t = latents.shape[:2]
        keep = min(t, window)
        actions = torch.zeros(b, keep, action_dim, device=latents.device, dtype=dtype)
        null = torch.ones(b, keep, dtype=torch.bool, device=latents.device)
        project = partial(rigid.project, shapes=rigid.shapes(latents[:, -1])) if rigid is not None else None
        return cls(latents[:, t - keep :], actions, null, position=keep, rigid=project)

    @property
    def batch_size(self) -> int:
        return self.latents.shape[0]

    def fill_cache(self, dit: DiT, objective: Objective) -> None:
        """Build the KV cache of the current window, so the next frame is the same with or without it."""
        b, t = self.latents.shape[:2]
        self.cache = dit.new_cache()
        positions = torch.arange(self.position - t, self.position, device=self.latents.device)
        dit(
            self.latents,
            context_times(objective, b, t, self.latents.device),
            self.actions,
            action_null=self.null,
            frame_pos=positions,
            cache=self.cache,
            commit=True,
        )

    def push(self, latent: torch.Tensor, action: torch.Tensor, null: torch.Tensor, window: int) -> None:
        self.latents = torch.cat((self.latents, latent), 1)[:, -window:]
        self.actions = torch.cat((self.actions, action), 1)[:, -window:]
        self.null = torch.cat((self.null, null), 1)[:, -window:]
        self.position += 1


def context_times(objective: Objective, b: int, t: int, device: torch.device) -> torch.Tensor:
    """Flow times of clean context frames: the objective's `context_level`, as in training."""
    return torch.full((b, t), objective.config.context_level, device=device)


def denoise_frame(
    dit: DiT,
    objective: Objective,
    context: SamplingContext,
    action: torch.Tensor,
    noise: torch.Tensor,
    window: int,
    num_steps: int | None = None,
) -> torch.Tensor:
    """Denoise one new frame `noise [B, 1, h, w, C]` after `action [B, 1, A]` and append it to `context`.

    One DiT call per denoising step over the whole batch (two with the objective's `guidance`): the new frame
    alone against the cache, or the whole window recomputed without one. Returns the frame's latents;
    differentiable when grad is enabled.
    """
    b, dev = context.batch_size, context.latents.device
    null = torch.zeros(b, 1, dtype=torch.bool, device=dev)
    guidance = objective.config.guidance
    nulled = ~null  # the unconditioned pass of guidance: the new frame's action replaced by the null action
    taus, x = objective.timesteps(num_steps), noise
    for tau, tau_next in zip(taus[:-1], taus[1:], strict=True):
        t = torch.full((b, 1), tau, device=dev)
        out = _predict_new_frame(dit, objective, context, x, t, action, null)
        if guidance != 1.0:  # classifier-free guidance on the new frame's action
            unconditioned = _predict_new_frame(dit, objective, context, x, t, action, nulled)
            out = unconditioned + guidance * (out - unconditioned)
        pred = objective.prediction_from(out, context.latents[:, -1:])
        x = objective.sample_step(x, pred, tau, tau_next)
    if context.rigid is not None:
        x = context.rigid(x)
    if context.cache is not None:
        dit(
            x, context_times(objective, b, 1, dev), action, action_null=null, cache=context.cache, commit=True
        )
    context.push(x, action, null, window)
    return x


def _predict_new_frame(
    dit: DiT,
    objective: Objective,
    context: SamplingContext,
    x: torch.Tensor,
    t: torch.Tensor,
    action: torch.Tensor,
    null: torch.Tensor,
) -> torch.Tensor:
    """The DiT's output for the new frame `x` at time `t`: against the cache, or recomputing the window."""
    if context.cache is not None:
        return dit(x, t, action, action_null=null, cache=context.cache)
    b, ctx, dev = x.shape[0], context.latents.shape[1], x.device
    return dit(
        torch.cat((context.latents, x), 1),
        torch.cat((context_times(objective, b, ctx, dev), t), 1),
        torch.cat((context.actions, action), 1),
        action_null=torch.cat((context.null, null), 1),
        frame_pos=torch.arange(context.position - ctx, context.position + 1, device=dev),
    )[:, -1:]


def imagine_latents(
    wm: WorldModel,
    context: torch.Tensor,
    actions: torch.Tensor,
    noise: torch.Tensor,
    num_steps: int | None = None,
) -> torch.Tensor:
    """Autoregressive rollout of k frames from real normalised `context` latents `[B, C, h, w, c]` (oldest first).

    `actions [B, k, A]` are normalised (`wm.normalize_actions`); `noise [B, k, h, w, c]` is the initial noise of
    each new frame (`rollout_noise` draws what `WorldModel.reset(seed=)` would). Returns `[B, k, h, w, c]`.
    """
    window = wm.context_frames - 1
    state = SamplingContext.start(context, actions.shape[-1], window, actions.dtype, rigid=wm.rigid)
    frames = [
        denoise_frame(
            wm.dit, wm.objective, state, actions[:, j : j + 1], noise[:, j : j + 1], window, num_steps
        )
        for j in range(actions.shape[1])
    ]
    return torch.cat(frames, 1)


def frame_noise(generator: torch.Generator, batch: int, latent_shape: tuple[int, ...]) -> torch.Tensor:
    """The initial noise `[B, 1, *latent_shape]` of one new frame, drawn on the CPU for any-device determinism."""
    return torch.randn((batch, 1, *latent_shape), generator=generator)


def rollout_noise(
    batch: int, steps: int, latent_shape: tuple[int, ...], seed: int, device: Any = "cpu"
) -> torch.Tensor:
    """The noise `WorldModel.reset(seed=)` + `step` draw for `steps` frames: `[B, steps, *latent_shape]`."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return torch.cat([frame_noise(gen, batch, latent_shape) for _ in range(steps)], 1).to(device)
