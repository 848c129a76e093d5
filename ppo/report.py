"""``python -m ppo.report SWEEP_DIR``: a table and plots of a sweep, finished or still running.

Reads each run directory under ``SWEEP_DIR`` (any directory with Hydra's ``.hydra/``): its overrides
from ``.hydra/overrides.yaml``, its result from ``metrics.json`` (written when a run ends), its failure
from ``failed.json`` (see :mod:`ppo.sweep`), and its learning curve from its TensorBoard event files
with TensorBoard's own reader. Runs with the same overrides apart from ``seed`` form one *setting*.
Writes into ``SWEEP_DIR`` (or ``--out``):

* ``report.md``: per setting, mean ± std over seeds of the final greedy score, the best 100-episode
  mean, the env steps to solve and the training seconds; then the failed and unfinished runs;
* ``report.csv``: the same table, one column per number; ``runs.csv``: one row per run;
* ``learning_curves.png``: the 100-episode mean score against env steps, one line per setting with a
  band of ± one std over its seeds, in small multiples over the swept values;
* ``final_score.png``: the final score (and the best 100-episode mean) of every run against each
  swept key, with the mean ± std over all runs at each value.

Only finished runs enter the numbers and plots; failed runs are listed with their error, and runs
without a result (still running, killed, or not started) with how far they got.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ppo.sweep import FAILED

METRICS_FILE = "metrics.json"
CURVE_TAG = "episode/mean_score_100"
SEED_KEY = "seed"
MAX_LEGEND_ENTRIES = 10

# (metrics.json key, column title) of the numbers the report aggregates over seeds
COLUMNS = (
    ("final_score", "final score"),
    ("best_mean_score_100", "best 100-ep mean"),
    ("steps_to_solve", "steps to solve"),
    ("train_seconds", "train seconds"),
)


@dataclass
class Run:
    """One run directory of a sweep."""

    path: Path
    name: str  # path relative to the sweep dir: the run's overrides
    overrides: dict[str, Any] = field(default_factory=dict)  # key (``agent.lr``) -> value
    status: str = "unfinished"  # finished | failed | unfinished
    metrics: dict[str, Any] | None = None
    error: str | None = None

    @property
    def seed(self) -> Any:
        return self.overrides.get(SEED_KEY)

    def setting(self, keys: Sequence[str]) -> tuple:
        return tuple(_hashable(self.overrides.get(key)) for key in keys)


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
    """Runs with overrides grouped by their values of ``keys``, best mean final score first."""
    groups: dict[tuple, Setting] = {}
    for run in runs:
        if not run.overrides:
            continue
        setting = groups.setdefault(run.setting(keys), Setting({k: run.overrides.get(k) for k in keys}, []))
        setting.runs.append(run)

    def rank(setting: Setting) -> tuple:  # best final score, then fastest to solve, then best 100-ep mean
        scores, solve_steps = setting.metric("final_score"), setting.metric("steps_to_solve")
        best_means = setting.metric("best_mean_score_100")
        return (-_mean(scores) if scores.size else math.inf, _mean(solve_steps) if solve_steps.size else math.inf,
                -_mean(best_means) if best_means.size else math.inf, setting.label())

    return sorted(groups.values(), key=rank)


# --------------------------------------------------------------------------------------------
# WRITE
# --------------------------------------------------------------------------------------------


def write_report(sweep_dir: str | Path, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Write the report files for the sweep in ``sweep_dir`` into ``out_dir`` (default: the sweep
    dir) and return their paths by kind."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"{sweep_dir} is not a directory")
    out_dir = Path(out_dir) if out_dir is not None else sweep_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = find_runs(sweep_dir)
    keys, common = varying_keys(runs)
    settings = group_settings(runs, keys)

    paths = {"markdown": out_dir / "report.md", "csv": out_dir / "report.csv", "runs_csv": out_dir / "runs.csv",
             "learning_curves": out_dir / "learning_curves.png", "final_score": out_dir / "final_score.png"}
    plotted = plot_learning_curves(settings, keys, paths["learning_curves"])
    plotted |= plot_final_scores(settings, keys, paths["final_score"])
    paths["markdown"].write_text(markdown_report(sweep_dir, runs, settings, keys, common, plotted, out_dir))
    paths["csv"].write_text(settings_csv(settings, keys))
    paths["runs_csv"].write_text(runs_csv(runs, keys))
    return {kind: path for kind, path in paths.items() if path.exists()}


def markdown_report(sweep_dir: Path, runs: Sequence[Run], settings: Sequence[Setting], keys: Sequence[str],
                    common: dict[str, Any], plotted: set[Path], out_dir: Path) -> str:
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
    lines += [
        "",
        "Mean ± std over the finished seeds of each setting, best final score first. *final score*: mean "
        "greedy evaluation score after training; *best 100-ep mean*: best mean score of 100 consecutive "
        "training episodes; *steps to solve*: env steps until that mean first reached the env's solved "
        "score, over the seeds that reached it (solved/finished in brackets).",
        "",
    ]
    header = [*keys, "seeds", *(title for _, title in COLUMNS)]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for setting in settings:
        seeds = sorted((run.seed for run in setting.finished if run.seed is not None), key=_natural_key)
        seed_text = ", ".join(str(seed) for seed in seeds) if seeds else f"{len(setting.finished)} run(s)"
        if len(setting.finished) < len(setting.runs):
            seed_text += f" ({len(setting.finished)}/{len(setting.runs)} finished)"
        cells = [_format_value(setting.values[key]) for key in keys] + [seed_text]
        for name, _ in COLUMNS:
            values = setting.metric(name)
            cell = _mean_std(values, digits=0 if name == "steps_to_solve" else 1)
            if name == "steps_to_solve":
                cell += f" ({values.size}/{len(setting.finished)})"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    if failed:
        lines += ["", "## Failed runs", ""]
        lines += [f"- `{run.name}`: {(run.error or '').splitlines()[0] if run.error else 'no message'} "
                  f"(`{FAILED}` in the run dir)" for run in failed]
    if unfinished:
        lines += ["", "## Runs without a result (still running, stopped, or not started)", ""]
        for run in unfinished:
            steps, _ = read_curve(run.path)
            progress = f"last logged at env step {int(steps[-1]):,}" if steps.size else "no data yet"
            lines.append(f"- `{run.name}`: {progress}")
    for path, title in ((out_dir / "learning_curves.png", "Learning curves"),
                        (out_dir / "final_score.png", "Results against each swept key")):
        if path in plotted:
            lines += ["", f"## {title}", "", f"![{title}]({path.name})"]
    return "\n".join(lines) + "\n"


def settings_csv(settings: Sequence[Setting], keys: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    columns = [f"{name}_{stat}" for name, _ in COLUMNS for stat in ("mean", "std", "n")]
    writer.writerow([*keys, "runs", "finished", "seeds", *columns])
    for setting in settings:
        row = [_csv_value(setting.values[key]) for key in keys]
        row += [len(setting.runs), len(setting.finished),
                " ".join(str(run.seed) for run in setting.finished if run.seed is not None)]
        for name, _ in COLUMNS:
            values = setting.metric(name)
            row += [_csv_number(_mean(values)), _csv_number(_std(values)), values.size]
        writer.writerow(row)
    return buffer.getvalue()


def runs_csv(runs: Sequence[Run], keys: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    metric_names = ["final_score", "best_mean_score_100", "steps_to_solve", "seconds_to_solve", "train_seconds",
                    "global_step", "steps_per_second"]
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


def plot_learning_curves(settings: Sequence[Setting], keys: Sequence[str], path: Path) -> set[Path]:
    """Small multiples of the seed-averaged learning curve per setting. In a full grid of three or
    more swept keys, the first two with few values make the rows and columns and the rest tell the
    lines apart; with two keys, the first makes the panels; otherwise (a search) one panel holds all.
    Returns ``{path}`` if written."""
    curves = {id(setting): [read_curve(run.path) for run in setting.finished] for setting in settings}
    settings = [setting for setting in settings if any(steps.size for steps, _ in curves[id(setting)])]
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
            grid, mean, std = mean_curve(curves[id(setting)])
            label = setting.label(line_keys)
            ax.plot(grid, mean, color=colors[label], label=label, linewidth=1.4)
            ax.fill_between(grid, mean - std, mean + std, color=colors[label], alpha=0.2, linewidth=0)
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
        fig.suptitle("Learning curves: mean ± std over seeds", y=0.995)
        fig.tight_layout(rect=(0, 0.04 + 0.03 * math.ceil(len(names) / 4), 1, 0.97))
    else:
        fig.suptitle("Learning curves: mean ± std over seeds"
                     + (f" ({len(labels)} settings, no legend)" if len(labels) > 1 else ""), y=0.995)
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
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        print(f"error: {args.sweep_dir} is not a directory", file=sys.stderr)
        return 2
    paths = write_report(args.sweep_dir, args.out)
    runs = find_runs(args.sweep_dir)
    counts = {status: sum(run.status == status for run in runs) for status in ("finished", "failed", "unfinished")}
    print(f"{len(runs)} runs: {counts['finished']} finished, {counts['failed']} failed, "
          f"{counts['unfinished']} without a result")
    for path in paths.values():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
