"""`pusht/play`: diverse, contact-rich play data for training world models, unlike any evaluated policy.

A world model ranks policies well only if it has seen the block react to pushes from everywhere, not just the
pushes a few goal-seeking policies happen to make. So play is a sequence of random segments, each a behaviour
mode drawn afresh: a straight push from a random contact on the outline (any face or corner, random direction,
length and speed), the model-based controller steering the block to a random pose (sometimes the real goal, so
states near success are covered too), wandering to random points near the block (brushing it on the way),
or idling. Every segment has its own action noise. Seeded and batched; privileged or `@image` like the family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from policies.pusht import geometry as G
from policies.pusht.controller import CONTACTS, OUTWARD, ControllerConfig, PushTController
from policies.pusht.policy import StatePolicy

MODES = ("push", "goal", "wander", "idle")


@dataclass(frozen=True)
class PlayConfig:
    """Ranges the segments are drawn from (uniform unless stated)."""

    mode_weights: tuple[float, float, float, float] = (0.5, 0.25, 0.17, 0.08)  # push, goal, wander, idle
    segment_steps: tuple[int, int] = (15, 70)
    idle_steps: tuple[int, int] = (3, 15)
    push_length: tuple[float, float] = (10.0, 140.0)  # px the agent travels past the contact
    push_speed: tuple[float, float] = (2.0, 30.0)  # px per step while pushing (past the family's fastest)
    travel_speed: tuple[float, float] = (10.0, 90.0)  # px per step approaching or wandering (ditto)
    direction_jitter: float = 0.6  # rad, push direction spread around the inward normal
    wander_radius: tuple[float, float] = (20.0, 170.0)  # px from the block's centre
    goal_push_speed: tuple[float, float] = (4.0, 28.0)  # the controller's push speed in goal segments
    real_goal_prob: float = 0.3  # goal segments that steer to the task's goal rather than a random pose
    noise: tuple[float, float] = (0.0, 8.0)  # px, per-segment std of Gaussian action noise


class _Segment:
    """One behaviour segment of one batch element."""

    def __init__(self, mode: str, steps: int, noise: float) -> None:
        self.mode, self.steps, self.noise = mode, steps, noise
        self.contact = 0
        self.direction = np.zeros(2)  # body-frame push direction
        self.length = self.speed = self.progress = self.approach_speed = 0.0
        self.pushing = False
        self.start = np.zeros(2)
        self.target = np.zeros(2)
        self.controller: PushTController | None = None


class PlayPolicy(StatePolicy):
    """Batched play: each batch element runs its own random sequence of segments."""

    def __init__(
        self,
        config: PlayConfig | None = None,
        *,
        variant: str = "state",
        estimator: Any = None,
        seed: int = 0,
        name: str = "pusht/play",
    ) -> None:
        super().__init__(name, variant=variant, estimator=estimator, seed=seed)
        self.config = config or PlayConfig()
        self._router = PushTController()
        self._segments: list[_Segment | None] = []

    def reset(self) -> None:
        """New episode: every element starts a fresh segment; the random stream continues."""
        self._segments = []

    def select_action(self, observation: dict[str, torch.Tensor]) -> torch.Tensor:
        state = self.read_state(observation)
        if len(self._segments) != len(state):
            self._segments = [None] * len(state)
        out = np.empty((len(state), 2))
        for i, s in enumerate(state):
            seg = self._segments[i]
            if seg is None or seg.steps <= 0:
                seg = self._segments[i] = self._draw(s)
            target = self._act(seg, s[:2], s[2:5])
            seg.steps -= 1
            if seg.noise > 0:
                target = target + self._rng.normal(0.0, seg.noise, size=2)
            out[i] = np.clip(target, 0.0, 512.0)
        return torch.as_tensor(out, dtype=torch.float32)

    # --- segments ------------------------------------------------------------------------------------
    def _draw(self, state: np.ndarray) -> _Segment:
        cfg, rng = self.config, self._rng
        weights = np.asarray(cfg.mode_weights, dtype=float)
        mode = MODES[int(rng.choice(len(MODES), p=weights / weights.sum()))]
        lo, hi = cfg.idle_steps if mode == "idle" else cfg.segment_steps
        seg = _Segment(mode, int(rng.integers(lo, hi + 1)), float(rng.uniform(*cfg.noise)))
        if mode == "push":
            seg.contact = int(rng.integers(len(CONTACTS)))
            angle = np.arctan2(-OUTWARD[seg.contact, 1], -OUTWARD[seg.contact, 0])
            angle += rng.uniform(-cfg.direction_jitter, cfg.direction_jitter)
            seg.direction = np.array([np.cos(angle), np.sin(angle)])
            seg.length = float(rng.uniform(*cfg.push_length))
            seg.speed = float(rng.uniform(*cfg.push_speed))
            seg.approach_speed = float(rng.uniform(*cfg.travel_speed))
        elif mode == "goal":
            if rng.random() < cfg.real_goal_prob:
                goal = tuple(float(v) for v in G.GOAL_POSE)
            else:
                goal = (
                    float(rng.uniform(130, 382)),
                    float(rng.uniform(130, 382)),
                    float(rng.uniform(-np.pi, np.pi)),
                )
            seg.controller = PushTController(
                ControllerConfig(goal=goal, push_speed=float(rng.uniform(*cfg.goal_push_speed)))
            )
        elif mode == "wander":
            seg.speed = float(rng.uniform(*cfg.travel_speed))
            seg.target = self._near_block(state[2:5])
        return seg

    def _near_block(self, pose: np.ndarray) -> np.ndarray:
        cog = G.to_world(pose, G.COG_LOCAL[None])[0]
        r = self._rng.uniform(*self.config.wander_radius)
        a = self._rng.uniform(-np.pi, np.pi)
        return np.clip(cog + r * np.array([np.cos(a), np.sin(a)]), *G.ARENA)

    def _act(self, seg: _Segment, agent: np.ndarray, pose: np.ndarray) -> np.ndarray:
        if seg.mode == "idle":
            return agent.copy()
        if seg.mode == "goal":
            assert seg.controller is not None
            return seg.controller.act(agent, pose)
        if seg.mode == "wander":
            if np.linalg.norm(seg.target - agent) < 8.0:
                seg.target = self._near_block(pose)
            delta = seg.target - agent
            dist = np.linalg.norm(delta)
            return agent + delta / dist * seg.speed if dist > seg.speed else seg.target.copy()
        return self._push(seg, agent, pose)

    def _push(self, seg: _Segment, agent: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """Approach the contact around the block, then drive straight through it along the push direction."""
        r = G.rot(pose[2])
        direction = r @ seg.direction
        if seg.pushing:
            seg.progress = min(seg.progress + seg.speed, seg.length)
            if seg.progress >= seg.length:
                seg.steps = min(seg.steps, 1)  # push done: the segment ends after this step
            return seg.start + direction * seg.progress
        contact = G.to_world(pose, CONTACTS[seg.contact][None])[0]
        pre = contact - direction * (G.AGENT_RADIUS + 9.0)
        if G.distance_to_tee(pose, pre[None])[0] < G.AGENT_RADIUS:  # a jittered line that starts inside
            pre = contact + (r @ OUTWARD[seg.contact]) * (G.AGENT_RADIUS + 9.0)
        if np.linalg.norm(agent - pre) < 6.0:
            seg.pushing, seg.start = True, agent.copy()
            seg.progress = seg.speed
            return agent + direction * seg.speed
        return self._router.travel_toward(agent, pose, pre, speed=seg.approach_speed)
