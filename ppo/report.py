"""``python -m ppo.report SWEEP_DIR``: tables, statistics and plots of a sweep, finished or still running.

Reads each run directory under ``SWEEP_DIR`` (any directory with Hydra's ``.hydra/``): its overrides
from ``.hydra/overrides.yaml``, its result from ``metrics.json`` (written when a run ends), its failure
from ``failed.json`` (see :mod:`ppo.sweep`), and its learning curve from its TensorBoard event files
with TensorBoard's own reader. Runs with the same overrides apart from ``seed`` form one *setting*.
Writes into ``SWEEP_DIR`` (or ``--out``):

* ``report.md``: the settings ranked by the interquartile mean (IQM) over seeds of one metric
  (``--metric``; default: the runs' ``train.objective``), with 95% bootstrap confidence intervals of
  the IQM of every metric and the probability that the best setting improves on each other one
  (Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical Precipice", NeurIPS
  2021); the effect of each swept key (IQM and CI over every run with each value); mean ± std over
  seeds of the final greedy score, the best 100-episode mean, the env steps to solve and the training
  seconds; then the failed and unfinished runs;
* ``report.csv``: the settings, one column per number; ``runs.csv``: one row per run;
* ``sample_efficiency.png``: the IQM over seeds of the 100-episode mean score against env steps with
  its CI band, one line per setting, in small multiples over the swept values;
* ``effects.png``: the IQM and CI of the ranking metric at each value of each swept key;
* ``learning_curves.png``: the same curves as mean ± std over seeds;
* ``final_score.png``: the final score (and the best 100-episode mean) of every run against each
  swept key, with the mean ± std over all runs at each value.

Only finished runs enter the numbers and plots; failed runs are listed with their error, and runs
without a result (still running, killed, or not started) with how far they got. A directory that
holds no sweep runs is refused (:class:`NotASweepError`) before anything is written.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ppo.sweep import FAILED

METRICS_FILE = "metrics.json"
CURVE_TAG = "episode/mean_score_100"
SEED_KEY = "seed"
MAX_LEGEND_ENTRIES = 10
EXPECTED = ("expected a sweep directory whose subdirectories are runs holding .hydra/, such as the one "
            "`python -m ppo.run -m ...` prints (outputs/multirun/<date>/<time>)")

# (metrics.json key, column title) of the numbers the mean ± std table aggregates over seeds
COLUMNS = (
    ("final_score", "final score"),
    ("best_mean_score_100", "best 100-ep mean"),
    ("steps_to_solve", "steps to solve"),
    ("train_seconds", "train seconds"),
)
# The metrics a sweep ranks its settings by (the choices of ``train.objective``) and their titles
RANKING_METRICS = {
    "final_score": "final score",
    "best_mean_score_100": "best 100-ep mean",
    "auc": "AUC",
    "steps_to_solve": "steps to solve",
}
MINIMIZED = frozenset({"steps_to_solve"})  # fewer env steps to solve is better; the rest: higher
DEFAULT_METRIC = "final_score"  # for runs whose metrics.json names no objective

# Bootstrap confidence intervals. With n seeds a 95% percentile interval covers the true IQM of
# normally distributed scores in about 50% of draws for n=2 (the interval is the two seeds' range),
# 75% for n=3, 88% for n=4, 89% for n=5 and 93% for n=10 (measured with 400 draws each): below 3
# seeds an interval says nothing, so it is shown as n/a; from 3 it is shown with that caveat.
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0  # the intervals are a deterministic function of the runs
MIN_SEEDS_FOR_CI = 3
SEEDS_FOR_NOMINAL_CI = 10
CITATION = ("R. Agarwal, M. Schwarzer, P. S. Castro, A. Courville, M. G. Bellemare, \"Deep Reinforcement "
            "Learning at the Edge of the Statistical Precipice\", NeurIPS 2021 "
            "(https://arxiv.org/abs/2108.13264), as in its library rliable "
            "(https://github.com/google-research/rliable)")


class NotASweepError(ValueError):
    """The report's directory holds no sweep runs (missing, empty, or a single run's own directory)."""


@dataclass
class Run:
    """One run directory of a sweep."""

    path: Path
    name: str  # path relative to the sweep dir: the run's overrides
    overrides: dict[str, Any] = field(default_factory=dict)  # key (``agent.lr``) -> value
    status: str = "unfinished"  # finished | failed | unfinished
    metrics: dict[str, Any] | None = None
    error: str | None = None
    _curve: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def seed(self) -> Any:
        return self.overrides.get(SEED_KEY)

    @property
    def has_config(self) -> bool:
        """Whether Hydra composed this run (it has ``.hydra/``): an empty dir has not started."""
        return (self.path / ".hydra").is_dir()

    def setting(self, keys: Sequence[str]) -> tuple:
        return tuple(_hashable(self.overrides.get(key)) for key in keys)

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """``(env steps, 100-episode mean score)`` from the run's event files, read once."""
        if self._curve is None:
            self._curve = read_curve(self.path)
        return self._curve

    @property
    def budget(self) -> int | None:
        """The run's env-step budget: ``budget`` in metrics.json, else (older runs) ``global_step``."""
        return self.metrics.get("budget", self.metrics.get("global_step")) if self.metrics else None

    def value(self, metric: str) -> float | None:
        """The finished run's value of a ranking metric, None where it has none. A run that never
        solved counts as its :attr:`budget` in ``steps_to_solve``, unless its env has no solved score
        (``solved_score`` null); a run whose metrics.json lacks ``auc`` gets it from its curve."""
        if self.status != "finished":
            return None
        value = self.metrics.get(metric)
        if metric == "steps_to_solve" and value is None:
            has_solved_score = self.metrics.get("solved_score", True) is not None  # absent: older runs
            value = self.budget if has_solved_score else None
        elif metric == "auc" and value is None:
            steps, scores = self.curve()
            value = curve_auc(steps, scores, self.budget) if steps.size else None
        return _finite(value)

    def auc_from_curve(self) -> bool:
        return self.status == "finished" and self.metrics.get("auc") is None and self.value("auc") is not None


