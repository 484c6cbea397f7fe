"""Policy-ranking fidelity: does a world model order policies the way the real simulator does?

Inputs are per-policy success rates: `imagined` (judged inside the world model) and `real` (the
simulator's own flag), one entry per policy, in the same policy order. Definitions follow
docs/design.md ("Policy-ranking fidelity"). `fidelity_blocks` applies them to a
`RankResult`: one block per world model and outcome.

Degenerate input, on purpose not an exception:
- A correlation (Pearson, Spearman, Kendall) is `nan` when either vector is constant: with no spread
  there is no ordering to agree or disagree with, so the number is undefined rather than 0 or 1.
  (SIMPLER's own `pearson_correlation` returns 1 when both vectors are equal; we do not, because a world
  model that says "every policy is equally good" has told us nothing about the ranking.)
- `pairwise_order_accuracy` is `nan` when every real rate is equal (no real order to recover).
- `mmrv` is always defined; a constant `imagined` vector is penalised (see `mmrv`).
Fewer than two policies, mismatched lengths or non-finite rates raise `RankingInputError` (a ValueError).

Each statistic has a scalar form (scipy where scipy does the job) and a row-batched numpy form
(`_*_rows`, shape [B, N]) used by the bootstrap; tests check that the two agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from wmeval.errors import WmevalError
from wmeval.judges.outcomes import OUTCOMES, episode_outcomes
from wmeval.metrics.bootstrap import bca_interval, jackknife_rates, resample_rates

if TYPE_CHECKING:
    from wmeval.ranking.run import RankResult

ArrayLike = Sequence[float] | np.ndarray

#: Statistics that get a bootstrap CI in `ranking_fidelity`, in report order.
CI_STATS = ("pearson", "spearman", "kendall", "mmrv")
#: The fidelity statistics every comparison reports.
FIDELITY_KEYS = CI_STATS


class RankingInputError(WmevalError, ValueError):
    """Per-policy rates or per-episode outcomes that cannot be compared."""


# --------------------------------------------------------------------------------------------------
# Scalar statistics
# --------------------------------------------------------------------------------------------------


def pearson(x: ArrayLike, y: ArrayLike) -> float:
    """Pearson r of two per-policy rate vectors; `nan` if either is constant."""
    x, y = _pair(x, y)
    if _is_constant(x) or _is_constant(y):
        return math.nan
    return _clip_corr(stats.pearsonr(x, y).statistic)


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman rho with average ranks for ties; `nan` if either vector is constant."""
    x, y = _pair(x, y)
    if _is_constant(x) or _is_constant(y):
        return math.nan
    return _clip_corr(stats.spearmanr(x, y).statistic)


def kendall_tau_b(x: ArrayLike, y: ArrayLike) -> float:
    """Kendall tau-b (tie-corrected); `nan` if either vector is constant."""
    x, y = _pair(x, y)
    if _is_constant(x) or _is_constant(y):
        return math.nan
    return _clip_corr(stats.kendalltau(x, y, variant="b").statistic)


def pairwise_order_accuracy(*, imagined: ArrayLike, real: ArrayLike) -> float:
    """Fraction of policy pairs that the world model orders as the real simulator does.

    Only pairs with different real rates count (a real tie has no order to recover); a pair tied in
    `imagined` scores 1/2, as in Harrell's concordance index. Keyword-only because it is asymmetric:
    the real vector decides which pairs count. `nan` when all real rates are equal.
    """
    s, r = _pair(imagined, real)
    return float(_pairwise_rows(s[None], r[None])[0])


