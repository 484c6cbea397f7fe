"""Uniform random actions: the chance-level baseline every ranking should place last (or tied for last)."""

from __future__ import annotations

import numpy as np
import torch

from policies.errors import PolicyError


class RandomPolicy:
    """Uniform in the box [low, high]^dim, seeded; the batch size is read from the observation."""

    def __init__(
        self,
        low: float | list[float] = 0.0,
        high: float | list[float] = 512.0,
        dim: int = 2,
        seed: int = 0,
        name: str = "random",
    ) -> None:
        self.low = np.broadcast_to(np.asarray(low, dtype=np.float64), (dim,)).copy()
        self.high = np.broadcast_to(np.asarray(high, dtype=np.float64), (dim,)).copy()
        if not np.all(self.high > self.low):
            raise PolicyError(f"random policy needs high > low, got low={low} high={high}")
        self.dim, self.seed, self.name = dim, int(seed), name
        self._rng = np.random.default_rng(self.seed)

    def reset(self) -> None:
        """Nothing to forget; the random stream continues so consecutive batches differ."""

    def select_action(self, observation: dict[str, torch.Tensor]) -> torch.Tensor:
        batch = _batch_size(observation)
        return torch.as_tensor(
            self._rng.uniform(self.low, self.high, size=(batch, self.dim)), dtype=torch.float32
        )


def _batch_size(observation: dict[str, torch.Tensor]) -> int:
    for value in observation.values():
        if isinstance(value, torch.Tensor) and value.ndim >= 1:
            return int(value.shape[0])
    raise PolicyError("cannot infer the batch size: the observation holds no tensors")
