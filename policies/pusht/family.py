"""The PushT policy family: one expert controller degraded along a skill knob into members of graded skill.

A world model is judged by whether it ranks these members as the real simulator does, so their real success
rates must clearly differ (measured numbers in policies/pusht/README.md). Every member exists in a privileged
(`state`) and an image-based (`image`) variant; see `policies.pusht.policy`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from policies.errors import PolicyError
from policies.pusht.controller import ControllerConfig
from policies.pusht.policy import IdlePolicy, ScriptedPushTPolicy, SkillKnobs
from policies.random_policy import RandomPolicy


@dataclass(frozen=True)
class Member:
    """A named member: `kind` is `controller`, `random` or `idle`; `knobs` only matter for controllers."""

    name: str
    description: str
    kind: str = "controller"
    knobs: SkillKnobs = field(default_factory=SkillKnobs)


def _ctl(**kw: Any) -> ControllerConfig:
    """The expert's controller (fast pushes and travel, which action chunks make safe), with overrides."""
    return ControllerConfig(**{"push_speed": 24.0, "travel_speed": 80.0, **kw})


CHUNK = 5  # targets per observation: the world-model protocol shows a fresh frame every 5 steps


def _chunked(**kw: Any) -> SkillKnobs:
    return SkillKnobs(**{"controller": _ctl(), "chunk": CHUNK, **kw})


# Ordered from most to least skilled (by measured real rates; see the README table).
MEMBERS: dict[str, Member] = {
    m.name: m
    for m in [
        Member(
            "expert",
            "model-based pushing controller planning a 5-step action chunk per observation",
            knobs=_chunked(),
        ),
        Member(
            "expert_noisy",
            "expert with Gaussian action noise (std 12 px) on every target of the chunk",
            knobs=_chunked(action_noise=12.0),
        ),
        Member(
            "expert_noisier",
            "expert with strong Gaussian action noise (std 24 px)",
            knobs=_chunked(action_noise=24.0),
        ),
        Member(
            "delayed",
            "expert planning from the observation before the last one (5 steps staler)",
            knobs=_chunked(delay=1),
        ),
        Member(
            "cautious",
            "expert pushing at half speed (12 px per step), so it runs out of time on far starts",
            knobs=_chunked(controller=_ctl(push_speed=12.0, travel_speed=60.0)),
        ),
        Member(
            "unchunked",
            "expert without chunks: one target per observation, held until the next one",
            knobs=SkillKnobs(controller=_ctl()),
        ),
        Member(
            "ignore_rotation",
            "flawed: brings the block's centre to the goal but ignores its angle",
            knobs=_chunked(controller=_ctl(ignore_rotation=True)),
        ),
        Member(
            "wrong_goal",
            "flawed: pushes the block to a goal 40 px off and 20 degrees off the real one",
            knobs=_chunked(controller=_ctl(goal=(296.0, 256.0, float(np.pi / 4 + np.deg2rad(20))))),
        ),
        Member(
            "sluggish",
            "low gain: pushes 4 px/step and travels slowly",
            knobs=_chunked(controller=_ctl(push_speed=4.0, travel_speed=15.0)),
        ),
        Member("idle", "holds its position", kind="idle"),
        Member("random", "uniform random targets in [0, 512]^2", kind="random"),
    ]
}


def member_names(env: str = "pusht") -> list[str]:
    """Fully qualified names (`pusht/<member>`) in skill order."""
    if env != "pusht":
        raise PolicyError(f"no policy family for env {env!r}: the only family is 'pusht'")
    return [f"pusht/{name}" for name in MEMBERS]


def make_member(member: str, *, variant: str = "state", seed: int = 0, estimator: Any = None) -> Any:
    """Build family member `member` (bare or `pusht/`-prefixed) in the given variant."""
    short = member.split("/", 1)[1] if member.startswith("pusht/") else member
    if short not in MEMBERS:
        raise PolicyError(f"unknown PushT family member {member!r}; known: {', '.join(MEMBERS)}")
    spec = MEMBERS[short]
    name = f"pusht/{short}" + ("@image" if variant == "image" else "")
    if spec.kind == "random":
        return RandomPolicy(0.0, 512.0, dim=2, seed=seed, name=name)
    if spec.kind == "idle":
        return IdlePolicy(name=name)
    return ScriptedPushTPolicy(name, spec.knobs, variant=variant, estimator=estimator, seed=seed)
