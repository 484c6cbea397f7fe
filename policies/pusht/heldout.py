"""A held-out PushT policy set: hand-written heuristics unlike the family's model-based planner and unlike play.

A world model trained on the family's (or play) recordings should still rank policies it has never seen; these
check that. None of them predicts the block's response: they follow geometric rules of thumb (push through the
centre of mass, rotate with the bar's ends, orbit and poke, vector fields, stop-and-go) and act on each
observation as it comes, without action chunks. Each has a privileged and an `@image` variant like the family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from policies.errors import PolicyError
from policies.pusht import geometry as G
from policies.pusht.policy import StatePolicy

GOAL_COG = G.to_world(G.GOAL_POSE, G.COG_LOCAL[None])[0]
REACH = float(np.linalg.norm(G.OUTLINE - G.COG_LOCAL, axis=-1).max())  # CoG to the farthest corner


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else np.array([1.0, 0.0])


def _angle_error(pose: np.ndarray) -> float:
    return float((G.GOAL_POSE[2] - pose[2] + np.pi) % (2 * np.pi) - np.pi)


def _cog(pose: np.ndarray) -> np.ndarray:
    return G.to_world(pose, G.COG_LOCAL[None])[0]


def _toward(agent: np.ndarray, target: np.ndarray, speed: float) -> np.ndarray:
    delta = target - agent
    dist = float(np.linalg.norm(delta))
    return agent + delta / dist * speed if dist > speed else target


def _orbit_to(agent: np.ndarray, pose: np.ndarray, point: np.ndarray, speed: float) -> np.ndarray:
    """Go to `point`: straight when the way is clear, otherwise along a circle around the block's CoG."""
    if G.segment_clear(pose, agent, point, G.AGENT_RADIUS + 2.0):
        return _toward(agent, point, speed)
    cog = _cog(pose)
    rel, goal_rel = agent - cog, point - cog
    radius = max(float(np.linalg.norm(rel)), REACH + G.AGENT_RADIUS + 6.0)
    a0, a1 = np.arctan2(rel[1], rel[0]), np.arctan2(goal_rel[1], goal_rel[0])
    turn = (a1 - a0 + np.pi) % (2 * np.pi) - np.pi
    step = np.sign(turn) * min(abs(turn), speed / radius)
    return cog + radius * np.array([np.cos(a0 + step), np.sin(a0 + step)])


def _line_push(agent: np.ndarray, pose: np.ndarray, direction: np.ndarray, lead: float, speed: float):
    """Push the block along `direction` through its CoG: get behind it, then drive `lead` px past the agent."""
    cog = _cog(pose)
    behind = cog - direction * (REACH + G.AGENT_RADIUS + 4.0)
    rel = agent - cog
    lateral = abs(rel[0] * direction[1] - rel[1] * direction[0])
    if lateral < 8.0 and (rel * direction).sum() < 0:  # on the line, behind the CoG: push
        on_line = cog + direction * (rel * direction).sum()
        return on_line + direction * lead
    return _orbit_to(agent, pose, behind, speed)


def _rotate_push(agent: np.ndarray, pose: np.ndarray, sign: float, lead: float, speed: float):
    """Turn the block by pushing the tip of its stem sideways (the longest lever about the CoG)."""
    r = G.rot(pose[2])
    s = float(np.sign(sign))
    start = G.to_world(pose, np.array([[s * (15.0 + G.AGENT_RADIUS + 5.0), 108.0]]))[0]
    push = r @ np.array([-s, 0.0])
    rel = agent - start
    lateral = abs(rel[0] * push[1] - rel[1] * push[0])
    if lateral < 8.0 and -4.0 < (rel * push).sum() < 40.0:
        return agent + push * lead
    return _orbit_to(agent, pose, start, speed)


@dataclass(frozen=True)
class HeldOutSpec:
    """A held-out member: its rule (`style`), its knobs and what it does."""

    name: str
    style: str
    description: str
    lead: float = 40.0  # px a push target is placed ahead of the agent
    speed: float = 60.0  # px per step while getting into position
    position_tol: float = 12.0  # px CoG error below which the block counts as in place
    angle_tol: float = 0.12  # rad
    noise: float = 0.0  # px, Gaussian action noise


