"""ppo.report.stats on data with known answers: the interquartile mean, stratified bootstrap intervals
that cover the true IQM, the probability of improvement, and seeds' curves on one step grid. numpy
only: these run without the ``sweep`` extra (matplotlib)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ppo.report.stats import (
    BOOTSTRAP_RESAMPLES,
    bootstrap_ci,
    estimate,
    improvement,
    iqm,
    iqm_curve,
    mean_curve,
    probability_of_improvement,
    probability_of_improvement_ci,
)

# The IQM of the standard exponential distribution: the mean of x over its quantiles 0.25 to 0.75,
# 2·[(a+1)e^-a - (b+1)e^-b] with a = ln(4/3), b = ln(4).
EXPONENTIAL_IQM = 2 * ((np.log(4 / 3) + 1) * 0.75 - (np.log(4) + 1) * 0.25)


def test_iqm_is_the_mean_of_the_middle_half():
    """⌊n/4⌋ dropped at each end (scipy's trim_mean at 0.25); the mean below 4 values; along an axis."""
    assert iqm(np.array([100.0, 1, 2, 3, 4, 5, 6, -50])) == pytest.approx(3.5)  # mean of 2, 3, 4, 5
    assert iqm(np.array([1.0, 2, 9])) == pytest.approx(4.0)
    assert iqm(np.array([0.0, 1, 2, 3, 1000])) == pytest.approx(2.0)  # 5 // 4 = 1 dropped at each end
    rows = np.array([[1.0, 2, 3, 1000], [4, 4, 4, -1000]])
    np.testing.assert_allclose(iqm(rows, axis=1), [2.5, 4.0])


def test_probability_of_improvement_is_one_when_better_on_every_seed():
    """Every run of one setting beats every run of the other: 1, its interval [1, 1], and 0 the other way."""
    better, worse = np.array([10.0, 11, 12, 13, 14]), np.array([1.0, 2, 3, 4, 9.5])
    assert probability_of_improvement(better, worse) == 1.0
    assert probability_of_improvement(worse, better) == 0.0
    assert probability_of_improvement_ci(better, worse) == (1.0, 1.0)


def test_probability_of_improvement_is_one_half_between_identical_settings():
    """Equal runs tie (half each); runs drawn from one distribution come out near 0.5 with an interval
    around it; one overlapping pair is counted by hand (Mann-Whitney U / n·m)."""
    same = np.array([3.0, 1, 4, 1, 5])
    assert probability_of_improvement(same, same.copy()) == 0.5
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=30), rng.normal(size=30)
    assert 0.35 < probability_of_improvement(x, y) < 0.65
    low, high = probability_of_improvement_ci(x, y)
    assert low < 0.5 < high and high - low < 0.5
    # pairs of (2, 4) vs (1, 3): 2>1, 2<3, 4>1, 4>3 -> 3 of 4; a tie counts half
    assert probability_of_improvement(np.array([2.0, 4]), np.array([1.0, 3])) == 0.75
    assert probability_of_improvement(np.array([2.0, 4]), np.array([2.0, 5])) == pytest.approx(0.375)


def test_improvement_of_a_minimized_metric_is_being_lower():
    """With ``minimize`` the lower runs improve; an interval from 3 runs each, none below; NaN without runs."""
    fast, slow = np.array([100.0, 200, 300]), np.array([400.0, 500, 600])
    assert improvement(fast, slow, minimize=True) == (1.0, 1.0, 1.0)
    assert improvement(fast, slow)[0] == 0.0
    p, low, high = improvement(fast[:2], slow, minimize=True)
    assert p == 1.0 and np.isnan(low) and np.isnan(high)
    assert all(np.isnan(improvement(np.zeros(0), slow)))