# --------------------------------------------------------------------------------------------
# READ
# --------------------------------------------------------------------------------------------


def find_runs(sweep_dir: str | Path) -> list[Run]:
    """Every run under ``sweep_dir``: directories holding ``.hydra/``, and directories that hold
    nothing yet (a run that has not written anything), sorted by name."""
    sweep_dir = Path(sweep_dir)
    run_dirs = {path.parent for path in sweep_dir.rglob(".hydra") if path.is_dir()}
    run_dirs |= {path for path in sweep_dir.iterdir()
                 if path.is_dir() and not path.name.startswith(".") and not any(path.iterdir())}
    runs = [read_run(path, sweep_dir) for path in run_dirs]
    return sorted(runs, key=lambda run: run.name)


def find_sweep_runs(sweep_dir: str | Path) -> list[Run]:
    """:func:`find_runs` of a directory that holds sweep runs; :class:`NotASweepError` for a missing
    directory, one without runs, or a single run's own directory."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.exists():
        raise NotASweepError(f"{sweep_dir} does not exist; {EXPECTED}")
    if not sweep_dir.is_dir():
        raise NotASweepError(f"{sweep_dir} is not a directory; {EXPECTED}")
    if (sweep_dir / ".hydra").is_dir():
        raise NotASweepError(f"{sweep_dir} is a single run (it holds .hydra/ itself; its result is in its "
                             f"{METRICS_FILE}), not a sweep; {EXPECTED}")
    runs = find_runs(sweep_dir)
    if not any(run.has_config for run in runs):
        raise NotASweepError(f"{sweep_dir} holds no runs; {EXPECTED}")
    return runs


def read_run(run_dir: Path, sweep_dir: Path) -> Run:
    """A run's overrides, status, metrics or error, as its directory says now."""
    run = Run(path=run_dir, name=str(run_dir.relative_to(sweep_dir)) if run_dir != sweep_dir else run_dir.name)
    overrides_file = run_dir / ".hydra" / "overrides.yaml"
    if overrides_file.is_file():
        run.overrides = parse_overrides(overrides_file)
    if (run_dir / FAILED).is_file():
        run.status = "failed"
        try:
            run.error = json.loads((run_dir / FAILED).read_text())["error"]
        except (OSError, ValueError, KeyError):
            run.error = f"see {run_dir / FAILED}"
    elif (run_dir / METRICS_FILE).is_file():
        try:
            run.metrics = json.loads((run_dir / METRICS_FILE).read_text())
            run.status = "finished"
        except (OSError, ValueError):  # being written right now
            pass
    return run


def parse_overrides(path: Path) -> dict[str, Any]:
    """``.hydra/overrides.yaml`` as ``{key: value}``, values typed by Hydra's override parser
    (``experiment=x`` gives key ``experiment``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    lines = [str(line) for line in OmegaConf.load(path)]
    return {override.key_or_group: override.value() for override in OverridesParser.create().parse_overrides(lines)}


def read_curve(run_dir: Path, tag: str = CURVE_TAG) -> tuple[np.ndarray, np.ndarray]:
    """``(env steps, values)`` of a scalar tag in a run's TensorBoard event files (empty if absent)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})  # 0: keep every point
    accumulator.Reload()
    if tag not in accumulator.Tags()["scalars"]:
        return np.zeros(0), np.zeros(0)
    events = accumulator.Scalars(tag)
    return np.array([e.step for e in events], dtype=float), np.array([e.value for e in events], dtype=float)


# --------------------------------------------------------------------------------------------
# AGGREGATE
# --------------------------------------------------------------------------------------------


@dataclass
class Setting:
    """Runs that differ only in their seed."""

    values: dict[str, Any]  # varying key -> value
    runs: list[Run]

    @property
    def finished(self) -> list[Run]:
        return [run for run in self.runs if run.status == "finished"]

    def metric(self, name: str) -> np.ndarray:
        """The metric over the finished runs that have it (``steps_to_solve``: those that solved)."""
        values = [run.metrics.get(name) for run in self.finished]
        return np.array([v for v in values if v is not None], dtype=float)

    def values_of(self, metric: str) -> np.ndarray:
        """A ranking metric over the finished runs (see :meth:`Run.value`)."""
        values = [run.value(metric) for run in self.finished]
        return np.array([v for v in values if v is not None], dtype=float)

    def estimate(self, metric: str) -> Estimate:
        """IQM over seeds of a ranking metric with its bootstrap confidence interval."""
        return estimate([self.values_of(metric)])

    def label(self, keys: Iterable[str] | None = None) -> str:
        keys = list(self.values) if keys is None else list(keys)
        return ", ".join(f"{_short(key)}={_format_value(self.values[key])}" for key in keys) or "all runs"


def varying_keys(runs: Sequence[Run]) -> tuple[list[str], dict[str, Any]]:
    """The override keys whose value differs between runs (seed aside), in the order the runs list
    them, and the overrides every run shares."""
    keys: list[str] = []
    for run in runs:
        keys += [key for key in run.overrides if key not in keys and key != SEED_KEY]
    values = {key: {_hashable(run.overrides.get(key)) for run in runs if run.overrides} for key in keys}
    varying = [key for key in keys if len(values[key]) > 1]
    common = {key: next(iter(values[key])) for key in keys if len(values[key]) == 1}
    return varying, common


