"""episodes=auto: sizing a ranking run for a requested Spearman CI half-width, and the too-wide warning."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wmeval.errors import ConfigError
from wmeval.metrics.precision import ci_half_width, episodes_for, order_warnings, sized_run
from wmeval.ranking.fidelity import ranking_fidelity

SKILLS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
SKILLS_SEEN = [0.1, 0.3, 0.2, 0.4, 0.6, 0.5, 0.8, 0.7]  # the world model swaps three neighbouring pairs


def _synthetic_ranking(episodes: int) -> dict[str, dict]:
    """A world model that mostly agrees with the real one, on the first `episodes` shared start states.

    Start state i is the same for every `episodes` (as rank's `seed * 100_000 + i`), so a larger run
    extends a smaller one rather than redrawing it.
    """
    rng = np.random.default_rng(0)
    hardness = rng.random(4096)[:episodes]
    noise = rng.normal(0, 0.4, (2, len(SKILLS), 4096))[:, :, :episodes]
    real = {f"pi{k}": (hardness + noise[0, k] < p).astype(float) for k, p in enumerate(SKILLS)}
    imagined = {f"pi{k}": (hardness + noise[1, k] < p).astype(float) for k, p in enumerate(SKILLS_SEEN)}
    return {"wm": ranking_fidelity(imagined, real, n_boot=400, seed=0)}


def test_episodes_auto_reaches_the_requested_half_width():
    target = 0.12
    calls: list[int] = []

    def run(n: int) -> dict[str, dict]:
        calls.append(n)
        return _synthetic_ranking(n)

    assert ci_half_width(run(8)["wm"]) > 1.5 * target  # the pilot alone is far too imprecise
    calls.clear()
    result, sampling = sized_run(
        run, lambda r: r, episodes="auto", target=target, pilot=8, max_episodes=2048, multiple_of=8
    )
    assert sampling["reached"] and sampling["mode"] == "auto"
    assert ci_half_width(result["wm"]) <= target
    assert sampling["half_width"] == ci_half_width(result["wm"])
    assert calls[0] == 8 and calls[-1] == sampling["episodes"] > 8
    assert [r["episodes"] for r in sampling["rounds"]] == calls
    assert all(r["half_width"] > target for r in sampling["rounds"][:-1])
    assert all(n % 8 == 0 for n in calls)
    assert result["wm"]["policies"][0]["episodes"] == sampling["episodes"]
    # the chosen size is an ordinary run: a fixed run of that many episodes gives the same numbers
    fixed, fixed_sampling = sized_run(run, lambda r: r, episodes=sampling["episodes"])
    assert fixed == result and fixed_sampling["mode"] == "fixed"


def test_episodes_auto_stops_at_max_episodes_and_says_so():
    result, sampling = sized_run(
        _synthetic_ranking, lambda r: r, episodes="auto", target=0.01, pilot=16, max_episodes=40
    )
    assert not sampling["reached"]
    assert sampling["episodes"] == 40 == result["wm"]["policies"][0]["episodes"]


def test_episodes_for_scales_with_the_square_of_the_width_ratio():
    assert episodes_for(0.2, 16, 0.1, max_episodes=1000) == 64
    assert episodes_for(0.15, 16, 0.1, max_episodes=1000, multiple_of=16) == 48  # 36 -> full batches
    assert episodes_for(0.5, 16, 0.1, max_episodes=1000) == 64  # growth capped per round
    assert episodes_for(math.nan, 16, 0.1, max_episodes=50) == 50
    assert episodes_for(0.1001, 16, 0.1, max_episodes=1000) == 17  # always at least one more


def test_bad_precision_settings_name_the_field():
    with pytest.raises(ConfigError, match="precision"):
        sized_run(_synthetic_ranking, lambda r: r, episodes="auto", target=None)
    with pytest.raises(ConfigError, match="pilot_episodes"):
        sized_run(_synthetic_ranking, lambda r: r, episodes="auto", target=0.1, pilot=64, max_episodes=32)


def test_order_warnings_flag_an_interval_that_reaches_zero():
    def block(lo: float, hi: float) -> dict:
        return {"ci95": {"spearman": [lo, hi]}, "policies": [{"episodes": 8}, {"episodes": 8}]}

    lines = order_warnings(
        {"wide": block(-0.2, 0.9), "narrow": block(0.3, 0.9), "nan": block(math.nan, math.nan)}
    )
    assert [line.split(":")[0] for line in lines] == ["wide", "nan"]
    assert "[-0.20, 0.90] with 8 episodes per policy is too wide" in lines[0]
    assert order_warnings({"real": _synthetic_ranking(64)["wm"]}) == []
