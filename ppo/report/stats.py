"""Statistics over seeds, with numpy only: the interquartile mean (IQM), stratified bootstrap confidence
intervals and the probability of improvement of Agarwal et al., "Deep Reinforcement Learning at the Edge
of the Statistical Precipice" (NeurIPS 2021), as in its library rliable; and seeds' learning curves
averaged on one step grid."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# Bootstrap confidence intervals. With n seeds a 95% percentile interval covers the true IQM of
# normally distributed scores in about 50% of draws for n=2 (the interval is the two seeds' range),
# 75% for n=3, 88% for n=4, 89% for n=5 and 93% for n=10 (measured with 400 draws each): below 3
# seeds an interval says nothing, so it is shown as n/a; from 3 it is shown with that caveat.
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0  # the intervals are a deterministic function of the runs
MIN_SEEDS_FOR_CI = 3
SEEDS_FOR_NOMINAL_CI = 10


def iqm(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean along ``axis``: the mean of the scores left after dropping the lowest and the
    highest ⌊n/4⌋ (``scipy.stats.trim_mean(scores, 0.25)``, rliable's IQM). With fewer than 4 scores it
    is their mean. Robust to a single outlying seed, yet uses half the runs (the median uses one)."""
    scores = np.sort(np.asarray(scores, dtype=float), axis=axis)
    n = scores.shape[axis]
    cut = n // 4
    return np.take(scores, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


def bootstrap_ci(strata: Sequence[np.ndarray], statistic: Callable[..., np.ndarray] = iqm,
                 confidence: float = CONFIDENCE, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Percentile confidence interval of ``statistic`` over the pooled runs by a stratified bootstrap:
    each resample draws every stratum's runs with replacement, as many as it holds, and pools them.

    ``strata``: arrays of shape ``(runs, *point)`` (a number per run, or a curve per run on a shared step
    grid); ``statistic(pooled, axis=1)`` reduces ``(resamples, runs, *point)`` over runs. Returns
    ``(low, high)`` of shape ``point``. Deterministic given ``seed``."""
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([np.asarray(stratum, dtype=float)[rng.integers(0, len(stratum), (resamples, len(stratum)))]
                             for stratum in strata], axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(statistic(pooled, axis=1), [tail, 100 - tail], axis=0)
    return low, high


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + P(X = Y)/2 for a random run X of one setting and Y of another: the Mann-Whitney U
    statistic divided by n·m (rliable's probability of improvement). 1: every run of ``x`` beats
    every run of ``y``; 0.5: neither tends to be better. Leading axes are batch axes."""
    x, y = np.asarray(x, dtype=float)[..., :, None], np.asarray(y, dtype=float)[..., None, :]
    return ((x > y) + 0.5 * (x == y)).mean(axis=(-2, -1))


def probability_of_improvement_ci(x: np.ndarray, y: np.ndarray, confidence: float = CONFIDENCE,
                                  resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
                                  ) -> tuple[float, float]:
    """Percentile interval of :func:`probability_of_improvement` by resampling the runs of ``x`` and of
    ``y`` independently (rliable's stratified independent bootstrap)."""
    rng = np.random.default_rng(seed)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    x_resamples = x[rng.integers(0, x.size, (resamples, x.size))]
    y_resamples = y[rng.integers(0, y.size, (resamples, y.size))]
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(probability_of_improvement(x_resamples, y_resamples), [tail, 100 - tail])
    return float(low), float(high)


@dataclass
class Estimate:
    """An IQM over runs with its bootstrap confidence interval (``low``/``high`` NaN when too few runs)."""

    iqm: float
    low: float
    high: float
    runs: int


def estimate(strata: Sequence[np.ndarray]) -> Estimate:
    """IQM of the pooled runs of ``strata`` and its interval (:func:`bootstrap_ci`); the interval is
    n/a (NaN) below :data:`MIN_SEEDS_FOR_CI` runs. A stratum of a single run cannot be resampled within
    itself, so where any has fewer than two, the pooled runs are resampled as one stratum."""
    strata = [np.asarray(stratum, dtype=float) for stratum in strata if len(stratum)]
    if not strata:
        return Estimate(math.nan, math.nan, math.nan, 0)
    pooled = np.concatenate(strata)
    if pooled.size < MIN_SEEDS_FOR_CI:
        return Estimate(float(iqm(pooled)), math.nan, math.nan, pooled.size)
    low, high = bootstrap_ci(strata if min(len(stratum) for stratum in strata) >= 2 else [pooled])
    return Estimate(float(iqm(pooled)), float(low), float(high), pooled.size)


def improvement(best: np.ndarray, other: np.ndarray, minimize: bool = False) -> tuple[float, float, float]:
    """Probability that a run of ``best`` improves on a run of ``other`` (is lower, with ``minimize``),
    with its interval (NaN where either has fewer than :data:`MIN_SEEDS_FOR_CI` runs); all NaN where
    either has none."""
    if not best.size or not other.size:
        return math.nan, math.nan, math.nan
    sign = -1.0 if minimize else 1.0
    value = float(probability_of_improvement(sign * best, sign * other))
    if min(best.size, other.size) < MIN_SEEDS_FOR_CI:
        return value, math.nan, math.nan
    return (value, *probability_of_improvement_ci(sign * best, sign * other))


def iqm_curve(curves: Sequence[tuple[np.ndarray, np.ndarray]], points: int = 100):
    """Seeds' curves on one step grid over the steps every seed logged: ``(grid, IQM, low, high)`` with
    the bootstrap band (NaN with fewer than :data:`MIN_SEEDS_FOR_CI` seeds); None without a shared range."""
    curves = [(steps, values) for steps, values in curves if steps.size]
    if not curves:
        return None
    start, end = max(steps[0] for steps, _ in curves), min(steps[-1] for steps, _ in curves)
    if end <= start:
        return None
    grid = np.linspace(start, end, points)
    stacked = np.stack([np.interp(grid, steps, values) for steps, values in curves])
    if len(curves) < MIN_SEEDS_FOR_CI:
        return grid, iqm(stacked, axis=0), np.full(points, np.nan), np.full(points, np.nan)
    return (grid, iqm(stacked, axis=0), *bootstrap_ci([stacked]))


def mean_curve(curves: Sequence[tuple[np.ndarray, np.ndarray]], points: int = 200):
    """Seeds' curves on one step grid: ``(grid, mean, std)`` where at least one seed has data (each curve
    is interpolated inside its own range only; std 0 where a single seed has data)."""
    curves = [(steps, values) for steps, values in curves if steps.size]
    grid = np.linspace(min(steps[0] for steps, _ in curves), max(steps[-1] for steps, _ in curves), points)
    stacked = np.full((len(curves), points), np.nan)
    for i, (steps, values) in enumerate(curves):
        inside = (grid >= steps[0]) & (grid <= steps[-1])
        stacked[i, inside] = np.interp(grid[inside], steps, values)
    counts = np.sum(~np.isnan(stacked), axis=0)
    mean = np.nanmean(stacked, axis=0)
    std = np.zeros(points)
    several = counts > 1
    std[several] = np.nanstd(stacked[:, several], axis=0, ddof=1)
    return grid, mean, std


def mean_std_band(curves: Sequence[tuple[np.ndarray, np.ndarray]]):
    """``(grid, mean, mean - std, mean + std)`` of seeds' curves (:func:`mean_curve`)."""
    grid, mean, std = mean_curve(curves)
    return grid, mean, mean - std, mean + std