def mmrv(*, imagined: ArrayLike, real: ArrayLike) -> float:
    """Mean maximum rank violation (SIMPLER, Li et al. 2024); 0 is perfect, lower is better.

    For each policy i: the largest |real_i - real_j| over policies j whose order flips between the two
    worlds, 0 if none; then the mean over i. Asymmetric — magnitudes come from the REAL rates — hence
    keyword-only arguments.

    Ties follow SIMPLER's reference code exactly (simpler-env/SimplerEnv,
    `simpler_env/utils/metrics.py::mean_maximum_rank_violation(perf_sim, perf_real)`, also
    `tools/calc_metrics.py`): a pair (i, j) is a violation for i when
    `(imagined_i > imagined_j) != (real_i > real_j)`, strict comparisons. So a pair the world model ties
    but the real world orders counts against the better real policy (a constant `imagined` vector
    scores mean_i(real_i - min(real))), while a pair tied in `real` costs |real_i - real_j| = 0.
    """
    s, r = _pair(imagined, real)
    return float(_mmrv_rows(s[None], r[None])[0])


# --------------------------------------------------------------------------------------------------
# Row-batched statistics: x, y of shape [B, N] -> [B]
# --------------------------------------------------------------------------------------------------


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r per row; `nan` where a row is constant (exactly, via max == min, not rounding)."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    den = np.sqrt((xc * xc).sum(axis=1) * (yc * yc).sum(axis=1))
    defined = ~(_constant_rows(x) | _constant_rows(y)) & (den > 0)
    out = np.full(x.shape[0], np.nan)
    out[defined] = (xc * yc).sum(axis=1)[defined] / den[defined]
    return np.clip(out, -1.0, 1.0)


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rho per row: Pearson r of average ranks (ties share the mean rank)."""
    return _pearson_rows(stats.rankdata(x, axis=1), stats.rankdata(y, axis=1))


def _pair_signs(x: np.ndarray) -> np.ndarray:
    """sign(x_i - x_j) for every unordered pair i < j: [B, N] -> [B, N(N-1)/2]."""
    i, j = np.triu_indices(x.shape[1], k=1)
    return np.sign(x[:, i] - x[:, j])


def _kendall_b_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall tau-b per row: (C - D) / sqrt((P - T_x)(P - T_y)), T_* = pairs tied in that vector."""
    dx, dy = _pair_signs(x), _pair_signs(y)
    den = np.sqrt(np.count_nonzero(dx, axis=1) * np.count_nonzero(dy, axis=1).astype(float))
    num = (dx * dy).sum(axis=1)
    out = np.full(x.shape[0], np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return np.clip(out, -1.0, 1.0)


def _pairwise_rows(imagined: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Concordance over pairs ordered in `real`; imagined ties count 1/2 (see pairwise_order_accuracy)."""
    ds, dr = _pair_signs(imagined), _pair_signs(real)
    counted = dr != 0
    credit = np.where(ds == dr, 1.0, np.where(ds == 0, 0.5, 0.0)) * counted
    n = counted.sum(axis=1)
    out = np.full(imagined.shape[0], np.nan)
    np.divide(credit.sum(axis=1), n, out=out, where=n > 0)
    return out


def _mmrv_rows(imagined: np.ndarray, real: np.ndarray) -> np.ndarray:
    """MMRV per row, SIMPLER's strict-comparison rule (see `mmrv`), over a [B, N, N] pair cube."""
    flips = (imagined[:, :, None] > imagined[:, None, :]) != (real[:, :, None] > real[:, None, :])
    gaps = np.abs(real[:, :, None] - real[:, None, :])
    return np.where(flips, gaps, 0.0).max(axis=2).mean(axis=1)


def _all_rows(imagined: np.ndarray, real: np.ndarray) -> dict[str, np.ndarray]:
    """Every fidelity statistic for each row of [B, N] imagined / real rates."""
    return {
        "pearson": _pearson_rows(imagined, real),
        "spearman": _spearman_rows(imagined, real),
        "kendall": _kendall_b_rows(imagined, real),
        "mmrv": _mmrv_rows(imagined, real),
        "pairwise_accuracy": _pairwise_rows(imagined, real),
    }


# --------------------------------------------------------------------------------------------------
# Episodes -> fidelity block with bootstrap CIs
# --------------------------------------------------------------------------------------------------


def ranking_fidelity(
    imagined_episodes: Mapping[str, np.ndarray],
    real_episodes: Mapping[str, np.ndarray],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    shared_starts: bool = True,
) -> dict[str, Any]:
    """Fidelity of the imagined policy ranking, with 95% BCa bootstrap CIs, from per-episode outcomes.

    `imagined_episodes[name][k]` and `real_episodes[name][k]` are policy `name`'s outcome (0/1 or graded
    in [0, 1]) from the SAME start state k in the two worlds. Policies are reported in the order of
    `real_episodes`.

    `shared_starts` (the design of `wmeval rank`): start state k is also the same for EVERY policy, so the
    bootstrap draws one set of start-state indices per resample and applies it to every policy in both
    worlds (a paired bootstrap). An easy start state then lifts every policy in the same resample, as it
    did in the experiment, instead of being counted independently per policy; with the same `seed` and
    episode count, every world model is scored on the same draws. Episode counts must then be equal.
    Without it (recorded behaviours, whose episodes differ per policy) each policy is resampled on its
    own, still with one draw for both worlds. Intervals are BCa (`wmeval.metrics.bootstrap`), over the
    resamples where a statistic is defined (`nan` ones, e.g. all rates equal, are dropped); `[nan, nan]`
    if the point value or every resample is undefined, or if `n_boot == 0`. Same seed, same numbers.
    """
    names = _validate_episodes(imagined_episodes, real_episodes)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 0:
        raise RankingInputError(f"n_boot={n_boot!r} must be a non-negative integer (1000 is typical)")
    imagined = [np.asarray(imagined_episodes[n], dtype=float) for n in names]
    real = [np.asarray(real_episodes[n], dtype=float) for n in names]
    counts = sorted({a.size for a in real})
    if shared_starts and len(counts) > 1:
        raise RankingInputError(
            f"shared_starts=True needs the same episodes for every policy, got counts {counts}: "
            "roll every policy from the same start states, or pass shared_starts=False"
        )

    s = np.array([a.mean() for a in imagined])
    r = np.array([a.mean() for a in real])
    point = {k: float(v[0]) for k, v in _all_rows(s[None], r[None]).items()}

    if n_boot > 0:
        boot_rates = resample_rates(imagined, real, n_boot, np.random.default_rng(seed), shared_starts)
        boot = _all_rows(*boot_rates)
        jack = [_all_rows(js, jr) for js, jr in jackknife_rates(imagined, real, shared_starts)]
        ci = {k: bca_interval(point[k], boot[k], [j[k] for j in jack]) for k in CI_STATS}
    else:
        ci = {k: [math.nan, math.nan] for k in CI_STATS}

    return {
        "policies": [
            {
                "name": n,
                "real_success": float(r[i]),
                "imagined_success": float(s[i]),
                "episodes": int(real[i].size),
            }
            for i, n in enumerate(names)
        ],
        "pearson": point["pearson"],
        "spearman": point["spearman"],
        "kendall": point["kendall"],
        "mmrv": point["mmrv"],
        "pairwise_accuracy": point["pairwise_accuracy"],
        "ci95": ci,
        "ci_method": CI_METHODS[shared_starts],
    }


#: What `ci_method` says in a fidelity block, by `shared_starts`.
CI_METHODS = {
    True: "BCa bootstrap, paired over start states (one draw shared by every policy and world)",
    False: "BCa bootstrap, episodes resampled per policy (one draw shared by both worlds)",
}


def fidelity_blocks(
    result: RankResult, names: list[str], *, n_boot: int, seed: int
) -> dict[str, dict[str, dict[str, Any]]]:
    """world model -> outcome -> ranking block over the policies `names` (a policy set, or all of them)."""
    blocks: dict[str, dict[str, dict[str, Any]]] = {}
    for wm_name, by_policy in result.imagined.items():
        blocks[wm_name] = {}
        for outcome in OUTCOMES:
            real = {p: episode_outcomes(result.real[p], outcome) for p in names}
            imagined = {p: episode_outcomes(by_policy[p], outcome) for p in names}
            block = ranking_fidelity(imagined, real, n_boot=n_boot, seed=seed)
            block["judge"] = f"{outcome}: real by {result.real_judge}; imagined by {result.judge}"
            blocks[wm_name][outcome] = block
    return blocks


def order_world_models(results: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """World-model names, most faithful first.

    Primary key: Spearman rho, descending (ranking is the job; rho is scale-free and tie-aware).
    Tie-break: MMRV, ascending (how much real success the mistakes cost). Then the name, so the order
    is deterministic. A `nan` statistic sorts after every defined value of that key.
    `results[name]` is a `ranking_fidelity` block (only "spearman" and "mmrv" are read).
    """
    for name, block in results.items():
        missing = [k for k in ("spearman", "mmrv") if k not in block]
        if missing:
            raise RankingInputError(
                f"results[{name!r}] lacks {', '.join(missing)}: pass the block ranking_fidelity returns"
            )

    def key(name: str) -> tuple[bool, float, bool, float, str]:
        rho, viol = float(results[name]["spearman"]), float(results[name]["mmrv"])
        return (math.isnan(rho), 0.0 if math.isnan(rho) else -rho, math.isnan(viol), viol, name)

    return sorted(results, key=key)


# --------------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------------


def _pair(imagined: ArrayLike, real: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    s, r = np.asarray(imagined, dtype=float), np.asarray(real, dtype=float)
    if s.ndim != 1 or r.ndim != 1:
        raise RankingInputError(
            f"success rates must be 1-D (one per policy), got shapes {s.shape} and {r.shape}"
        )
    if s.shape != r.shape:
        raise RankingInputError(
            f"imagined has {s.size} policies but real has {r.size}: pass the same policies in the same order"
        )
    if s.size < 2:
        raise RankingInputError(f"ranking needs at least 2 policies, got {s.size}: evaluate more policies")
    if not (np.isfinite(s).all() and np.isfinite(r).all()):
        raise RankingInputError("success rates must be finite: drop or re-run policies with nan rates")
    return s, r


def _validate_episodes(imagined: Mapping[str, np.ndarray], real: Mapping[str, np.ndarray]) -> list[str]:
    names = list(real)
    if set(imagined) != set(real):
        only_i = sorted(set(imagined) - set(real))
        only_r = sorted(set(real) - set(imagined))
        raise RankingInputError(
            f"policies differ between worlds (imagined only: {only_i}, real only: {only_r}): "
            "roll out the same policies in both"
        )
    if len(names) < 2:
        raise RankingInputError(
            f"ranking needs at least 2 policies, got {len(names)}: evaluate more policies"
        )
    for n in names:
        for world, arr in (("imagined", imagined[n]), ("real", real[n])):
            a = np.asarray(arr, dtype=float)
            if a.ndim != 1 or a.size == 0:
                raise RankingInputError(
                    f"{world}_episodes[{n!r}] must be a non-empty 1-D array of outcomes, got shape {a.shape}"
                )
            if not np.isfinite(a).all() or a.min() < 0.0 or a.max() > 1.0:
                raise RankingInputError(
                    f"{world}_episodes[{n!r}] must hold outcomes in [0, 1]: check the judge's output"
                )
        n_i, n_r = np.asarray(imagined[n]).size, np.asarray(real[n]).size
        if n_i != n_r:
            raise RankingInputError(
                f"policy {n!r} has {n_i} imagined and {n_r} real episodes: start states must be paired 1:1"
            )
    return names


def _is_constant(x: np.ndarray) -> bool:
    return bool(x.max() == x.min())


def _constant_rows(x: np.ndarray) -> np.ndarray:
    return x.max(axis=1) == x.min(axis=1)


def _clip_corr(value: float) -> float:
    """Guard against 1.0000000000000002 from floating-point round-off."""
    return float(np.clip(value, -1.0, 1.0))
