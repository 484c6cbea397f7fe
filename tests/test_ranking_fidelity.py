"""Ranking-fidelity statistics: hand-worked values, degenerate input, argument order, bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from wmeval.metrics import bootstrap
from wmeval.ranking import fidelity as rk
from wmeval.ranking.fidelity import (
    RankingInputError,
    kendall_tau_b,
    mmrv,
    order_world_models,
    pairwise_order_accuracy,
    pearson,
    ranking_fidelity,
    spearman,
)

# ---------------------------------------------------------------------------------- hand-worked values


def test_pearson_hand_worked():
    # x - mean = [-1, 0, 1], y - mean = [-5/3, -2/3, 7/3]: r = 4 / sqrt(2 * 78/9) = 12 / sqrt(156)
    assert pearson([0, 1, 2], [0, 1, 4]) == pytest.approx(12 / math.sqrt(156))


def test_spearman_uses_average_ranks_for_ties():
    # ranks x = [1, 2.5, 2.5, 4], y = [1, 3, 2, 4] -> rho = 4.5 / sqrt(4.5 * 5) = sqrt(0.9)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(math.sqrt(0.9))


def test_kendall_tau_b_corrects_for_ties():
    # 6 pairs: 5 concordant, 0 discordant, 1 tied in x only -> 5 / sqrt((5 + 1) * 5)
    assert kendall_tau_b([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(5 / math.sqrt(30))


def test_pairwise_order_accuracy_hand_worked():
    # pairs (0,1) (0,2) (1,2): only (1,2) is flipped
    assert pairwise_order_accuracy(imagined=[0.1, 0.2, 0.3], real=[0.1, 0.3, 0.2]) == pytest.approx(2 / 3)
    # an imagined tie on a pair the real world orders earns half credit
    assert pairwise_order_accuracy(imagined=[0.5, 0.5, 0.9], real=[0.1, 0.2, 0.3]) == pytest.approx(2.5 / 3)
    # pairs tied in real are not counted: only (0,2) and (1,2) count, both right
    assert pairwise_order_accuracy(imagined=[0.9, 0.1, 0.95], real=[0.2, 0.2, 0.3]) == pytest.approx(1.0)


def test_mmrv_hand_worked_and_argument_order_pinned():
    imagined, real = [0.2, 0.6, 0.8], [0.5, 0.3, 0.4]
    # flipped pairs: (0,1) with real gap 0.2 and (0,2) with real gap 0.1; (1,2) agrees.
    # per-policy max real gap: [0.2, 0.2, 0.1] -> mean 0.5 / 3
    assert mmrv(imagined=imagined, real=real) == pytest.approx(0.5 / 3)
    # swapped, the gaps would come from the other vector: [0.6, 0.4, 0.6] -> 1.6 / 3
    assert mmrv(imagined=real, real=imagined) == pytest.approx(1.6 / 3)


def test_mmrv_ties_follow_simpler():
    # SIMPLER's rule: violation for i iff (s_i > s_j) != (r_i > r_j), gap from real.
    # Imagined tie, real ordered: policy 1 (the better real one) pays the real gap 0.4 -> mean 0.2.
    assert mmrv(imagined=[0.5, 0.5], real=[0.2, 0.6]) == pytest.approx(0.2)
    # Real tie, imagined ordered: the flip costs |r_i - r_j| = 0.
    assert mmrv(imagined=[0.2, 0.6], real=[0.5, 0.5]) == 0.0
    # A constant imagined vector is penalised by mean_i(r_i - min r).
    assert mmrv(imagined=[0.3, 0.3, 0.3], real=[0.1, 0.4, 0.7]) == pytest.approx((0 + 0.3 + 0.6) / 3)


def _simpler_mmrv(perf_sim, perf_real):
    """Direct transcription of SIMPLER's double loop, as the oracle for the vectorised version."""
    out = []
    for i in range(len(perf_sim)):
        worst = 0.0
        for j in range(len(perf_sim)):
            if (perf_sim[i] > perf_sim[j]) != (perf_real[i] > perf_real[j]):
                worst = max(worst, abs(perf_real[i] - perf_real[j]))
        out.append(worst)
    return float(np.mean(out))