def group_settings(runs: Sequence[Run], keys: Sequence[str]) -> list[Setting]:
    """Runs that Hydra composed grouped by their values of ``keys``, best mean final score first."""
    groups: dict[tuple, Setting] = {}
    for run in runs:
        if not run.has_config:
            continue
        setting = groups.setdefault(run.setting(keys), Setting({k: run.overrides.get(k) for k in keys}, []))
        setting.runs.append(run)

    def rank(setting: Setting) -> tuple:  # best final score, then fastest to solve, then best 100-ep mean
        scores, solve_steps = setting.metric("final_score"), setting.metric("steps_to_solve")
        best_means = setting.metric("best_mean_score_100")
        return (-_mean(scores) if scores.size else math.inf, _mean(solve_steps) if solve_steps.size else math.inf,
                -_mean(best_means) if best_means.size else math.inf, setting.label())

    return sorted(groups.values(), key=rank)


def rank_settings(settings: Sequence[Setting], metric: str) -> list[Setting]:
    """Settings by the IQM of ``metric``, best first (lowest for ``steps_to_solve``); ties broken by
    the other ranking metrics in turn, settings without a value last."""
    order = [metric, *(name for name in RANKING_METRICS if name != metric)]

    def rank(setting: Setting) -> tuple:
        iqms = [float(iqm(values)) if values.size else math.nan for values in map(setting.values_of, order)]
        return (*(math.inf if math.isnan(value) else value if name in MINIMIZED else -value
                  for name, value in zip(order, iqms)), setting.label())

    return sorted(settings, key=rank)


def objective_of(runs: Sequence[Run]) -> str:
    """The ranking metric the finished runs name as their ``objective`` (the most common, should they
    differ), else ``final_score``."""
    names = Counter(run.metrics.get("objective") for run in runs if run.status == "finished")
    names = [(count, name) for name, count in names.items() if name in RANKING_METRICS]
    return max(names)[1] if names else DEFAULT_METRIC


@dataclass
class Effect:
    """The IQM of a metric over every run with one value of a swept key, all other keys pooled."""

    key: str
    value: Any
    settings: int
    estimate: Estimate


def key_effects(settings: Sequence[Setting], keys: Sequence[str], metric: str) -> tuple[list[Effect], list[str]]:
    """Per swept key and value, the IQM of ``metric`` over all runs with that value, with a bootstrap
    interval stratified by setting; and the keys left out because each of their values is a single
    setting (the only swept key, or a search), so there is nothing to pool."""
    effects, unpooled = [], []
    for key in keys:
        by_value: dict[Any, list[Setting]] = {}
        for setting in settings:
            by_value.setdefault(_hashable(setting.values[key]), []).append(setting)
        if all(len(group) < 2 for group in by_value.values()):
            unpooled.append(key)
            continue
        for value in sorted(by_value, key=_natural_key):
            strata = [values for values in (s.values_of(metric) for s in by_value[value]) if values.size]
            effects.append(Effect(key, value, len(by_value[value]), estimate(strata)))
    return effects, unpooled


# --------------------------------------------------------------------------------------------
# STATISTICS (Agarwal et al. 2021: interquartile mean, stratified bootstrap, probability of improvement)
# --------------------------------------------------------------------------------------------


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


def improvement(best: np.ndarray, other: np.ndarray, metric: str) -> tuple[float, float, float]:
    """Probability that a run of ``best`` improves on a run of ``other`` in ``metric`` (fewer steps for
    ``steps_to_solve``), with its interval (NaN where either has fewer than :data:`MIN_SEEDS_FOR_CI`)."""
    if not best.size or not other.size:
        return math.nan, math.nan, math.nan
    sign = -1.0 if metric in MINIMIZED else 1.0
    value = float(probability_of_improvement(sign * best, sign * other))
    if min(best.size, other.size) < MIN_SEEDS_FOR_CI:
        return value, math.nan, math.nan
    return (value, *probability_of_improvement_ci(sign * best, sign * other))


def curve_auc(steps: np.ndarray, scores: np.ndarray, budget: float | None = None) -> float:
    """Time-average of a logged curve over env steps 0 to ``budget`` (default: its last step): each
    value holds over the steps since the one logged before it (the first from step 0), the last up to
    the budget. The area under the 100-episode mean score divided by the budget, as ppo.train
    computes ``auc`` from every episode (here from the once-per-update log)."""
    steps, scores = np.asarray(steps, dtype=float), np.asarray(scores, dtype=float)
    budget = float(budget) if budget else float(steps[-1])
    widths = np.diff(np.concatenate([[0.0], np.minimum(steps, budget), [budget]]))
    return float(np.dot(np.append(scores, scores[-1]), widths) / budget)


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


# --------------------------------------------------------------------------------------------
# WRITE
# --------------------------------------------------------------------------------------------