def test_bootstrap_interval_covers_the_true_iqm_in_most_draws():
    """Draws of 100 runs from the exponential distribution (IQM 0.738, mean 1): the 95% interval holds
    the true IQM in at least 88 of 100 draws (95 measured), stays narrow, and mostly leaves out the
    mean, which an interval of the mean would aim at."""
    covered = excludes_mean = 0
    widths = []
    for draw in range(100):
        runs = np.random.default_rng(1000 + draw).exponential(size=100)
        low, high = bootstrap_ci([runs], resamples=1000, seed=draw)
        covered += low <= EXPONENTIAL_IQM <= high
        excludes_mean += not low <= 1.0 <= high
        widths.append(high - low)
    assert covered >= 88, covered
    assert np.mean(widths) < 0.45
    assert excludes_mean >= 60, excludes_mean


def test_bootstrap_is_stratified_and_deterministic():
    """Strata keep their sizes in every resample: runs of 0 and of 10 in two settings of three always
    pool to an IQM of 5, so the interval is the point; pooled as one stratum, it is not. The same
    seed gives the same interval."""
    zeros, tens = np.zeros(3), np.full(3, 10.0)
    low, high = bootstrap_ci([zeros, tens])
    assert low == high == pytest.approx(5.0)
    low, high = bootstrap_ci([np.concatenate([zeros, tens])])
    assert low < 5 < high
    runs = np.random.default_rng(3).normal(size=12)
    assert bootstrap_ci([runs], seed=4) == bootstrap_ci([runs], seed=4)
    assert BOOTSTRAP_RESAMPLES >= 1000


def test_estimate_has_no_interval_below_three_runs():
    """Two runs: the IQM (their mean) without an interval; three: an interval, here the runs' range."""
    two = estimate([np.array([1.0, 3.0])])
    assert two.iqm == 2.0 and np.isnan(two.low) and np.isnan(two.high) and two.runs == 2
    three = estimate([np.array([1.0, 2.0, 3.0])])
    assert three.iqm == 2.0 and (three.low, three.high) == (1.0, 3.0)


def test_iqm_curve_over_seeds_with_its_band():
    """Three constant curves at 1, 2, 3 on different step grids: IQM 2 over the steps all logged, band
    [1, 3]; with two seeds no band."""
    curves = [(np.array([100.0, 500, 1000]), np.full(3, 1.0)), (np.array([200.0, 1200]), np.full(2, 2.0)),
              (np.array([150.0, 900, 1100]), np.full(3, 3.0))]
    grid, center, low, high = iqm_curve(curves)
    assert grid[0] == 200 and grid[-1] == 1000
    np.testing.assert_allclose(center, 2.0)
    np.testing.assert_allclose(low, 1.0)
    np.testing.assert_allclose(high, 3.0)
    _, center, low, _ = iqm_curve(curves[:2])
    np.testing.assert_allclose(center, 1.5)
    assert np.isnan(low).all()


def test_mean_curve_averages_where_seeds_logged():
    """Two curves on overlapping ranges: over the union of their steps, the mean of those that logged
    each step, with the std where both did and 0 where one did."""
    curves = [(np.array([0.0, 100]), np.array([0.0, 100])), (np.array([50.0, 200]), np.array([10.0, 10]))]
    grid, mean, std = mean_curve(curves, points=5)  # 0, 50, 100, 150, 200
    np.testing.assert_allclose(grid, [0, 50, 100, 150, 200])
    np.testing.assert_allclose(mean, [0, 30, 55, 10, 10])
    np.testing.assert_allclose(std, [0, np.std([50, 10], ddof=1), np.std([100, 10], ddof=1), 0, 0])


def test_statistics_import_without_matplotlib_tensorboard_or_hydra():
    """ppo.report.stats needs numpy only: it imports with matplotlib blocked and loads neither
    TensorBoard nor Hydra."""
    code = ("import sys; sys.modules['matplotlib'] = None; import ppo.report.stats; "
            "print(sorted({name.split('.')[0] for name in sys.modules} & {'hydra', 'omegaconf', 'tensorboard'}))")
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
