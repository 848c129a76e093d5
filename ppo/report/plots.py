"""The report's figures, drawn with matplotlib into PNG files: learning curves per setting in small
multiples, the effect of each swept key, and every run's result against each swept key."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ppo.report.runs import (
    MINIMIZED,
    RANKING_METRICS,
    Effect,
    Setting,
    format_value,
    hashable_value,
    natural_key,
    short_key,
)
from ppo.report.stats import CONFIDENCE, mean_std_band

MAX_LEGEND_ENTRIES = 10
SCATTER_METRICS = (("final_score", "final greedy score"), ("best_mean_score_100", "best 100-episode mean"))


def pyplot():
    """``matplotlib.pyplot`` drawing into files only (the Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
    by_values = sorted(settings, key=lambda setting: [natural_key(hashable_value(setting.values[k]))
                                                      for k in line_keys])
    labels = list(dict.fromkeys(setting.label(line_keys) for setting in by_values))
    colors = {label: plt.get_cmap("viridis" if len(labels) > 10 else "tab10")(
        i / max(len(labels) - 1, 1) if len(labels) > 10 else i) for i, label in enumerate(labels)}

    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.0 * n_rows), sharex=True, sharey=True,
                             squeeze=False)
    for index, (row, col) in enumerate(panels):
        ax = axes.flat[index]
        for setting in settings:
            if len(facet_keys) == 2 and hashable_value(setting.values[facet_keys[0]]) != row:
                continue
            if facet_keys and hashable_value(setting.values[facet_keys[-1]]) != col:
                continue
            grid, center, low, high = summaries[id(setting)]
            label = setting.label(line_keys)
            ax.plot(grid, center, color=colors[label], label=label, linewidth=1.4)
            ax.fill_between(grid, low, high, color=colors[label], alpha=0.2, linewidth=0)
        facet_values = [row, col][-len(facet_keys):] if facet_keys else []
        ax.set_title(", ".join(f"{short_key(key)}={format_value(value)}"
                               for key, value in zip(facet_keys, facet_values)), fontsize=10)
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


def plot_final_scores(settings: Sequence[Setting], keys: Sequence[str], path: Path) -> set[Path]:
    """One panel per swept key and result (rows: the final greedy score, and the best 100-episode
    mean, which still tells settings apart when every final score is the env's maximum): each
    finished run that has the result at its value of the key (dots), and the mean ± std over all runs
    with that value. Returns ``{path}`` if written."""
    finished = [run for setting in settings for run in setting.finished]
    rows = [(name, title) for name, title in SCATTER_METRICS if any(run.number(name) is not None for run in finished)]
    if not rows or not keys:
        return set()
    plt = pyplot()
    fig, axes = plt.subplots(len(rows), len(keys), figsize=(4.2 * len(keys), 3.0 * len(rows) + 0.5), squeeze=False,
                             sharey="row")
    rng = np.random.default_rng(0)  # jitter, so that equal scores stay visible
    for row, (name, title) in enumerate(rows):
        runs = [run for run in finished if run.number(name) is not None]
        scores = np.array([run.number(name) for run in runs], dtype=float)
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
        ax.set_xticks(positions, [format_value(effect.value) for effect in rows])
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
        tick_labels = [format_value(int(v) if float(v).is_integer() and log_axis else v) for v in distinct]
    else:  # categories in order of appearance
        log_axis = False
        tick_labels = list(dict.fromkeys(format_value(v) for v in values))
        x = np.array([tick_labels.index(format_value(v)) for v in values], dtype=float)
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


def _distinct(settings: Sequence[Setting], key: str) -> list:
    return sorted({hashable_value(setting.values[key]) for setting in settings}, key=natural_key)


def _unique_legend(axes, order: Sequence[str]):
    seen = {}
    for ax in axes.flat:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(name, handle)
    names = [name for name in order if name in seen]
    return [seen[name] for name in names], names
