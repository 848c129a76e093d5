"""The runs of a sweep and its settings: each run directory read as it stands (overrides, status,
metrics or error, learning curve), runs grouped into settings over seeds, settings ranked, and the
effect of each swept key."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from ppo.report.stats import Estimate, estimate, iqm
from ppo.rundir import FAILED_FILE, METRICS_FILE, SEED_KEY
from ppo.sweep import parse_overrides

CURVE_TAG = "episode/mean_score_100"
EXPECTED = ("expected a sweep directory whose subdirectories are runs holding .hydra/, such as the one "
            "`python -m ppo.run -m ...` prints (outputs/multirun/<date>/<time>)")

# The metrics a sweep ranks its settings by (the choices of ``train.objective``) and their titles
RANKING_METRICS = {
    "final_score": "final score",
    "best_mean_score_100": "best 100-ep mean",
    "auc": "AUC",
    "steps_to_solve": "steps to solve",
}
MINIMIZED = frozenset({"steps_to_solve"})  # fewer env steps to solve is better; the rest: higher
DEFAULT_METRIC = "final_score"  # ranks a sweep none of whose runs has finished yet
# Why the trainer writes a ranking metric as null (ppo.train.run_metrics); steps_to_solve is null for a
# run that never solved too, but that run counts as its budget (Run.value).
NULL_REASONS = {
    "final_score": "train.eval_episodes=0, no greedy evaluation",
    "best_mean_score_100": "fewer than 100 episodes",
    "auc": "no episode finished",
    "steps_to_solve": "the env has no solved score",
}


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
    error: str | None = None  # why it failed, or why its metrics.json cannot be read
    _curve: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def seed(self) -> Any:
        return self.overrides.get(SEED_KEY)

    @property
    def has_config(self) -> bool:
        """Whether Hydra composed this run (it has ``.hydra/``): an empty dir has not started."""
        return (self.path / ".hydra").is_dir()

    def setting(self, keys: Sequence[str]) -> tuple:
        return tuple(hashable_value(self.overrides.get(key)) for key in keys)

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """``(env steps, 100-episode mean score)`` from the run's event files, read once."""
        if self._curve is None:
            self._curve = read_curve(self.path)
        return self._curve

    def number(self, name: str) -> float | None:
        """The finished run's number ``name`` from metrics.json; None where it is null, absent or not
        finite (a NaN is a missing value, never a number to average)."""
        value = self.metrics.get(name) if self.status == "finished" else None
        finite = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return value if finite else None

    def value(self, metric: str) -> float | None:
        """The finished run's value of a ranking metric, None where it has none. A run that never
        solved counts as its ``budget`` in ``steps_to_solve``, unless its env has no solved score."""
        if (metric == "steps_to_solve" and self.status == "finished" and self.metrics.get(metric) is None
                and self.metrics.get("solved_score") is not None):
            return self.number("budget")
        return self.number(metric)

    def missing_reason(self, metric: str) -> str | None:
        """Why the finished run has no value of a ranking metric; None where it has one."""
        if self.status != "finished" or self.value(metric) is not None:
            return None
        written = self.metrics.get(metric)
        if written is None:
            return f"null: {NULL_REASONS[metric]}"
        return f"{json.dumps(written)} in {METRICS_FILE}"


# --------------------------------------------------------------------------------------------
# Finding and reading runs
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
    """A run's overrides, status, metrics or error, as its directory holds them. A metrics.json that
    cannot be read (being written, or cut short) leaves the run unfinished, its error saying why."""
    run = Run(path=run_dir, name=str(run_dir.relative_to(sweep_dir)) if run_dir != sweep_dir else run_dir.name)
    overrides_file = run_dir / ".hydra" / "overrides.yaml"
    if overrides_file.is_file():
        run.overrides = read_overrides(overrides_file)
    if (run_dir / FAILED_FILE).is_file():
        run.status = "failed"
        try:
            run.error = json.loads((run_dir / FAILED_FILE).read_text())["error"]
        except (OSError, ValueError, KeyError, TypeError):
            run.error = f"see {run_dir / FAILED_FILE}"
    elif (run_dir / METRICS_FILE).is_file():
        try:
            metrics = json.loads((run_dir / METRICS_FILE).read_text())
        except (OSError, ValueError) as error:
            run.error = f"{METRICS_FILE}: {error}"
        else:
            if isinstance(metrics, dict):
                run.metrics, run.status = metrics, "finished"
            else:
                run.error = f"{METRICS_FILE}: holds a JSON {type(metrics).__name__}, not an object"
    return run


