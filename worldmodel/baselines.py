"""Trivial world models that any real one must beat."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from worldmodel.data.actions import step_action_dim


class CopyLastFrameWorldModel:
    """Predicts that nothing ever changes: every step returns the last history frame.

    It has the `WorldModel` rollout API (reset/step, action_dim, image_size, context_frames) so it drops into
    the same env and the same ranking; a world model that cannot beat it on ranking fidelity is not
    modelling the consequences of actions.
    """

    name = "copy_last"

    def __init__(
        self,
        image_size: tuple[int, int],
        raw_action_dim: int,
        sim_steps_per_frame: int = 1,
        action_mode: str = "concat",
    ) -> None:
        self.config = SimpleNamespace(
            sim_steps_per_frame=sim_steps_per_frame, raw_action_dim=raw_action_dim, action_mode=action_mode
        )
        self.image_size = tuple(image_size)
        self.action_dim = step_action_dim(raw_action_dim, sim_steps_per_frame, action_mode)
        self.context_frames = 1
        self.device = torch.device("cpu")
        self._last: torch.Tensor | None = None

    def reset(self, frames: torch.Tensor, use_cache: bool = True, seed: int | None = None) -> None:
        self._last = frames[:, -1].clone()

    def step(self, actions: torch.Tensor, num_steps: int | None = None) -> torch.Tensor:
        if self._last is None:
            raise RuntimeError("call reset(frames) before step(actions)")
        if actions.ndim == 2:
            return self._last.clone()
        return self._last[:, None].expand(-1, actions.shape[1], -1, -1, -1).clone()

    generate_chunk = step
