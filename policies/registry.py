"""Policy names -> policies, so configs and the CLI can say `policy=pusht/expert@image` or `lerobot:<dir>`."""

from __future__ import annotations

from typing import Any

from policies.errors import PolicyError

KNOWN_PATTERNS = (
    "pusht/<member>",
    "pusht/<member>@image",
    "pusht/heldout/<name>",
    "pusht/heldout/<name>@image",
    "pusht/play",
    "pusht/play@image",
    "random",
    "replay",
    "lerobot:<dir-or-hub-id>",
)


def family_members(env: str = "pusht") -> list[str]:
    """Names of the family members of `env`, most skilled first (privileged variant; append `@image`)."""
    from policies.pusht.family import member_names

    return member_names(env)


def heldout_members(env: str = "pusht") -> list[str]:
    """Names of the held-out policy set of `env` (never recorded for training), most skilled first."""
    from policies.pusht.heldout import heldout_names

    return heldout_names(env)


def known_policies() -> list[str]:
    """Every concrete name plus the patterns, for error messages and `--help`."""
    from policies.pusht.family import MEMBERS

    concrete = [f"pusht/{m}" for m in MEMBERS] + heldout_members("pusht")
    return concrete + [p for p in KNOWN_PATTERNS if "<member>" not in p and "<name>" not in p]


def make_policy(name: str, **kwargs: Any) -> Any:
    """Build a policy by name.

    - `pusht/<member>[@state|@image]`: a family member (kwargs: seed, estimator);
    - `pusht/heldout/<name>[@image]`: a held-out policy (kwargs: seed, estimator);
    - `pusht/play[@image]`: play data for training world models (kwargs: seed, estimator);
    - `random`: uniform actions (kwargs: low, high, dim, seed);
    - `replay`: plays `actions=[per-episode [T, A] arrays]`;
    - `lerobot:<dir-or-hub-id>`: a LeRobot `PreTrainedPolicy` with its processors (kwargs: device,
      allow_download).
    """
    name = str(name).strip()
    if name.startswith("lerobot:"):
        from policies.lerobot_policy import LeRobotPolicy

        return LeRobotPolicy(name.split(":", 1)[1], **kwargs)
    if name == "random":
        from policies.random_policy import RandomPolicy

        return RandomPolicy(**kwargs)
    if name == "replay":
        from policies.replay import ReplayPolicy

        if "actions" not in kwargs:
            raise PolicyError("policy 'replay' needs actions=[one [T, A] array per episode]")
        return ReplayPolicy(**kwargs)
    if name.startswith("pusht/"):
        from policies.pusht.family import MEMBERS, make_member

        base, _, variant = name.partition("@")
        variant = variant or "state"
        member = base.split("/", 1)[1]
        if member.startswith("heldout/") and variant in ("state", "image"):
            from policies.pusht.heldout import make_heldout

            return make_heldout(base, variant=variant, **kwargs)
        if member == "play" and variant in ("state", "image"):
            from policies.pusht.play import PlayPolicy

            return PlayPolicy(variant=variant, name=name, **kwargs)
        if member in MEMBERS and variant in ("state", "image"):
            return make_member(member, variant=variant, **kwargs)
    raise PolicyError(
        f"unknown policy {name!r}; known: {', '.join(known_policies())} (append @image for image-based)"
    )