def write_report(sweep_dir: str | Path, out_dir: str | Path | None = None, metric: str | None = None
                 ) -> dict[str, Path]:
    """Write the report files for the sweep in ``sweep_dir`` into ``out_dir`` (default: the sweep dir),
    settings ranked by ``metric`` (default: the runs' objective, :func:`objective_of`), and return their
    paths by kind. Raises :class:`NotASweepError`, having written nothing, where ``sweep_dir`` holds no
    sweep runs."""
    sweep_dir = Path(sweep_dir)
    if metric is not None and metric not in RANKING_METRICS:
        raise ValueError(f"metric={metric!r} is not one of {', '.join(RANKING_METRICS)}")
    runs = find_sweep_runs(sweep_dir)
    ranking = Ranking(metric or objective_of(runs), "--metric" if metric else
                      "the runs' objective" if any(run.metrics.get("objective") for run in runs
                                                   if run.status == "finished") else "the default")
    out_dir = Path(out_dir) if out_dir is not None else sweep_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    keys, common = varying_keys(runs)
    by_mean = group_settings(runs, keys)
    ranked = rank_settings(by_mean, ranking.metric)
    effects, unpooled = key_effects(ranked, keys, ranking.metric)

    paths = {"markdown": out_dir / "report.md", "csv": out_dir / "report.csv", "runs_csv": out_dir / "runs.csv",
             "sample_efficiency": out_dir / "sample_efficiency.png", "effects": out_dir / "effects.png",
             "learning_curves": out_dir / "learning_curves.png", "final_score": out_dir / "final_score.png"}
    plotted = plot_learning_curves(ranked, keys, paths["sample_efficiency"], summary=iqm_curve,
                                   title=f"Sample efficiency: IQM over seeds, {CONFIDENCE:.0%} CI band")
    plotted |= plot_effects(effects, ranking.metric, paths["effects"])
    plotted |= plot_learning_curves(by_mean, keys, paths["learning_curves"])
    plotted |= plot_final_scores(by_mean, keys, paths["final_score"])
    paths["markdown"].write_text(markdown_report(sweep_dir, runs, by_mean, keys, common, plotted, out_dir,
                                                 ranking=ranking, ranked=ranked, effects=effects,
                                                 unpooled=unpooled))
    paths["csv"].write_text(settings_csv(ranked, keys, ranking.metric))
    paths["runs_csv"].write_text(runs_csv(runs, keys))
    return {kind: path for kind, path in paths.items() if path.exists()}


@dataclass
class Ranking:
    """The metric that ranks the settings and where it came from (for the report's wording)."""

    metric: str
    source: str  # "--metric", "the runs' objective" or "the default"

    @property
    def title(self) -> str:
        return RANKING_METRICS[self.metric]


DIGITS = {"final_score": 1, "best_mean_score_100": 1, "auc": 1, "steps_to_solve": 0}


def markdown_report(sweep_dir: Path, runs: Sequence[Run], settings: Sequence[Setting], keys: Sequence[str],
                    common: dict[str, Any], plotted: set[Path], out_dir: Path, *, ranking: Ranking,
                    ranked: Sequence[Setting], effects: Sequence[Effect], unpooled: Sequence[str]) -> str:
    """report.md: ``settings`` in the order of their mean final score, ``ranked`` by ``ranking``."""
    finished = [run for run in runs if run.status == "finished"]
    failed = [run for run in runs if run.status == "failed"]
    unfinished = [run for run in runs if run.status == "unfinished"]
    lines = [f"# Sweep report: {sweep_dir.resolve().name}", "",
             f"`{sweep_dir.resolve()}`: {len(runs)} runs, {len(finished)} finished, {len(failed)} failed, "
             f"{len(unfinished)} without a result.", ""]
    if keys:
        lines.append("Settings differ in " + ", ".join(f"`{key}`" for key in keys) + ".")
    if common:
        lines.append("Every run has " + ", ".join(f"`{key}={_format_value(value)}`" for key, value in common.items())
                     + ".")
    lines += ranking_lines(ranked, keys, ranking, finished)
    lines += effect_lines(effects, unpooled, ranking, out_dir / "effects.png" in plotted)
    if out_dir / "sample_efficiency.png" in plotted:
        lines += ["", "## Sample efficiency", "",
                  f"IQM over seeds of the 100-episode mean score (`{CURVE_TAG}`) against env steps, over the "
                  f"steps every seed of a setting logged, with its {CONFIDENCE:.0%} bootstrap band where a setting "
                  f"has at least {MIN_SEEDS_FOR_CI} seeds.", "", "![Sample efficiency](sample_efficiency.png)"]
    lines += ["", "## Mean ± std over seeds", "",
              "Best mean final score first. *final score*: mean "
              "greedy evaluation score after training; *best 100-ep mean*: best mean score of 100 consecutive "
              "training episodes; *steps to solve*: env steps until that mean first reached the env's solved "
              "score, over the seeds that reached it (solved/finished in brackets).",
              ""]
    header = [*keys, "seeds", *(title for _, title in COLUMNS)]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for setting in settings:
        cells = [_format_value(setting.values[key]) for key in keys] + [_seeds_cell(setting)]
        for name, _ in COLUMNS:
            values = setting.metric(name)
            cell = _mean_std(values, digits=0 if name == "steps_to_solve" else 1)
            if name == "steps_to_solve":
                cell += f" ({values.size}/{len(setting.finished)})"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    if len(ranked) > 1:
        top = ranked[:5]
        places = ", ".join(str(list(settings).index(setting) + 1) for setting in top)
        lines += ["", f"The top {len(top)} settings by the IQM of {ranking.title} stand at places {places} of this "
                      f"table."]
    if failed:
        lines += ["", "## Failed runs", ""]
        lines += [f"- `{run.name}`: {(run.error or '').splitlines()[0] if run.error else 'no message'} "
                  f"(`{FAILED}` in the run dir)" for run in failed]
    if unfinished:
        lines += ["", "## Runs without a result (still running, stopped, or not started)", ""]
        for run in unfinished:
            steps, _ = run.curve()
            progress = f"last logged at env step {int(steps[-1]):,}" if steps.size else "no data yet"
            lines.append(f"- `{run.name}`: {progress}")
    for path, title in ((out_dir / "learning_curves.png", "Learning curves"),
                        (out_dir / "final_score.png", "Results against each swept key")):
        if path in plotted:
            lines += ["", f"## {title}", "", f"![{title}]({path.name})"]
    return "\n".join(lines) + "\n"


