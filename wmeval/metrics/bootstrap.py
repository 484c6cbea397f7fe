"""Bootstrap of per-episode outcomes: resampled success rates and bias-corrected and accelerated (BCa)
intervals.

BCa follows Efron & Tibshirani, "An Introduction to the Bootstrap" (1993), section 14.3, with the
multi-sample acceleration of eq. 15.36 — the same formulas as `scipy.stats.bootstrap(method="BCa")`, which the tests
use as the oracle. Written out here rather than called because the ranking statistics need what scipy's
driver does not offer: one index draw shared by every policy and world (paired across many samples of
a 2-D layout), and resamples where a statistic is undefined (`nan`, e.g. every rate equal) dropped
rather than poisoning the interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import ndtr, ndtri

#: Cap on bootstrap index-array elements drawn at once, so 10k-episode policies stay within memory.
_MAX_DRAW = 4_000_000
#: Relative (and absolute) tolerance under which a resampled statistic counts as tied with the point value.
_TIE_RTOL = 1e-9


def bca_interval(
    theta_hat: float,
    boot: np.ndarray,
    jackknife: Sequence[np.ndarray],
    *,
    confidence: float = 0.95,
) -> list[float]:
    """[lo, hi] BCa interval for a statistic with point value `theta_hat`.

    `boot`: the statistic on each bootstrap resample. `jackknife`: one array per independently resampled
    sample, the statistic with each of that sample's units left out in turn (a single array when every
    unit is resampled jointly). `nan` values are dropped from both; `[nan, nan]` when `theta_hat` or every
    resample is undefined. z0 counts resamples tied with `theta_hat` (to rounding) as half below (as scipy does), which
    matters for a rank statistic over a handful of policies, and is clipped to the resolution of the
    resamples so that it stays finite; the acceleration is 0 when the jackknife has no spread.
    """
    finite = boot[~np.isnan(boot)]
    if math.isnan(theta_hat) or finite.size == 0:
        return [math.nan, math.nan]
    # Ties within a few ulps count as ties: resampled means that equal `theta_hat` in exact arithmetic may
    # differ from it in the last bit depending on summation order, which would otherwise flip z0.
    tied = np.isclose(finite, theta_hat, rtol=_TIE_RTOL, atol=_TIE_RTOL)
    below = (np.count_nonzero((finite < theta_hat) & ~tied) + 0.5 * np.count_nonzero(tied)) / finite.size
    half_step = 0.5 / finite.size
    z0 = float(ndtri(min(max(below, half_step), 1.0 - half_step)))

    nums, dens = 0.0, 0.0
    for values in jackknife:
        values = values[~np.isnan(values)]
        n = values.size
        if n < 2:
            continue
        u = (n - 1) * (values.mean() - values)
        nums += float(np.sum(u**3)) / n**3
        dens += float(np.sum(u**2)) / n**2
    accel = nums / (6.0 * dens**1.5) if dens > 0 else 0.0

    alpha = (1.0 - confidence) / 2.0
    levels = []
    for z_alpha in (ndtri(alpha), ndtri(1.0 - alpha)):
        z = z0 + z_alpha
        levels.append(float(ndtr(z0 + z / (1.0 - accel * z))))
    lo, hi = np.percentile(finite, [100.0 * levels[0], 100.0 * levels[1]])
    return [float(lo), float(hi)]


def resample_rates(
    imagined: list[np.ndarray],
    real: list[np.ndarray],
    n_boot: int,
    rng: np.random.Generator,
    shared_starts: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """[n_boot, N] bootstrap success rates of N policies in two worlds (see `ranking_fidelity`)."""
    draw = _resample_shared if shared_starts else _resample_per_policy
    return draw(imagined, real, n_boot, rng)


def _resample_shared(
    imagined: list[np.ndarray], real: list[np.ndarray], n_boot: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """[n_boot, N] resampled rates; one start-state draw per resample serves every policy and world."""
    a_s, a_r = np.stack(imagined), np.stack(real)  # [N, n_ep]
    n_ep = a_r.shape[1]
    boot_s = np.empty((n_boot, len(real)))
    boot_r = np.empty((n_boot, len(real)))
    chunk = max(1, _MAX_DRAW // (n_ep * len(real)))
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n_ep, size=(stop - start, n_ep))
        boot_s[start:stop] = a_s[:, idx].mean(axis=2).T
        boot_r[start:stop] = a_r[:, idx].mean(axis=2).T
    return boot_s, boot_r


def _resample_per_policy(
    imagined: list[np.ndarray], real: list[np.ndarray], n_boot: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """[n_boot, N] resampled rates; one index draw per policy serves both worlds."""
    boot_s = np.empty((n_boot, len(real)))
    boot_r = np.empty((n_boot, len(real)))
    for p, (a_s, a_r) in enumerate(zip(imagined, real, strict=True)):
        n_ep = a_r.size
        chunk = max(1, _MAX_DRAW // n_ep)
        for start in range(0, n_boot, chunk):
            stop = min(n_boot, start + chunk)
            idx = rng.integers(0, n_ep, size=(stop - start, n_ep))
            boot_s[start:stop, p] = a_s[idx].mean(axis=1)
            boot_r[start:stop, p] = a_r[idx].mean(axis=1)
    return boot_s, boot_r


def jackknife_rates(
    imagined: list[np.ndarray], real: list[np.ndarray], shared_starts: bool
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Leave-one-out rates for BCa's acceleration: one [n, N] pair per independently resampled sample.

    Shared start states are one sample (leave start state k out of every policy); otherwise each policy
    is its own sample (leave one of its episodes out, the other policies' rates unchanged).
    """
    s = np.array([a.mean() for a in imagined])
    r = np.array([a.mean() for a in real])
    samples = [list(range(len(real)))] if shared_starts else [[p] for p in range(len(real))]
    out = []
    for members in samples:
        n = real[members[0]].size
        if n < 2:
            continue
        js, jr = np.tile(s, (n, 1)), np.tile(r, (n, 1))
        for p in members:
            js[:, p] = (imagined[p].sum() - imagined[p]) / (n - 1)
            jr[:, p] = (real[p].sum() - real[p]) / (n - 1)
        out.append((js, jr))
    return out