def test_batched_statistics_match_scipy_and_simpler_loop():
    rng = np.random.default_rng(3)
    # coarse values so that ties are common
    s = rng.integers(0, 5, size=(40, 6)) / 4
    r = rng.integers(0, 5, size=(40, 6)) / 4
    rows = rk._all_rows(s, r)
    for b in range(s.shape[0]):
        defined = np.ptp(s[b]) > 0 and np.ptp(r[b]) > 0
        if defined:
            assert rows["pearson"][b] == pytest.approx(stats.pearsonr(s[b], r[b]).statistic)
            assert rows["spearman"][b] == pytest.approx(stats.spearmanr(s[b], r[b]).statistic)
            assert rows["kendall"][b] == pytest.approx(stats.kendalltau(s[b], r[b]).statistic)
        else:
            assert math.isnan(rows["pearson"][b]) and math.isnan(rows["kendall"][b])
        assert rows["mmrv"][b] == pytest.approx(_simpler_mmrv(s[b], r[b]))


# ---------------------------------------------------------------------------------- degenerate input


def test_perfect_agreement():
    rates = [0.1, 0.4, 0.4, 0.9]
    assert pearson(rates, rates) == pytest.approx(1.0)
    assert spearman(rates, rates) == pytest.approx(1.0)
    assert kendall_tau_b(rates, rates) == pytest.approx(1.0)
    assert mmrv(imagined=rates, real=rates) == 0.0
    assert pairwise_order_accuracy(imagined=rates, real=rates) == 1.0


def test_reversed_order():
    real = [0.1, 0.5, 0.9]
    imagined = [0.9, 0.5, 0.1]
    assert spearman(imagined, real) == pytest.approx(-1.0)
    assert kendall_tau_b(imagined, real) == pytest.approx(-1.0)
    assert pairwise_order_accuracy(imagined=imagined, real=real) == 0.0
    assert mmrv(imagined=imagined, real=real) == pytest.approx((0.8 + 0.4 + 0.8) / 3)


def test_constant_vectors_give_nan_correlations():
    for fn in (pearson, spearman, kendall_tau_b):
        assert math.isnan(fn([0.3, 0.3, 0.3], [0.1, 0.2, 0.3]))
        assert math.isnan(fn([0.1, 0.2, 0.3], [0.5, 0.5, 0.5]))
    # np.full(7, 0.1).mean() != 0.1: round-off in the mean must not fake a spread in the batched path
    x = np.full((1, 7), 0.1)
    y = np.arange(7.0)[None]
    assert math.isnan(rk._pearson_rows(x, y)[0]) and math.isnan(rk._spearman_rows(x, y)[0])
    assert math.isnan(pairwise_order_accuracy(imagined=[0.1, 0.2], real=[0.4, 0.4]))


