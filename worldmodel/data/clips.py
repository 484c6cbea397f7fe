"""Random training clips (history + future frames with the actions between them) from in-memory episodes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from worldmodel.data.actions import ActionLayout
from worldmodel.errors import InputError


@dataclass
class ClipSpec:
    n_frames: int = 6  # frames per clip, history included (paper: 10)
    max_history: int = (
        2  # clean history frames; each clip draws 1..max_history so one-frame starts are learned
    )
    sim_steps_per_frame: int = (
        1  # one world-model step spans this many recorded steps; their actions concatenate
    )


class ClipSampler:
    """Draws clips uniformly over all valid start steps of all episodes; deterministic for a seed.

    Episodes hold `latents [T, h, w, C]` (already normalised) and raw `actions [T, A]`, where `actions[i]` was
    taken at recorded step i. World-model frame j of a clip starting at step s is step s + j*K, and the action
    that led into it is `actions[s + (j-1)*K : s + j*K]` flattened (K = sim_steps_per_frame), in the units of
    `layout` (default: the affine `(raw - action_offset) / action_scale`).
    """

    def __init__(
        self,
        episodes: list[dict[str, np.ndarray]],
        spec: ClipSpec,
        action_offset: np.ndarray,
        action_scale: np.ndarray,
        seed: int = 0,
        layout: ActionLayout | None = None,
    ) -> None:
        if spec.max_history < 1 or spec.max_history >= spec.n_frames:
            raise InputError(
                f"max_history={spec.max_history} must be in [1, n_frames - 1 = {spec.n_frames - 1}]"
            )
        self.spec = spec
        self.episodes = episodes
        self.layout = layout or ActionLayout.affine(action_offset, action_scale)
        span = (spec.n_frames - 1) * spec.sim_steps_per_frame
        self.valid_starts = np.array([max(0, len(ep["latents"]) - span) for ep in episodes])
        if self.valid_starts.sum() == 0:
            raise InputError(
                f"no episode is long enough for clips of {spec.n_frames} frames x {spec.sim_steps_per_frame} "
                f"steps ({span + 1} recorded steps needed): record longer episodes or lower n_frames"
            )
        self.rng = np.random.default_rng(seed)

    @property
    def action_dim(self) -> int:
        return self.episodes[0]["actions"].shape[1] * self.spec.sim_steps_per_frame

    def sample(self, batch_size: int) -> dict[str, torch.Tensor]:
        """`latents [B, T, h, w, C]`, normalised `actions [B, T, A]` (zeros for frame 0), `num_history [B]`."""
        probs = self.valid_starts / self.valid_starts.sum()
        episode_ids = self.rng.choice(len(self.episodes), size=batch_size, p=probs)
        starts = self.rng.integers(0, self.valid_starts[episode_ids])
        num_history = self.rng.integers(1, self.spec.max_history + 1, size=batch_size)
        k, t = self.spec.sim_steps_per_frame, self.spec.n_frames
        latents, actions = [], []
        for ep_id, start in zip(episode_ids, starts, strict=True):
            ep = self.episodes[ep_id]
            latents.append(ep["latents"][start : start + (t - 1) * k + 1 : k])
            raw = self.layout.normalize(ep["actions"][start : start + (t - 1) * k])
            actions.append(
                np.concatenate([np.zeros((1, k * raw.shape[1]), np.float32), raw.reshape(t - 1, -1)])
            )
        return {
            "latents": torch.from_numpy(np.stack(latents).astype(np.float32)),
            "actions": torch.from_numpy(np.stack(actions).astype(np.float32)),
            "num_history": torch.from_numpy(num_history),
        }

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
