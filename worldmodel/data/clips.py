"""Random training clips (history + future frames with the actions between them) from in-memory episodes.

Two action modes (`ClipSpec.action_mode`, stored in the world model so every rollout feeds actions alike):
`concat`, a frame's action is the `sim_steps_per_frame` recorded actions since the previous frame,
concatenated; `sampled` (the paper's clips), it is the one raw action taken at the previous
frame's step, the skipped steps' actions are dropped. The paper's variable strides: each clip draws its future stride from
`future_strides` (several need `sampled`: one action per frame whatever the stride), its history frames are
`history_stride_factor` times further apart, and a `zero_history_prob` share of clips repeat the current frame
as history. With none of these set, clips (and their random draws) are exactly those of the original sampler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from worldmodel.data.actions import ACTION_MODES, ActionLayout, step_action_dim
from worldmodel.errors import InputError


@dataclass
class ClipSpec:
    """The `clips` keys of `wmeval train`."""

    n_frames: int = 6  # frames per clip, history included (paper: 10)
    max_history: int = (
        2  # clean history frames; each clip draws 1..max_history so one-frame starts are learned
    )
    sim_steps_per_frame: int = 1  # recorded steps between frames in rollouts (and clips, by default)
    action_mode: str = "concat"  # concat | sampled (see the module docstring)
    future_strides: list[int] | None = None  # sampled: strides drawn per clip (paper [2, 4]); None: the above
    history_stride_factor: int = 1  # history frames are this x the clip's future stride apart (paper 4)
    zero_history_prob: float = 0.0  # share of clips whose history repeats the current frame (paper 0.15)

    def __post_init__(self) -> None:
        if self.action_mode not in ACTION_MODES:
            raise InputError(
                f"clips.action_mode={self.action_mode!r} is unknown: use concat (the skipped steps' actions "
                "concatenated) or sampled (the raw action at each frame's step, as the paper)"
            )
        for key in ("n_frames", "sim_steps_per_frame", "history_stride_factor"):
            if not _positive_int(getattr(self, key)):
                raise InputError(f"clips.{key}={getattr(self, key)!r} must be a positive integer")
        if self.max_history < 1 or self.max_history >= self.n_frames:
            raise InputError(
                f"clips.max_history={self.max_history} must be in [1, n_frames - 1 = {self.n_frames - 1}]"
            )
        strides = self.strides
        if not all(_positive_int(s) for s in strides):
            raise InputError(
                f"clips.future_strides={self.future_strides} must list positive integers (recorded steps "
                "between frames), e.g. [2,4], or be null"
            )
        if self.sim_steps_per_frame not in strides:
            raise InputError(
                f"clips.sim_steps_per_frame={self.sim_steps_per_frame} is the rollout stride, so it must be "
                f"one of clips.future_strides={strides}: set clips.sim_steps_per_frame={strides[0]}"
            )
        if not 0.0 <= self.zero_history_prob <= 1.0:
            raise InputError(
                f"clips.zero_history_prob={self.zero_history_prob} must be in [0, 1]: the share of clips "
                "whose history repeats the current frame (paper 0.15)"
            )
        if self.action_mode == "concat" and self.strides != [self.sim_steps_per_frame]:
            raise InputError(
                f"clips.future_strides={strides} needs clips.action_mode=sampled: concatenated actions of "
                "different strides have different widths"
            )

    @property
    def strides(self) -> list[int]:
        """The future strides clips are drawn with."""
        return list(self.future_strides) if self.future_strides else [self.sim_steps_per_frame]

    @property
    def fixed_layout(self) -> bool:
        """Every clip has the same frame steps (one stride, history at that stride): the original sampler."""
        return len(self.strides) == 1 and self.history_stride_factor == 1 and self.zero_history_prob == 0

    @property
    def max_span(self) -> int:
        """Recorded steps from a clip's first frame to its last, for the longest clip this spec can draw."""
        t, h, s = self.n_frames, self.max_history, max(self.strides)
        return max(_span(1, s, s, t), _span(h, s, s * self.history_stride_factor, t))


def _positive_int(x: Any) -> bool:
    return isinstance(x, int | np.integer) and not isinstance(x, bool) and x > 0


def _span(num_history: Any, stride: Any, history_stride: Any, n_frames: int) -> Any:
    """Steps from the first history frame to the last future frame (works on ints and arrays)."""
    return (num_history - 1) * history_stride + (n_frames - num_history) * stride


