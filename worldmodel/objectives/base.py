"""What flow matching and DDPM share: diffusion-forcing training on future frames, history handling, sampling API.

Per clip, the first `num_history` frames are clean context (time 0, mild noise augmentation, null action);
every later frame gets its own noise level. Subclasses define how noise is added, what the network predicts,
and how a sampler steps from one noise level to the next. Times are in [0, 1] (1 = pure noise); the DiT
scales them by 1000.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F

from worldmodel.errors import InputError


class Objective(ABC):
    #: each subclass's config has history_noise, action_dropout, num_steps, context_level and guidance
    config: object

    @abstractmethod
    def sample_time(self, shape: tuple[int, ...], generator: torch.Generator | None = None) -> torch.Tensor:
        """Training noise levels in [0, 1]."""

    @abstractmethod
    def add_noise(self, x: torch.Tensor, noise: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """Noisy latents at per-frame level `tau` (broadcast to x)."""

    @abstractmethod
    def target(self, x: torch.Tensor, noise: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """What the network is trained to output."""

    @abstractmethod
    def timesteps(self, num_steps: int | None = None) -> list[float]:
        """Sampling levels from noise to clean; consecutive pairs are passed to `sample_step`."""

    @abstractmethod
    def sample_step(self, x: torch.Tensor, pred: torch.Tensor, tau: float, tau_next: float) -> torch.Tensor:
        """Move `x` from level `tau` to `tau_next` given the network's output `pred`."""

    def prediction_from(self, output: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """The network's output as the prediction `sample_step` and the loss use.

        With the config's `residual` option the output is a change to `previous`, the clean latent of the frame
        before each predicted one (broadcast over frames); otherwise it is the prediction itself.
        """
        return output + previous if getattr(self.config, "residual", False) else output

    def loss(
        self,
        model: torch.nn.Module,
        latents: torch.Tensor,
        actions: torch.Tensor,
        num_history: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Mean loss over the future frames of clips `latents [B, T, h, w, C]`, `actions [B, T, A]`."""
        b, t = latents.shape[:2]
        device = latents.device
        history = torch.arange(t)[None] < num_history[:, None]  # [B, T]
        tau = torch.where(history, 0.0, self.sample_time((b, t), generator))
        noise = torch.randn(latents.shape, generator=generator)
        sigma_h = (self.config.history_noise * torch.randn((b, t), generator=generator)).abs()
        sigma_h = torch.where(history, sigma_h, 0.0)
        aug = torch.randn(latents.shape, generator=generator)
        drop = torch.rand((b, 1), generator=generator) < self.config.action_dropout
        tau, noise, sigma_h, aug, history, drop = (
            x.to(device) for x in (tau, noise, sigma_h, aug, history, drop)
        )

        x_hist = (latents + frames(sigma_h) * aug) / torch.sqrt(1 + frames(sigma_h) ** 2)
        x_in = torch.where(frames(history), x_hist, self.add_noise(latents, noise, frames(tau)))
        previous = torch.cat(
            (latents[:, :1], latents[:, :-1]), dim=1
        )  # frame t-1 for each t (t=0 is history)
        # the clean previous frames go in too: a token-geometry DiT takes each frame's reference positions
        # from them (teacher forcing; in a rollout the last committed frame is clean)
        out = model(x_in, tau, actions, action_null=history | drop, previous=previous)
        pred = self.prediction_from(out, previous)
        target = self.target(latents, noise, frames(tau))
        per_frame = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=(2, 3, 4))
        future = (~history).float()
        return (per_frame * future).sum() / future.sum().clamp(min=1)


def frames(x: torch.Tensor) -> torch.Tensor:
    """[B, T] -> [B, T, 1, 1, 1] for broadcasting over a latent frame."""
    return x[:, :, None, None, None]


def check_guidance(guidance: float, action_dropout: float) -> None:
    """Classifier-free guidance needs a null-action prediction, which only action dropout in training teaches."""
    if guidance < 0:
        raise InputError(f"guidance={guidance} must be >= 0 (1 is off, > 1 strengthens the action's effect)")
    if guidance != 1.0 and action_dropout <= 0:
        raise InputError(
            f"guidance={guidance} needs a model trained with action_dropout > 0 (it has {action_dropout}): "
            "the null-action prediction it extrapolates from was never learned; use guidance=1"
        )
