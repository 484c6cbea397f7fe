"""The policy contract: LeRobot's, so that a LeRobot `PreTrainedPolicy` plugs in unchanged."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Policy(Protocol):
    """What the rollout loop needs from a policy.

    `select_action` takes a batch of observations with LeRobot's keys (`observation.image` float `[B, 3, H, W]`
    in [0, 1], `observation.state` float `[B, S]`, ...) and returns one action per batch element, `[B, A]`.
    `reset` is called at the start of every batch of episodes (policies with action queues clear them).
    """

    def reset(self) -> None: ...

    def select_action(self, observation: dict[str, torch.Tensor]) -> torch.Tensor: ...