def ranking_lines(ranked: Sequence[Setting], keys: Sequence[str], ranking: Ranking,
                  finished: Sequence[Run]) -> list[str]:
    """The table of settings by the IQM of the ranking metric, its method and its caveats."""
    metric, title = ranking.metric, ranking.title
    order = [metric, *(name for name in RANKING_METRICS if name != metric)]
    best = next((setting for setting in ranked if setting.values_of(metric).size), None)
    better = "lower" if metric in MINIMIZED else "higher"
    lines = ["", f"## Settings ranked by the IQM of {title}", "",
             f"Ranked by **{title}** (`{metric}`, {better} is better; chosen by {ranking.source}; "
             f"`--metric` takes any of {', '.join(f'`{name}`' for name in RANKING_METRICS)}). Each cell is the "
             f"interquartile mean (IQM: the mean of the middle half of the seeds' values; with fewer than 4 seeds "
             f"their mean) over the setting's finished seeds, with its {CONFIDENCE:.0%} confidence interval in "
             f"brackets from a percentile bootstrap over seeds ({BOOTSTRAP_RESAMPLES} resamples, seed "
             f"{BOOTSTRAP_SEED}). *P(best > this)*: the probability that a run of the first setting beats a run of "
             f"this one on {title} (the Mann-Whitney U statistic over the n·m pairs of runs, ties counting half: "
             f"0.5 is no difference, 1 is better in every pair), with a bootstrap interval that resamples both "
             f"settings' seeds. Method: {CITATION}; computed here with numpy.",
             "",
             "*final score*: mean greedy evaluation score after training; *best 100-ep mean*: best mean score of "
             "100 consecutive training episodes; *AUC*: the area under the 100-episode mean score over the run's "
             "env steps divided by its budget, its time-average, higher for faster learners even when all reach "
             "the env's maximum; *steps to solve*: env steps until the 100-episode mean first reached the env's "
             "solved score, **a run that never solved counting as its whole budget of env steps** (`budget` in "
             f"{METRICS_FILE}, `global_step` for older runs; solved/finished runs in brackets), n/a for an env "
             "without a solved score."]
    from_curve = sum(run.auc_from_curve() for run in finished)
    if from_curve:
        lines.append(f"AUC of {from_curve} run(s) whose {METRICS_FILE} lacks it is computed from their "
                     f"`{CURVE_TAG}` curve.")
    seed_counts = [len(setting.finished) for setting in ranked]
    too_few = [count for count in seed_counts if 0 < count < MIN_SEEDS_FOR_CI]
    rough = [count for count in seed_counts if MIN_SEEDS_FOR_CI <= count < SEEDS_FOR_NOMINAL_CI]
    if too_few:
        lines += ["", f"**Too few seeds for confidence intervals:** {len(too_few)} of {len(ranked)} settings have "
                      f"fewer than {MIN_SEEDS_FOR_CI} finished seeds, so their intervals read n/a: one seed has no "
                      f"spread to resample, and from two a {CONFIDENCE:.0%} bootstrap interval is the two values' "
                      f"range, which covers the true IQM about half the time. Their numbers are single draws; run "
                      f"more seeds (e.g. `seed=1,2,3,4,5`)."]
    if rough:
        counts = f"{min(rough)}" if min(rough) == max(rough) else f"{min(rough)}–{max(rough)}"
        lines += ["", f"**Intervals from {counts} seeds are rough:** a nominal {CONFIDENCE:.0%} "
                      f"interval covers the true IQM in about 75% of draws with 3 seeds (it is then the seeds' "
                      f"range), 88% with 4 or 5 and 93% with 10 (measured on normally distributed scores). More "
                      f"seeds make them trustworthy."]
    header = [*keys, "seeds", *(RANKING_METRICS[name] for name in order), "P(best > this)"]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for setting in ranked:
        cells = [_format_value(setting.values[key]) for key in keys] + [_seeds_cell(setting)]
        for name in order:
            cell = _estimate_cell(setting.estimate(name), DIGITS[name])
            if name == "steps_to_solve" and setting.finished:
                solved = sum(run.metrics.get("steps_to_solve") is not None for run in setting.finished)
                cell += f" ({solved}/{len(setting.finished)})"
            cells.append(cell)
        if setting is best:
            cells.append("(best)")
        else:
            cells.append(_probability_cell(*improvement(best.values_of(metric) if best else np.zeros(0),
                                                        setting.values_of(metric), metric)))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def effect_lines(effects: Sequence[Effect], unpooled: Sequence[str], ranking: Ranking, plotted: bool) -> list[str]:
    """The table of each swept key's values by the pooled IQM of the ranking metric."""
    if not effects and not unpooled:
        return []
    lines = ["", f"## Effect of each swept key on {ranking.title}", ""]
    if effects:
        lines += [f"Each value's IQM pools every finished run with that value of the key, over all other keys and "
                  f"seeds, with its {CONFIDENCE:.0%} interval from a bootstrap stratified by setting (each resample "
                  f"redraws the seeds within every setting).", "",
                  f"| key | value | settings | runs | {ranking.title}: IQM [{CONFIDENCE:.0%} CI] |",
                  "|---|---|---|---|---|"]
        lines += [f"| {effect.key} | {_format_value(effect.value)} | {effect.settings} | {effect.estimate.runs} | "
                  f"{_estimate_cell(effect.estimate, DIGITS[ranking.metric])} |" for effect in effects]
    if unpooled:
        lines += [""] if effects else []
        lines.append("Not pooled: " + ", ".join(f"`{key}`" for key in unpooled) + " (each of its values is a single "
                     "setting, in the table above; in a search, see the results against each swept key below).")
    if plotted:
        lines += ["", "![Effect of each swept key](effects.png)"]
    return lines