class ClipSampler:
    """Draws clips uniformly over all valid start steps of all episodes; deterministic for a seed.

    Episodes hold `latents [T, h, w, C]` (already normalised) and raw `actions [T, A]`, where `actions[i]` was
    taken at recorded step i. A clip with `n` history frames, future stride `s` and history stride `g` has its
    current frame (index n - 1) at step c: frame j < n - 1 is step c - (n - 1 - j)*g, frame j >= n - 1 is step
    c + (j - n + 1)*s. The action into frame j (j >= 1) starts at frame j - 1's step p: `actions[p : p + K]`
    flattened in `concat` mode (K = sim_steps_per_frame = s), `actions[p]` in `sampled` mode; both in the
    units of `layout` (default: the affine `(raw - action_offset) / action_scale`). History frames' actions
    are replaced by the null action in the loss, so their stride does not matter to them.
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
        self.spec = spec
        self.episodes = episodes
        self.layout = layout or ActionLayout.affine(action_offset, action_scale)
        self.lengths = np.array([len(ep["latents"]) for ep in episodes])
        if np.all(self.lengths <= spec.max_span):
            raise InputError(
                f"no episode is long enough for clips of {spec.n_frames} frames ({spec.max_span + 1} recorded "
                f"steps needed at strides {spec.strides}, history x{spec.history_stride_factor}): record longer "
                "episodes or lower clips.n_frames, clips.future_strides or clips.history_stride_factor"
            )
        self.rng = np.random.default_rng(seed)

    @property
    def action_dim(self) -> int:
        spec = self.spec
        return step_action_dim(
            self.episodes[0]["actions"].shape[1], spec.sim_steps_per_frame, spec.action_mode
        )

    def sample(self, batch_size: int) -> dict[str, torch.Tensor]:
        """`latents [B, T, h, w, C]`, normalised `actions [B, T, A]` (zeros for frame 0), `num_history [B]`."""
        episode_ids, starts, num_history, stride, history_stride = self._draw(batch_size)
        t = self.spec.n_frames
        width = self.spec.sim_steps_per_frame if self.spec.action_mode == "concat" else 1  # steps per action
        j = np.arange(t)
        latents, actions = [], []
        for i, ep_id in enumerate(episode_ids):
            ep = self.episodes[ep_id]
            current = num_history[i] - 1
            steps = (
                starts[i]
                + np.minimum(j, current) * history_stride[i]
                + np.maximum(j - current, 0) * stride[i]
            )
            latents.append(ep["latents"][steps])
            raw = ep["actions"][steps[:-1, None] + np.arange(width)].reshape(t - 1, -1)
            actions.append(
                np.concatenate([np.zeros((1, raw.shape[1]), np.float32), self.layout.normalize(raw)])
            )
        return {
            "latents": torch.from_numpy(np.stack(latents).astype(np.float32)),
            "actions": torch.from_numpy(np.stack(actions).astype(np.float32)),
            "num_history": torch.from_numpy(num_history),
        }

    def _draw(self, batch_size: int) -> tuple[np.ndarray, ...]:
        """Per clip: episode, first frame's step, history frames, future stride and history stride."""
        spec, rng = self.spec, self.rng
        if spec.fixed_layout:  # the original draw order: a seed gives the clips it gave before these options
            episode_ids, starts = self._episodes_and_starts(np.full(batch_size, spec.max_span))
            num_history = rng.integers(1, spec.max_history + 1, size=batch_size)
            stride = np.full(batch_size, spec.sim_steps_per_frame)
            return episode_ids, starts, num_history, stride, stride
        stride = rng.choice(spec.strides, size=batch_size)
        history_stride = stride * spec.history_stride_factor
        if spec.zero_history_prob > 0:
            history_stride = np.where(rng.random(batch_size) < spec.zero_history_prob, 0, history_stride)
        num_history = rng.integers(1, spec.max_history + 1, size=batch_size)
        spans = _span(num_history, stride, history_stride, spec.n_frames)
        episode_ids, starts = self._episodes_and_starts(spans)
        return episode_ids, starts, num_history, stride, history_stride

    def _episodes_and_starts(self, spans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Uniform over every (episode, start) where a clip of that span fits, one draw per distinct span."""
        episode_ids, starts = np.zeros(len(spans), np.int64), np.zeros(len(spans), np.int64)
        for span in np.unique(spans):
            clips = np.flatnonzero(spans == span)
            valid = np.maximum(0, self.lengths - span)
            episode_ids[clips] = self.rng.choice(len(self.episodes), size=len(clips), p=valid / valid.sum())
            starts[clips] = self.rng.integers(0, valid[episode_ids[clips]])
        return episode_ids, starts

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