class HeldOutPolicy(StatePolicy):
    """One heuristic rule per batch element; per-element memory is the phase of the rule."""

    def __init__(self, spec: HeldOutSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self._t = np.zeros(0, dtype=int)

    def reset(self) -> None:
        """New episode; the noise stream continues."""
        self._t = np.zeros(0, dtype=int)

    def select_action(self, observation: dict[str, torch.Tensor]) -> torch.Tensor:
        state = self.read_state(observation)
        if len(self._t) != len(state):
            self._t = np.zeros(len(state), dtype=int)
        rule = getattr(self, f"_{self.spec.style}")
        out = np.stack([rule(i, s[:2], s[2:5]) for i, s in enumerate(state)])
        self._t += 1
        if self.spec.noise > 0:
            out = out + self._rng.normal(0.0, self.spec.noise, size=out.shape)
        return torch.as_tensor(np.clip(out, 0.0, 512.0), dtype=torch.float32)

    # --- rules ---------------------------------------------------------------------------------------
    def _translate_then_rotate(self, i: int, agent: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """Push through the CoG toward the goal's CoG; once there, turn with the bar's ends."""
        sp = self.spec
        d = GOAL_COG - _cog(pose)
        if np.linalg.norm(d) > sp.position_tol:
            return _line_push(agent, pose, _unit(d), min(sp.lead, float(np.linalg.norm(d))), sp.speed)
        err = _angle_error(pose)
        if abs(err) > sp.angle_tol:
            return _rotate_push(agent, pose, err, min(sp.lead, 60.0 * abs(err)), sp.speed)
        return agent

    def _rotate_then_translate(self, i: int, agent: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """Fix the angle first, then push through the CoG (rotation drifts the block, so re-check both)."""
        sp = self.spec
        err = _angle_error(pose)
        if abs(err) > sp.angle_tol:
            return _rotate_push(agent, pose, err, min(sp.lead, 60.0 * abs(err)), sp.speed)
        d = GOAL_COG - _cog(pose)
        if np.linalg.norm(d) > sp.position_tol:
            return _line_push(agent, pose, _unit(d), min(sp.lead, float(np.linalg.norm(d))), sp.speed)
        return agent

    def _vector_field(self, i: int, agent: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """Attraction to the spot behind the block plus repulsion from its CoG: a potential field, no angle."""
        sp = self.spec
        cog = _cog(pose)
        d = GOAL_COG - cog
        if np.linalg.norm(d) < sp.position_tol:
            return agent
        behind = cog - _unit(d) * (REACH * 0.6 + G.AGENT_RADIUS)
        pull = behind - agent
        rel = agent - cog
        dist = max(float(np.linalg.norm(rel)), 1.0)
        push_away = rel / dist * (REACH + G.AGENT_RADIUS) ** 2 / dist * 0.5
        field = pull + push_away * (1.0 - max(0.0, float(_unit(-rel) @ _unit(d))))
        if np.linalg.norm(pull) < 25.0:
            field = field + _unit(d) * sp.lead
        return agent + _unit(field) * min(sp.speed, float(np.linalg.norm(field)))

    def _orbit_poke(self, i: int, agent: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """Circle the block; whenever it is behind the block relative to the goal, poke straight at the CoG."""
        sp = self.spec
        cog = _cog(pose)
        d = GOAL_COG - cog
        if np.linalg.norm(d) < sp.position_tol:
            return agent
        rel = agent - cog
        if float(_unit(-rel) @ _unit(d)) > np.cos(np.deg2rad(20)):
            return cog + _unit(d) * sp.lead
        radius = REACH + G.AGENT_RADIUS + 8.0
        a = np.arctan2(rel[1], rel[0]) + sp.speed / radius
        return cog + radius * np.array([np.cos(a), np.sin(a)])

    def _stop_and_go(self, i: int, agent: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """Translate-then-rotate in bursts: act for 3 steps, then stand still for 4."""
        if self._t[i] % 7 >= 3:
            return agent
        return self._translate_then_rotate(i, agent, pose)


# Ordered from most to least skilled (by measured real rates; see the README table).
SPECS: dict[str, HeldOutSpec] = {
    s.name: s
    for s in [
        HeldOutSpec(
            "orbit_poke", "orbit_poke", "circles the block and pokes at its CoG when behind it", lead=30.0
        ),
        HeldOutSpec(
            "centre_pusher",
            "translate_then_rotate",
            "pushes through the CoG, then turns the block by its stem",
        ),
        HeldOutSpec(
            "vector_field", "vector_field", "potential field toward the block's far side; ignores angle"
        ),
        HeldOutSpec(
            "rotate_first", "rotate_then_translate", "turns the block first, then pushes through the CoG"
        ),
        HeldOutSpec("stop_and_go", "stop_and_go", "centre pusher acting in 3-step bursts with 4-step stops"),
        HeldOutSpec(
            "timid",
            "translate_then_rotate",
            "centre pusher with 6 px pushes and slow travel",
            lead=6.0,
            speed=20.0,
        ),
    ]
}


def heldout_names(env: str = "pusht") -> list[str]:
    """Fully qualified names (`pusht/heldout/<name>`) in skill order."""
    if env != "pusht":
        raise PolicyError(f"no held-out policy set for env {env!r}: the only one is 'pusht'")
    return [f"pusht/heldout/{n}" for n in SPECS]


def make_heldout(name: str, *, variant: str = "state", seed: int = 0, estimator: Any = None) -> HeldOutPolicy:
    """Build held-out policy `name` (bare or `pusht/heldout/`-prefixed) in the given variant."""
    short = name.rsplit("/", 1)[-1]
    if short not in SPECS:
        raise PolicyError(f"unknown PushT held-out policy {name!r}; known: {', '.join(SPECS)}")
    full = f"pusht/heldout/{short}" + ("@image" if variant == "image" else "")
    return HeldOutPolicy(SPECS[short], name=full, variant=variant, seed=seed, estimator=estimator)