def settings_csv(settings: Sequence[Setting], keys: Sequence[str], metric: str = DEFAULT_METRIC) -> str:
    """report.csv: one row per setting in the given order; mean, std and count over seeds of the
    :data:`COLUMNS`, IQM and interval of the :data:`RANKING_METRICS`, and the probability that the
    first setting improves on each in ``metric``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    columns = [f"{name}_{stat}" for name, _ in COLUMNS for stat in ("mean", "std", "n")]
    columns += [f"{name}_{stat}" for name in RANKING_METRICS for stat in ("iqm", "ci_low", "ci_high")]
    writer.writerow([*keys, "runs", "finished", "seeds", *columns, "p_best_improves", "p_best_improves_ci_low",
                     "p_best_improves_ci_high"])
    best = next((setting for setting in settings if setting.values_of(metric).size), None)
    for setting in settings:
        row = [_csv_value(setting.values[key]) for key in keys]
        row += [len(setting.runs), len(setting.finished),
                " ".join(str(run.seed) for run in setting.finished if run.seed is not None)]
        for name, _ in COLUMNS:
            values = setting.metric(name)
            row += [_csv_number(_mean(values)), _csv_number(_std(values)), values.size]
        for name in RANKING_METRICS:
            estimate_ = setting.estimate(name)
            row += [_csv_number(estimate_.iqm), _csv_number(estimate_.low), _csv_number(estimate_.high)]
        if best is None or setting is best:
            row += ["", "", ""]
        else:
            row += [_csv_number(p) for p in improvement(best.values_of(metric), setting.values_of(metric), metric)]
        writer.writerow(row)
    return buffer.getvalue()


def runs_csv(runs: Sequence[Run], keys: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    metric_names = ["final_score", "best_mean_score_100", "auc", "steps_to_solve", "seconds_to_solve",
                    "train_seconds", "global_step", "steps_per_second"]
    writer.writerow(["run", "status", *keys, SEED_KEY, *metric_names, "error"])
    for run in runs:
        metrics = run.metrics or {}
        writer.writerow([run.name, run.status, *(_csv_value(run.overrides.get(key)) for key in keys),
                         _csv_value(run.seed), *(_csv_number(metrics.get(name)) for name in metric_names),
                         (run.error or "").splitlines()[0] if run.error else ""])
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# PLOT
# --------------------------------------------------------------------------------------------


def mean_std_band(curves: Sequence[tuple[np.ndarray, np.ndarray]]):
    """``(grid, mean, mean - std, mean + std)`` of seeds' curves (:func:`mean_curve`)."""
    grid, mean, std = mean_curve(curves)
    return grid, mean, mean - std, mean + std


