"""DDPM with v-prediction and a sigmoid noise schedule, sampled with DDIM (the seed's alternative objective).

The schedule is the sigmoid one of Jabri et al. (start -3, end 3, tau 1, 1000 steps), handed to diffusers'
`DDIMScheduler` as `trained_betas`, which also chooses the sampling timesteps. Deviation from the seed: its
DDPM noises every frame and samples with a Diffusion-Forcing "pyramid"; here DDPM shares flow matching's
diffusion-forcing recipe (clean history, an independent level per future frame, one frame at a time), so
both objectives run behind the same KV-cached rollout.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from worldmodel.errors import InputError
from worldmodel.objectives.base import Objective, check_guidance


@dataclass
class DDPMConfig:
    num_train_timesteps: int = 1000
    schedule_start: float = -3.0
    schedule_end: float = 3.0
    schedule_tau: float = 1.0
    history_noise: float = 0.3
    num_steps: int = 10  # DDIM steps per generated frame
    context_level: float = 0.015  # finished frames are fed back at noise level 15 / 1000, as in the seed
    action_dropout: float = 0.1
    guidance: float = 1.0  # sampling: prediction = null + guidance * (with action - null); 1 is off

    def __post_init__(self) -> None:
        if self.num_steps < 1 or self.num_steps > self.num_train_timesteps:
            raise InputError(f"num_steps={self.num_steps} must be in [1, {self.num_train_timesteps}]")
        check_guidance(self.guidance, self.action_dropout)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sigmoid_alphas_cumprod(timesteps: int, start: float, end: float, tau: float) -> torch.Tensor:
    """alpha-bar over `timesteps + 1` points of the sigmoid schedule, from 1 down to ~0."""
    t = torch.linspace(0, 1, timesteps + 1, dtype=torch.float64)
    v_start, v_end = torch.sigmoid(torch.tensor(start / tau)), torch.sigmoid(torch.tensor(end / tau))
    alphas = (-torch.sigmoid((t * (end - start) + start) / tau) + v_end) / (v_end - v_start)
    return alphas / alphas[0]


class DDPM(Objective):
    def __init__(self, config: DDPMConfig) -> None:
        from diffusers import DDIMScheduler

        self.config = config
        bar = sigmoid_alphas_cumprod(
            config.num_train_timesteps, config.schedule_start, config.schedule_end, config.schedule_tau
        )
        betas = (1 - bar[1:] / bar[:-1]).clamp(0, 0.999)
        self.scheduler = DDIMScheduler(
            num_train_timesteps=config.num_train_timesteps,
            trained_betas=betas.float().numpy(),
            prediction_type="v_prediction",
            clip_sample=False,
            set_alpha_to_one=True,
            timestep_spacing="trailing",
        )
        self.alphas_cumprod = self.scheduler.alphas_cumprod.double()

    def _alpha_bar(self, tau: torch.Tensor | float) -> torch.Tensor:
        """alpha-bar at level tau in [0, 1] (index tau * T); level -1 means clean (alpha-bar 1)."""
        tau = torch.as_tensor(tau, dtype=torch.float64)
        index = (
            (tau * self.config.num_train_timesteps)
            .round()
            .long()
            .clamp(0, self.config.num_train_timesteps - 1)
        )
        return torch.where(tau < 0, torch.ones_like(tau), self.alphas_cumprod[index])

    def sample_time(self, shape: tuple[int, ...], generator: torch.Generator | None = None) -> torch.Tensor:
        steps = torch.randint(0, self.config.num_train_timesteps, shape, generator=generator)
        return steps.float() / self.config.num_train_timesteps

    def add_noise(self, x: torch.Tensor, noise: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        a = self._alpha_bar(tau.cpu()).to(x.device, x.dtype)
        return a.sqrt() * x + (1 - a).sqrt() * noise

    def target(self, x: torch.Tensor, noise: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        a = self._alpha_bar(tau.cpu()).to(x.device, x.dtype)
        return a.sqrt() * noise - (1 - a).sqrt() * x

    def timesteps(self, num_steps: int | None = None) -> list[float]:
        """DDIM's trailing timesteps as levels in [0, 1], then -1 for the clean sample."""
        self.scheduler.set_timesteps(num_steps or self.config.num_steps)
        return [float(t) / self.config.num_train_timesteps for t in self.scheduler.timesteps] + [-1.0]

    def sample_step(self, x: torch.Tensor, pred: torch.Tensor, tau: float, tau_next: float) -> torch.Tensor:
        """Deterministic DDIM (eta = 0) from v-prediction."""
        a, a_next = float(self._alpha_bar(tau)), float(self._alpha_bar(tau_next))
        x0 = a**0.5 * x - (1 - a) ** 0.5 * pred
        eps = (1 - a) ** 0.5 * x + a**0.5 * pred
        return a_next**0.5 * x0 + (1 - a_next) ** 0.5 * eps