def read_overrides(path: Path) -> dict[str, Any]:
    """``.hydra/overrides.yaml`` as ``{key: value}``, values typed by Hydra's override parser
    (``experiment=x`` gives key ``experiment``)."""
    return {override.key_or_group: override.value()
            for override in parse_overrides([str(line) for line in OmegaConf.load(path)])}


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
# Settings: runs that differ only in their seed
# --------------------------------------------------------------------------------------------


@dataclass
class Setting:
    """Runs that differ only in their seed."""

    values: dict[str, Any]  # varying key -> value
    runs: list[Run]

    @property
    def finished(self) -> list[Run]:
        return [run for run in self.runs if run.status == "finished"]

    def numbers(self, name: str) -> np.ndarray:
        """A number of metrics.json over the finished runs that have it (``steps_to_solve``: those that
        solved), see :meth:`Run.number`."""
        values = [run.number(name) for run in self.finished]
        return np.array([value for value in values if value is not None], dtype=float)

    def with_value(self, metric: str) -> list[Run]:
        """The finished runs that have a value of a ranking metric."""
        return [run for run in self.finished if run.value(metric) is not None]

    def values_of(self, metric: str) -> np.ndarray:
        """A ranking metric over the finished runs that have it (see :meth:`Run.value`)."""
        return np.array([run.value(metric) for run in self.with_value(metric)], dtype=float)

    def estimate(self, metric: str) -> Estimate:
        """IQM over seeds of a ranking metric with its bootstrap confidence interval."""
        return estimate([self.values_of(metric)])

    def label(self, keys: Iterable[str] | None = None) -> str:
        keys = list(self.values) if keys is None else list(keys)
        return ", ".join(f"{short_key(key)}={format_value(self.values[key])}" for key in keys) or "all runs"


def varying_keys(runs: Sequence[Run]) -> tuple[list[str], dict[str, Any]]:
    """The override keys whose value differs between runs (seed aside), in the order the runs list
    them, and the overrides every run shares."""
    keys: list[str] = []
    for run in runs:
        keys += [key for key in run.overrides if key not in keys and key != SEED_KEY]
    values = {key: {hashable_value(run.overrides.get(key)) for run in runs if run.overrides} for key in keys}
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

    def mean(values: np.ndarray, sign: float) -> float:  # missing values sort last
        return sign * float(np.mean(values)) if values.size else math.inf

    def rank(setting: Setting) -> tuple:  # best final score, then fastest to solve, then best 100-ep mean
        return (mean(setting.numbers("final_score"), -1.0), mean(setting.numbers("steps_to_solve"), 1.0),
                mean(setting.numbers("best_mean_score_100"), -1.0), setting.label())

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
    differ); :data:`DEFAULT_METRIC` where none has finished."""
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
            by_value.setdefault(hashable_value(setting.values[key]), []).append(setting)
        if all(len(group) < 2 for group in by_value.values()):
            unpooled.append(key)
            continue
        for value in sorted(by_value, key=natural_key):
            strata = [values for values in (s.values_of(metric) for s in by_value[value]) if values.size]
            effects.append(Effect(key, value, len(by_value[value]), estimate(strata)))
    return effects, unpooled


# --------------------------------------------------------------------------------------------
# Override values: as keys, in order, in words
# --------------------------------------------------------------------------------------------


def hashable_value(value: Any) -> Any:
    """An override value as a key to group by: numbers, strings, booleans and None as they are, the
    rest (lists, dicts) as their text."""
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)


def natural_key(value: Any) -> tuple:
    """Sort key of override values: numbers in numeric order, then the rest by their text."""
    return (0, value, "") if isinstance(value, (int, float)) and not isinstance(value, bool) else (1, 0, str(value))


def short_key(key: str) -> str:
    """``agent.policy_clip`` -> ``policy_clip`` for titles and legends."""
    return key.rsplit(".", 1)[-1]


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, bool) or value is None:
        return str(value).lower() if value is not None else "null"
    return str(value)