@pytest.mark.parametrize("fn", [pearson, spearman, kendall_tau_b])
def test_too_few_or_mismatched_policies_raise(fn):
    with pytest.raises(ValueError, match="at least 2 policies"):
        fn([0.5], [0.5])
    with pytest.raises(ValueError, match="same policies"):
        fn([0.1, 0.2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="finite"):
        fn([0.1, float("nan")], [0.1, 0.2])


def test_mmrv_is_keyword_only():
    with pytest.raises(TypeError):
        mmrv([0.1, 0.2], [0.2, 0.1])  # type: ignore[misc]
    with pytest.raises(RankingInputError, match="at least 2 policies"):
        mmrv(imagined=[0.1], real=[0.1])


# ---------------------------------------------------------------------------------- ranking_fidelity


def _episodes(seed: int = 0, n_ep: int = 60):
    rng = np.random.default_rng(seed)
    true_rates = [0.1, 0.3, 0.5, 0.7, 0.9]
    real = {f"pi{k}": (rng.random(n_ep) < p).astype(float) for k, p in enumerate(true_rates)}
    # the imagined world agrees on most paired start states and flips some outcomes
    imagined = {n: np.where(rng.random(n_ep) < 0.85, r, 1.0 - r) for n, r in real.items()}
    return imagined, real


def test_ranking_fidelity_block_schema_and_values():
    imagined, real = _episodes()
    out = ranking_fidelity(imagined, real, n_boot=200, seed=0)
    assert list(out) == [
        "policies",
        "pearson",
        "spearman",
        "kendall",
        "mmrv",
        "pairwise_accuracy",
        "ci95",
        "ci_method",
    ]
    assert "paired over start states" in out["ci_method"]
    assert list(out["ci95"]) == ["pearson", "spearman", "kendall", "mmrv"]
    assert [p["name"] for p in out["policies"]] == list(real)
    assert set(out["policies"][0]) == {"name", "real_success", "imagined_success", "episodes"}
    s = np.array([p["imagined_success"] for p in out["policies"]])
    r = np.array([p["real_success"] for p in out["policies"]])
    assert r == pytest.approx([real[n].mean() for n in real])
    assert out["pearson"] == pytest.approx(pearson(s, r))
    assert out["spearman"] == pytest.approx(spearman(s, r))
    assert out["kendall"] == pytest.approx(kendall_tau_b(s, r))
    assert out["mmrv"] == pytest.approx(mmrv(imagined=s, real=r))
    assert out["pairwise_accuracy"] == pytest.approx(pairwise_order_accuracy(imagined=s, real=r))


def test_bootstrap_ci_contains_point_and_is_deterministic():
    imagined, real = _episodes(seed=1)
    a = ranking_fidelity(imagined, real, n_boot=300, seed=7)
    b = ranking_fidelity(imagined, real, n_boot=300, seed=7)
    c = ranking_fidelity(imagined, real, n_boot=300, seed=8)
    assert a == b
    assert a["ci95"] != c["ci95"]
    for stat in ("pearson", "spearman", "kendall", "mmrv"):
        lo, hi = a["ci95"][stat]
        assert lo <= a[stat] <= hi, stat
        assert lo < hi, stat


def test_perfect_agreement_fidelity_and_paired_bootstrap():
    _, real = _episodes(seed=2)
    out = ranking_fidelity(real, real, n_boot=200, seed=0)
    assert out["pearson"] == pytest.approx(1.0)
    assert out["spearman"] == pytest.approx(1.0)
    assert out["kendall"] == pytest.approx(1.0)
    assert out["mmrv"] == 0.0
    # paired resampling: identical worlds stay identical in every resample
    assert out["ci95"]["mmrv"] == [0.0, 0.0]
    assert out["ci95"]["pearson"][0] == pytest.approx(1.0)


def test_ci_is_nan_safe():
    # every policy always fails in imagination: correlations undefined, CI [nan, nan], mmrv defined
    real = {"a": np.array([0.0, 1.0, 1.0]), "b": np.array([1.0, 1.0, 1.0])}
    imagined = {"a": np.zeros(3), "b": np.zeros(3)}
    out = ranking_fidelity(imagined, real, n_boot=50)
    assert math.isnan(out["spearman"]) and all(math.isnan(v) for v in out["ci95"]["spearman"])
    assert out["mmrv"] == pytest.approx((0 + 1 / 3) / 2)
    assert all(math.isfinite(v) for v in out["ci95"]["mmrv"])
    no_boot = ranking_fidelity(imagined, real, n_boot=0)
    assert all(math.isnan(v) for v in no_boot["ci95"]["mmrv"])


def test_ranking_fidelity_validates_input():
    imagined, real = _episodes()
    with pytest.raises(RankingInputError, match="paired"):
        ranking_fidelity({**imagined, "pi0": imagined["pi0"][:-1]}, real, n_boot=0)
    with pytest.raises(RankingInputError, match="real only"):
        ranking_fidelity({k: v for k, v in imagined.items() if k != "pi0"}, real, n_boot=0)
    with pytest.raises(RankingInputError, match=r"\[0, 1\]"):
        ranking_fidelity({**imagined, "pi0": imagined["pi0"] * 2}, real, n_boot=0)
    with pytest.raises(RankingInputError, match="at least 2 policies"):
        ranking_fidelity({"pi0": imagined["pi0"]}, {"pi0": real["pi0"]})
    with pytest.raises(RankingInputError, match="n_boot"):
        ranking_fidelity(imagined, real, n_boot=-1)


def test_bca_matches_scipy_on_the_same_draws():
    # one sample resampled as a whole: scipy.stats.bootstrap(BCa) draws rng.integers(0, n, (B, n))
    x = np.random.default_rng(4).gamma(2.0, size=40)  # skewed, so bias and acceleration matter
    n_boot = 500
    idx = np.random.default_rng(9).integers(0, x.size, size=(n_boot, x.size))
    jack = (x.sum() - x) / (x.size - 1)
    ours = bootstrap.bca_interval(float(x.mean()), x[idx].mean(axis=1), [jack])
    ref = stats.bootstrap((x,), np.mean, n_resamples=n_boot, method="BCa", rng=np.random.default_rng(9))
    assert ours == pytest.approx(list(ref.confidence_interval), rel=1e-12)
    assert ours != pytest.approx(list(np.percentile(x[idx].mean(axis=1), [2.5, 97.5])), rel=1e-6)


def test_bca_treats_last_bit_differences_from_the_point_value_as_ties():
    # a rank statistic over few policies: many resamples equal the point value exactly in exact arithmetic
    boot = np.array([0.2, 0.5, 0.5, 0.5, 0.5, 0.5, 0.7, 0.8, 0.9, 0.3] * 20)
    jack = [np.linspace(0.4, 0.6, 10)]
    exact = bootstrap.bca_interval(0.5, boot, jack)
    nudged = boot.copy()
    nudged[boot == 0.5] = np.nextafter(0.5, 0.0)  # the same resamples summed in another order
    assert bootstrap.bca_interval(0.5, nudged, jack) == pytest.approx(exact, abs=1e-12)


def _shared_difficulty_episodes(n_ep: int = 40, seed: int = 0):
    """Start states of varying difficulty shared by every policy, so outcomes correlate across policies.

    The world model misjudges each start state's difficulty the same way for every policy and swaps two
    pairs of neighbouring policies: rho is 0.886, an interior value where the interval has room both ways.
    """
    rng = np.random.default_rng(seed)
    hardness = rng.random(n_ep)
    seen = hardness + rng.normal(0, 0.3, n_ep)
    skills = [0.2, 0.32, 0.44, 0.56, 0.68, 0.8]
    skills_seen = [0.2, 0.44, 0.32, 0.56, 0.8, 0.68]
    real = {f"pi{k}": (hardness + rng.normal(0, 0.05, n_ep) < p).astype(float) for k, p in enumerate(skills)}
    imagined = {
        f"pi{k}": (seen + rng.normal(0, 0.05, n_ep) < p).astype(float) for k, p in enumerate(skills_seen)
    }
    return imagined, real


def test_paired_bootstrap_is_narrower_on_shared_start_states_and_contains_the_estimate():
    imagined, real = _shared_difficulty_episodes()
    paired = ranking_fidelity(imagined, real, n_boot=1000, seed=0)
    unpaired = ranking_fidelity(imagined, real, n_boot=1000, seed=0, shared_starts=False)
    assert paired["spearman"] == unpaired["spearman"] == pytest.approx(0.886, abs=1e-3)
    for stat in ("pearson", "spearman", "kendall", "mmrv"):
        (lo, hi), (ulo, uhi) = paired["ci95"][stat], unpaired["ci95"][stat]
        assert lo <= paired[stat] <= hi, stat
        assert ulo <= unpaired[stat] <= uhi, stat
        assert hi - lo < 0.75 * (uhi - ulo), stat
    assert "per policy" in unpaired["ci_method"]


def test_shared_starts_needs_equal_episode_counts():
    imagined, real = _episodes()
    imagined["pi0"], real["pi0"] = imagined["pi0"][:-1], real["pi0"][:-1]
    with pytest.raises(RankingInputError, match="shared_starts"):
        ranking_fidelity(imagined, real, n_boot=10)
    assert ranking_fidelity(imagined, real, n_boot=10, shared_starts=False)["policies"][0]["episodes"] == 59


def test_order_world_models():
    results = {
        "b": {"spearman": 0.9, "mmrv": 0.10},
        "a": {"spearman": 0.9, "mmrv": 0.05},
        "c": {"spearman": float("nan"), "mmrv": 0.0},
        "d": {"spearman": 0.95, "mmrv": 0.30},
        "e": {"spearman": 0.2, "mmrv": 0.0},
    }
    assert order_world_models(results) == ["d", "a", "b", "e", "c"]
    with pytest.raises(RankingInputError, match="mmrv"):
        order_world_models({"x": {"spearman": 1.0}})
