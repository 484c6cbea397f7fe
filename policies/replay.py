"""Replays recorded action sequences, one per batch element: checks that an env (real or imagined) reproduces
a recorded episode, and drives world models with the exact actions of the dataset."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from policies.errors import PolicyError


class ReplayPolicy:
    """Batch element i plays `actions[i][t]` at its t-th call after `reset()`; past the end it repeats the last
    action (an episode that ended early in the recording simply holds still)."""

    def __init__(self, actions: Sequence[np.ndarray] | np.ndarray, name: str = "replay") -> None:
        seqs = [np.asarray(a, dtype=np.float32) for a in actions]
        if not seqs or any(a.ndim != 2 or len(a) == 0 for a in seqs):
            raise PolicyError("replay needs a non-empty [T, A] action array per episode")
        if len({a.shape[1] for a in seqs}) != 1:
            raise PolicyError("replay episodes have different action sizes")
        self.actions, self.name = seqs, name
        self._t = 0

    def reset(self) -> None:
        self._t = 0

    def select_action(self, observation: dict[str, torch.Tensor]) -> torch.Tensor:
        batch = next(
            (v.shape[0] for v in observation.values() if isinstance(v, torch.Tensor) and v.ndim), None
        )
        if batch is not None and batch != len(self.actions):
            raise PolicyError(
                f"replay holds {len(self.actions)} episodes but the batch has {batch}: "
                "run it with num_envs equal to the number of recorded episodes"
            )
        out = np.stack([a[min(self._t, len(a) - 1)] for a in self.actions])
        self._t += 1
        return torch.as_tensor(out)
