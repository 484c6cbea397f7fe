"""How many episodes a ranking question needs: size the run for a requested CI half-width, and say when
the interval is too wide to order the policies.

A bootstrap interval narrows like 1/sqrt(episodes), so a pilot's half-width h at n episodes predicts
n * (h / target)^2 episodes for a half-width of `target`. The prediction is only as good as the pilot,
so `sized_run` measures again at the predicted count and grows once more if it fell short, within
`max_episodes`. Each round reruns from scratch on the first n seeded start states, so the final result is
exactly what a fixed `episodes=n` run on the same seed gives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from wmeval.errors import ConfigError

R = TypeVar("R")

#: Largest growth of the episode count per round: a pilot's half-width is itself noisy.
MAX_GROWTH = 4


def ci_half_width(block: Mapping[str, Any], stat: str = "spearman") -> float:
    """Half the width of a `ranking_fidelity` block's 95% CI for `stat`; `nan` if it is undefined."""
    lo, hi = block["ci95"][stat]
    return (float(hi) - float(lo)) / 2.0


def episodes_for(
    half_width: float, episodes: int, target: float, *, max_episodes: int, multiple_of: int = 1
) -> int:
    """Episodes predicted to reach `target` from `half_width` measured at `episodes`.

    Grows at least by one episode and at most `MAX_GROWTH`-fold (an undefined half-width, `nan`, grows
    the most), rounded up to a multiple of `multiple_of` (full batches of parallel envs), then capped.
    """
    if math.isnan(half_width):
        wanted = episodes * MAX_GROWTH
    else:
        wanted = math.ceil(episodes * (half_width / target) ** 2)
        wanted = min(max(wanted, episodes + 1), episodes * MAX_GROWTH)
    wanted = math.ceil(wanted / multiple_of) * multiple_of
    return min(wanted, max_episodes)


def widest_half_width(blocks: Iterable[Mapping[str, Any]], stat: str = "spearman") -> float:
    """The question's precision: the widest `stat` half-width over the blocks, `nan` if any is undefined."""
    widths = [ci_half_width(b, stat) for b in blocks]
    return math.nan if any(math.isnan(w) for w in widths) else max(widths)


def sized_run(
    run: Callable[[int], R],
    blocks: Callable[[R], Mapping[str, Mapping[str, Any]]],
    *,
    episodes: int | str,
    target: float | None = None,
    pilot: int = 16,
    max_episodes: int = 256,
    multiple_of: int = 1,
    max_rounds: int = 4,
) -> tuple[R, dict[str, Any]]:
    """`run(n)` with `n = episodes`, or with `episodes="auto"` the fewest predicted episodes whose widest
    Spearman half-width over `blocks(result)` (world model -> `ranking_fidelity` block) is at most `target`.

    Returns the last result and a `sampling` record for the report: the mode, episodes per policy, the
    widest half-width, and for `auto` the target, each round (pilot first) and whether the target was
    reached (not when `max_episodes` or `max_rounds` stops the search first), plus `order_warnings`.
    """
    if episodes != "auto":
        result = run(int(episodes))
        width = widest_half_width(blocks(result).values())
        record: dict[str, Any] = {"mode": "fixed", "episodes": int(episodes), "half_width": width}
        return result, {**record, "warnings": order_warnings(blocks(result))}
    if target is None or not target > 0:
        raise ConfigError(
            f"precision={target} must be > 0 with episodes=auto: the Spearman CI half-width to reach, e.g. 0.15"
        )
    if not 2 <= pilot <= max_episodes:
        raise ConfigError(
            f"pilot_episodes={pilot} must be >= 2 and <= max_episodes={max_episodes}: raise max_episodes"
        )
    n, rounds = pilot, []
    while True:
        result = run(n)
        width = widest_half_width(blocks(result).values())
        rounds.append({"episodes": n, "half_width": width})
        reached = width <= target  # False for nan
        if reached or n >= max_episodes or len(rounds) >= max_rounds:
            break
        n = episodes_for(width, n, target, max_episodes=max_episodes, multiple_of=multiple_of)
    record = {"mode": "auto", "episodes": n, "half_width": width, "target_half_width": target}
    return result, {
        **record,
        "rounds": rounds,
        "reached": reached,
        "warnings": order_warnings(blocks(result)),
    }


def order_warnings(blocks: Mapping[str, Mapping[str, Any]], stat: str = "spearman") -> list[str]:
    """One line per world model (name -> `ranking_fidelity` block) whose CI cannot tell the world model's policy order from an unrelated one.

    A `stat` interval that reaches 0 (or is undefined) is consistent with a world model whose ranking has
    nothing to do with the real one, so the order it gives the policies is not evidence yet.
    """
    lines = []
    for name, block in blocks.items():
        lo, hi = block["ci95"][stat]
        n = "/".join(str(e) for e in sorted({int(p["episodes"]) for p in block["policies"]}))
        if math.isnan(lo) or lo <= 0.0:
            lines.append(
                f"{name}: {stat} 95% CI [{lo:.2f}, {hi:.2f}] with {n} "
                "episodes per policy is too wide to order the policies: add episodes, or episodes=auto precision=0.15"
            )
    return lines