def plot_learning_curves(settings: Sequence[Setting], keys: Sequence[str], path: Path,
                         summary: Callable[[list], tuple | None] = mean_std_band,
                         title: str = "Learning curves: mean ± std over seeds") -> set[Path]:
    """Small multiples of the learning curve per setting over its seeds, ``summary(curves)`` giving
    ``(grid, center, band low, band high)`` (or None: not drawn). In a full grid of three or more
    swept keys, the first two with few values make the rows and columns and the rest tell the lines
    apart; with two keys, the first makes the panels; otherwise (a search) one panel holds all.
    Returns ``{path}`` if written."""
    summaries = {id(setting): summary([run.curve() for run in setting.finished if run.curve()[0].size])
                 if any(run.curve()[0].size for run in setting.finished) else None for setting in settings}
    settings = [setting for setting in settings if summaries[id(setting)] is not None]
    if not settings:
        return set()
    plt = pyplot()
    few_values = [key for key in keys if 2 <= len(_distinct(settings, key)) <= 6]
    full_grid = len(settings) == math.prod(len(_distinct(settings, key)) for key in keys)
    facet_keys = [] if not full_grid else few_values[:2] if len(keys) >= 3 else few_values[:len(keys) - 1]
    line_keys = [key for key in keys if key not in facet_keys]
    row_values = _distinct(settings, facet_keys[0]) if len(facet_keys) == 2 else [None]
    col_values = _distinct(settings, facet_keys[-1]) if facet_keys else [None]
    if len(facet_keys) == 1 and len(col_values) > 3:  # one facet key: wrap its panels into rows
        n_cols = 3
        panels = [(None, value) for value in col_values]
        n_rows = math.ceil(len(panels) / n_cols)
    else:
        n_rows, n_cols = len(row_values), len(col_values)
        panels = [(row, col) for row in row_values for col in col_values]
    by_values = sorted(settings, key=lambda setting: [_natural_key(_hashable(setting.values[k])) for k in line_keys])
    labels = list(dict.fromkeys(setting.label(line_keys) for setting in by_values))
    colors = {label: plt.get_cmap("viridis" if len(labels) > 10 else "tab10")(
        i / max(len(labels) - 1, 1) if len(labels) > 10 else i) for i, label in enumerate(labels)}

    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.0 * n_rows), sharex=True, sharey=True,
                             squeeze=False)
    for index, (row, col) in enumerate(panels):
        ax = axes.flat[index]
        for setting in settings:
            if len(facet_keys) == 2 and _hashable(setting.values[facet_keys[0]]) != row:
                continue
            if facet_keys and _hashable(setting.values[facet_keys[-1]]) != col:
                continue
            grid, center, low, high = summaries[id(setting)]
            label = setting.label(line_keys)
            ax.plot(grid, center, color=colors[label], label=label, linewidth=1.4)
            ax.fill_between(grid, low, high, color=colors[label], alpha=0.2, linewidth=0)
        facet_values = [row, col][-len(facet_keys):] if facet_keys else []
        ax.set_title(", ".join(f"{_short(key)}={_format_value(value)}" for key, value in zip(facet_keys, facet_values)),
                     fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("env steps")
    for ax in axes[:, 0]:
        ax.set_ylabel("mean score (100 episodes)")
    if 1 < len(labels) <= MAX_LEGEND_ENTRIES:
        handles, names = _unique_legend(axes, labels)
        fig.legend(handles, names, loc="lower center", ncol=min(len(names), 4), frameon=False,
                   bbox_to_anchor=(0.5, 0.0))
        fig.suptitle(title, y=0.995)
        fig.tight_layout(rect=(0, 0.04 + 0.03 * math.ceil(len(names) / 4), 1, 0.97))
    else:
        fig.suptitle(title + (f" ({len(labels)} settings, no legend)" if len(labels) > 1 else ""), y=0.995)
        fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return {path}


SCATTER_METRICS = (("final_score", "final greedy score"), ("best_mean_score_100", "best 100-episode mean"))


def plot_final_scores(settings: Sequence[Setting], keys: Sequence[str], path: Path) -> set[Path]:
    """One panel per swept key and result (rows: the final greedy score, and the best 100-episode
    mean, which still tells settings apart when every final score is the env's maximum): each
    finished run at its value of the key (dots), and the mean ± std over all runs with that value.
    Returns ``{path}`` if written."""
    finished = [run for setting in settings for run in setting.finished]
    rows = [(name, title) for name, title in SCATTER_METRICS if any(run.metrics.get(name) is not None
                                                                    for run in finished)]
    if not rows or not keys:
        return set()
    plt = pyplot()
    fig, axes = plt.subplots(len(rows), len(keys), figsize=(4.2 * len(keys), 3.0 * len(rows) + 0.5), squeeze=False,
                             sharey="row")
    rng = np.random.default_rng(0)  # jitter, so that equal scores stay visible
    for row, (name, title) in enumerate(rows):
        runs = [run for run in finished if run.metrics.get(name) is not None]
        scores = np.array([run.metrics[name] for run in runs], dtype=float)
        for ax, key in zip(axes[row], keys):
            _scatter_against(ax, [run.overrides.get(key) for run in runs], scores, rng)
            ax.set_xlabel(key)
            ax.grid(alpha=0.3)
        axes[row, 0].set_ylabel(title)
    axes[0, 0].legend(loc="best", fontsize=8)
    fig.suptitle("Results against each swept key (all other keys and seeds pooled)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return {path}


def plot_effects(effects: Sequence[Effect], metric: str, path: Path) -> set[Path]:
    """One panel per swept key: the IQM of ``metric`` over every run with each of its values, with the
    bootstrap interval as error bars. Returns ``{path}`` if written."""
    effects = [effect for effect in effects if effect.estimate.runs]
    keys = list(dict.fromkeys(effect.key for effect in effects))
    if not keys:
        return set()
    plt = pyplot()
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.2), sharey=True, squeeze=False)
    for ax, key in zip(axes[0], keys):
        rows = [effect for effect in effects if effect.key == key]
        centers = np.array([effect.estimate.iqm for effect in rows])
        errors = np.nan_to_num(np.array([[effect.estimate.iqm - effect.estimate.low,
                                          effect.estimate.high - effect.estimate.iqm] for effect in rows]).T)
        positions = np.arange(len(rows))
        ax.errorbar(positions, centers, yerr=errors, color="black", marker="o", capsize=5, linewidth=1.4)
        ax.set_xticks(positions, [_format_value(effect.value) for effect in rows])
        ax.set_xlim(-0.5, len(rows) - 0.5)
        ax.set_xlabel(key)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(f"{RANKING_METRICS[metric]} (IQM)" + (", lower is better" if metric in MINIMIZED else ""))
    fig.suptitle(f"Effect of each swept key: IQM over all runs with the value, {CONFIDENCE:.0%} CI", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return {path}


def _scatter_against(ax, values: list, scores: np.ndarray, rng: np.random.Generator) -> None:
    """Dots of ``scores`` at ``values`` (numbers, on a log2 axis for powers such as batch sizes; or
    categories), with the mean ± std per value unless no value was tried twice (a search)."""
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric:
        x = np.array(values, dtype=float)
        log_axis = bool(np.all(x > 0) and all(float(v).is_integer() for v in values) and x.max() / x.min() >= 4)
        if log_axis:
            ax.set_xscale("log", base=2)
        distinct = np.unique(x)
        tick_labels = [_format_value(int(v) if float(v).is_integer() and log_axis else v) for v in distinct]
    else:  # categories in order of appearance
        log_axis = False
        tick_labels = list(dict.fromkeys(_format_value(v) for v in values))
        x = np.array([tick_labels.index(_format_value(v)) for v in values], dtype=float)
        distinct = np.arange(len(tick_labels))
    many = len(distinct) > 12 or len(distinct) == len(x)
    position = np.log2(x) if log_axis else x
    spread = 0.0 if many or len(distinct) < 2 else 0.08 * np.min(np.diff(np.unique(position)))
    jittered = position + rng.uniform(-spread, spread, size=x.size)
    ax.scatter(np.exp2(jittered) if log_axis else jittered, scores, s=14, alpha=0.6, color="tab:blue", label="runs")
    if not many:
        means = [scores[x == value].mean() for value in distinct]
        stds = [scores[x == value].std(ddof=1) if (x == value).sum() > 1 else 0.0 for value in distinct]
        ax.errorbar(distinct, means, yerr=stds, color="black", marker="o", capsize=4, linewidth=1.4,
                    label="mean ± std")
        ax.set_xticks(distinct, tick_labels)
    elif not numeric or log_axis:
        ax.set_xticks(distinct, tick_labels)


def mean_curve(curves: Sequence[tuple[np.ndarray, np.ndarray]], points: int = 200):
    """Seeds' curves on one step grid: mean and std where at least one seed has data (each curve is
    interpolated inside its own range only)."""
    curves = [(steps, values) for steps, values in curves if steps.size]
    grid = np.linspace(min(steps[0] for steps, _ in curves), max(steps[-1] for steps, _ in curves), points)
    stacked = np.full((len(curves), points), np.nan)
    for i, (steps, values) in enumerate(curves):
        inside = (grid >= steps[0]) & (grid <= steps[-1])
        stacked[i, inside] = np.interp(grid[inside], steps, values)
    counts = np.sum(~np.isnan(stacked), axis=0)
    mean = np.nanmean(stacked, axis=0)
    std = np.zeros(points)  # 0 where a single seed has data
    several = counts > 1
    std[several] = np.nanstd(stacked[:, several], axis=0, ddof=1)
    return grid, mean, std


def _unique_legend(axes, order: Sequence[str]):
    seen = {}
    for ax in axes.flat:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(name, handle)
    names = [name for name in order if name in seen]
    return [seen[name] for name in names], names


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


# --------------------------------------------------------------------------------------------
# FORMAT
# --------------------------------------------------------------------------------------------


def _hashable(value: Any) -> Any:
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)


def _distinct(settings: Sequence[Setting], key: str) -> list:
    return sorted({_hashable(setting.values[key]) for setting in settings}, key=_natural_key)


def _natural_key(value: Any) -> tuple:
    return (0, value, "") if isinstance(value, (int, float)) and not isinstance(value, bool) else (1, 0, str(value))


def _short(key: str) -> str:
    """``agent.policy_clip`` -> ``policy_clip`` for titles and legends."""
    return key.rsplit(".", 1)[-1]


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, bool) or value is None:
        return str(value).lower() if value is not None else "null"
    return str(value)


def _finite(value: Any) -> float | None:
    """A number from metrics.json, None for null and NaN (older runs wrote NaN)."""
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _seeds_cell(setting: Setting) -> str:
    seeds = sorted((run.seed for run in setting.finished if run.seed is not None), key=_natural_key)
    text = ", ".join(str(seed) for seed in seeds) if seeds else f"{len(setting.finished)} run(s)"
    if len(setting.finished) < len(setting.runs):
        text += f" ({len(setting.finished)}/{len(setting.runs)} finished)"
    return text


def _estimate_cell(estimate_: Estimate, digits: int) -> str:
    """``IQM [low, high]``; ``[n/a]`` where too few runs for an interval; ``—`` without runs."""
    if not estimate_.runs:
        return "—"
    interval = "n/a" if math.isnan(estimate_.low) else f"{estimate_.low:,.{digits}f}, {estimate_.high:,.{digits}f}"
    return f"{estimate_.iqm:,.{digits}f} [{interval}]"


def _probability_cell(probability: float, low: float, high: float) -> str:
    if math.isnan(probability):
        return "—"
    return f"{probability:.2f} [{'n/a' if math.isnan(low) else f'{low:.2f}, {high:.2f}'}]"


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if values.size else math.nan


def _std(values: np.ndarray) -> float:
    """Sample std (ddof 1) over seeds; NaN for fewer than two."""
    return float(np.std(values, ddof=1)) if values.size > 1 else math.nan


def _mean_std(values: np.ndarray, digits: int) -> str:
    if not values.size:
        return "—"
    mean = f"{_mean(values):,.{digits}f}"
    return mean if values.size == 1 else f"{mean} ± {_std(values):,.{digits}f}"


def _csv_value(value: Any) -> Any:
    return "" if value is None else value if isinstance(value, (int, float, str)) else str(value)


def _csv_number(value: Any) -> Any:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ppo.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a sweep directory (e.g. outputs/multirun/<date>/<time>)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the report (default: the sweep dir)")
    parser.add_argument("--metric", choices=list(RANKING_METRICS), default=None,
                        help="the metric that ranks the settings (default: the runs' objective in metrics.json, "
                             f"else {DEFAULT_METRIC}); steps_to_solve is minimized, the others maximized")
    args = parser.parse_args(argv)
    try:
        paths = write_report(args.sweep_dir, args.out, args.metric)
    except NotASweepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    runs = find_runs(args.sweep_dir)
    counts = {status: sum(run.status == status for run in runs) for status in ("finished", "failed", "unfinished")}
    print(f"{len(runs)} runs: {counts['finished']} finished, {counts['failed']} failed, "
          f"{counts['unfinished']} without a result")
    for path in paths.values():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
