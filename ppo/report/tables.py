"""The report's text: ``report.md`` (settings ranked with their statistics, the effect of each swept
key, mean ± std over seeds, and the runs left out), ``report.csv`` (one row per setting) and
``runs.csv`` (one row per run)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ppo.report.runs import (
    CURVE_TAG,
    MINIMIZED,
    RANKING_METRICS,
    Effect,
    Run,
    Setting,
    format_value,
    natural_key,
)
from ppo.report.stats import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    CONFIDENCE,
    MIN_SEEDS_FOR_CI,
    SEEDS_FOR_NOMINAL_CI,
    Estimate,
    improvement,
)
from ppo.rundir import FAILED_FILE, METRICS_FILE, SEED_KEY

# (metrics.json key, column title) of the numbers the mean ± std table aggregates over seeds
COLUMNS = (
    ("final_score", "final score"),
    ("best_mean_score_100", "best 100-ep mean"),
    ("steps_to_solve", "steps to solve"),
    ("train_seconds", "train seconds"),
)
DIGITS = {"final_score": 1, "best_mean_score_100": 1, "auc": 1, "steps_to_solve": 0}
RUN_METRICS = ("final_score", "best_mean_score_100", "auc", "steps_to_solve", "seconds_to_solve", "train_seconds",
               "global_step", "steps_per_second")  # the columns of runs.csv from metrics.json
CITATION = ("R. Agarwal, M. Schwarzer, P. S. Castro, A. Courville, M. G. Bellemare, \"Deep Reinforcement "
            "Learning at the Edge of the Statistical Precipice\", NeurIPS 2021 "
            "(https://arxiv.org/abs/2108.13264), as in its library rliable "
            "(https://github.com/google-research/rliable)")


@dataclass
class Ranking:
    """The metric that ranks the settings and where it came from (for the report's wording)."""

    metric: str
    source: str  # "--metric", "the runs' objective" or "the default"

    @property
    def title(self) -> str:
        return RANKING_METRICS[self.metric]


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
        lines.append("Every run has " + ", ".join(f"`{key}={format_value(value)}`" for key, value in common.items())
                     + ".")
    lines += ranking_lines(ranked, keys, ranking, finished)
    lines += effect_lines(effects, unpooled, ranking, out_dir / "effects.png" in plotted)
    if out_dir / "sample_efficiency.png" in plotted:
        lines += ["", "## Sample efficiency", "",
                  f"IQM over seeds of the 100-episode mean score (`{CURVE_TAG}`) against env steps, over the "
                  f"steps every seed of a setting logged, with its {CONFIDENCE:.0%} bootstrap band where a setting "
                  f"has at least {MIN_SEEDS_FOR_CI} seeds.", "", "![Sample efficiency](sample_efficiency.png)"]
    lines += mean_std_lines(settings, keys)
    if len(ranked) > 1:
        top = ranked[:5]
        places = ", ".join(str(list(settings).index(setting) + 1) for setting in top)
        lines += ["", f"The top {len(top)} settings by the IQM of {ranking.title} stand at places {places} of this "
                      f"table."]
    if failed:
        lines += ["", "## Failed runs", ""]
        lines += [f"- `{run.name}`: {run.error.splitlines()[0] if run.error else 'no message'} "
                  f"(`{FAILED_FILE}` in the run dir)" for run in failed]
    if unfinished:
        lines += ["", "## Runs without a result (still running, stopped, or not started)", ""]
        for run in unfinished:
            steps, _ = run.curve()
            progress = f"last logged at env step {int(steps[-1]):,}" if steps.size else "no data yet"
            lines.append(f"- `{run.name}`: " + (f"{run.error}; {progress}" if run.error else progress))
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
             f"{BOOTSTRAP_SEED}). *seeds*: the seeds whose {title} the row's IQM is taken from; a cell taken from "
             f"another number of runs says how many (n=…). *P(best > this)*: the probability that a run of the "
             f"first setting beats a run of this one on {title} (the Mann-Whitney U statistic over the n·m pairs "
             f"of runs, ties counting half: 0.5 is no difference, 1 is better in every pair), with a bootstrap "
             f"interval that resamples both settings' seeds. Method: {CITATION}; computed here with numpy.",
             "",
             "*final score*: mean greedy evaluation score after training; *best 100-ep mean*: best mean score of "
             "100 consecutive training episodes; *AUC*: the area under the 100-episode mean score over the run's "
             "env steps divided by its budget, its time-average, higher for faster learners even when all reach "
             "the env's maximum; *steps to solve*: env steps until the 100-episode mean first reached the env's "
             "solved score, **a run that never solved counting as its whole budget of env steps** (`budget` in "
             f"{METRICS_FILE}; solved/finished runs in brackets), n/a for an env without a solved score."]
    lines += missing_lines(finished, ranking)
    seed_counts = [len(setting.with_value(metric)) for setting in ranked]
    too_few = [count for count in seed_counts if 0 < count < MIN_SEEDS_FOR_CI]
    rough = [count for count in seed_counts if MIN_SEEDS_FOR_CI <= count < SEEDS_FOR_NOMINAL_CI]
    if too_few:
        lines += ["", f"**Too few seeds for confidence intervals:** {len(too_few)} of {len(ranked)} settings have "
                      f"fewer than {MIN_SEEDS_FOR_CI} finished seeds with a {title}, so their intervals read n/a: one "
                      f"seed has no spread to resample, and from two a {CONFIDENCE:.0%} bootstrap interval is the two "
                      f"values' range, which covers the true IQM about half the time. Their numbers are single "
                      f"draws; run more seeds (e.g. `seed=1,2,3,4,5`)."]
    if rough:
        counts = f"{min(rough)}" if min(rough) == max(rough) else f"{min(rough)}–{max(rough)}"
        lines += ["", f"**Intervals from {counts} seeds are rough:** a nominal {CONFIDENCE:.0%} "
                      f"interval covers the true IQM in about 75% of draws with 3 seeds (it is then the seeds' "
                      f"range), 88% with 4 or 5 and 93% with 10 (measured on normally distributed scores). More "
                      f"seeds make them trustworthy."]
    header = [*keys, "seeds", *(RANKING_METRICS[name] for name in order), "P(best > this)"]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for setting, seeds in zip(ranked, seed_counts):
        cells = [format_value(setting.values[key]) for key in keys]
        cells.append(_seeds_cell(setting, setting.with_value(metric), f"finished without {title}"))
        for name in order:
            estimate = setting.estimate(name)
            cell = _estimate_cell(estimate, DIGITS[name])
            if estimate.runs and estimate.runs != seeds:
                cell += f" (n={estimate.runs})"
            if name == "steps_to_solve" and setting.finished:
                solved = sum(run.number("steps_to_solve") is not None for run in setting.finished)
                cell += f" ({solved}/{len(setting.finished)})"
            cells.append(cell)
        if setting is best:
            cells.append("(best)")
        else:
            cells.append(_probability_cell(*improvement(best.values_of(metric) if best else np.zeros(0),
                                                        setting.values_of(metric), metric in MINIMIZED)))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def missing_lines(finished: Sequence[Run], ranking: Ranking) -> list[str]:
    """The finished runs without a value of the ranking metric, by name and why, which its statistics
    leave out."""
    by_reason: dict[str, list[str]] = {}
    for run in finished:
        reason = run.missing_reason(ranking.metric)
        if reason is not None:
            by_reason.setdefault(reason, []).append(run.name)
    if not by_reason:
        return []
    count = sum(len(names) for names in by_reason.values())
    runs = f"{count} finished runs have" if count > 1 else "1 finished run has"
    groups = "; ".join(", ".join(f"`{name}`" for name in names) + f" ({reason})" for reason, names in by_reason.items())
    return ["", f"**{runs} no {ranking.title}** (`{ranking.metric}`), left out of its statistics: {groups}."]


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
        lines += [f"| {effect.key} | {format_value(effect.value)} | {effect.settings} | {effect.estimate.runs} | "
                  f"{_estimate_cell(effect.estimate, DIGITS[ranking.metric])} |" for effect in effects]
    if unpooled:
        lines += [""] if effects else []
        lines.append("Not pooled: " + ", ".join(f"`{key}`" for key in unpooled) + " (each of its values is a single "
                     "setting, in the table above; in a search, see the results against each swept key below).")
    if plotted:
        lines += ["", "![Effect of each swept key](effects.png)"]
    return lines


def mean_std_lines(settings: Sequence[Setting], keys: Sequence[str]) -> list[str]:
    """The table of the :data:`COLUMNS` as mean ± std over each setting's finished seeds."""
    lines = ["", "## Mean ± std over seeds", "",
             "Best mean final score first. *final score*: mean "
             "greedy evaluation score after training; *best 100-ep mean*: best mean score of 100 consecutive "
             "training episodes; *steps to solve*: env steps until that mean first reached the env's solved "
             "score, over the seeds that reached it (solved/finished in brackets). A cell taken from fewer runs "
             "than the finished seeds says how many (n=…).",
             ""]
    header = [*keys, "seeds", *(title for _, title in COLUMNS)]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for setting in settings:
        cells = [format_value(setting.values[key]) for key in keys] + [_seeds_cell(setting, setting.finished)]
        for name, _ in COLUMNS:
            values = setting.numbers(name)
            cell = _mean_std(values, digits=0 if name == "steps_to_solve" else 1)
            if name == "steps_to_solve":
                cell += f" ({values.size}/{len(setting.finished)})"
            elif 0 < values.size < len(setting.finished):
                cell += f" (n={values.size})"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def settings_csv(settings: Sequence[Setting], keys: Sequence[str], metric: str) -> str:
    """report.csv: one row per setting in the given order; mean, std and count over seeds of the
    :data:`COLUMNS`, IQM, interval and count of the :data:`RANKING_METRICS`, and the probability that
    the first setting improves on each in ``metric``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    columns = [f"{name}_{stat}" for name, _ in COLUMNS for stat in ("mean", "std", "n")]
    columns += [f"{name}_{stat}" for name in RANKING_METRICS for stat in ("iqm", "ci_low", "ci_high", "iqm_n")]
    writer.writerow([*keys, "runs", "finished", "seeds", *columns, "p_best_improves", "p_best_improves_ci_low",
                     "p_best_improves_ci_high"])
    best = next((setting for setting in settings if setting.values_of(metric).size), None)
    for setting in settings:
        row = [_csv_value(setting.values[key]) for key in keys]
        row += [len(setting.runs), len(setting.finished),
                " ".join(str(run.seed) for run in setting.finished if run.seed is not None)]
        for name, _ in COLUMNS:
            values = setting.numbers(name)
            row += [_csv_number(_mean(values)), _csv_number(_std(values)), values.size]
        for name in RANKING_METRICS:
            estimate = setting.estimate(name)
            row += [_csv_number(estimate.iqm), _csv_number(estimate.low), _csv_number(estimate.high), estimate.runs]
        if best is None or setting is best:
            row += ["", "", ""]
        else:
            row += [_csv_number(p) for p in improvement(best.values_of(metric), setting.values_of(metric),
                                                        metric in MINIMIZED)]
        writer.writerow(row)
    return buffer.getvalue()


def runs_csv(runs: Sequence[Run], keys: Sequence[str]) -> str:
    """runs.csv: one row per run, its status, swept values, seed, the :data:`RUN_METRICS` (empty where
    null or NaN) and the first line of its error."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["run", "status", *keys, SEED_KEY, *RUN_METRICS, "error"])
    for run in runs:
        writer.writerow([run.name, run.status, *(_csv_value(run.overrides.get(key)) for key in keys),
                         _csv_value(run.seed), *(_csv_number(run.number(name)) for name in RUN_METRICS),
                         run.error.splitlines()[0] if run.error else ""])
    return buffer.getvalue()


def _seeds_cell(setting: Setting, counted: Sequence[Run], uncounted: str = "") -> str:
    """The seeds of the ``counted`` runs, and how many of the setting's finished runs are not counted
    (``uncounted`` says why) and how many of its runs finished, where not all."""
    seeds = sorted((run.seed for run in counted if run.seed is not None), key=natural_key)
    text = ", ".join(str(seed) for seed in seeds) if seeds else f"{len(counted)} run(s)"
    notes = []
    if len(counted) < len(setting.finished):
        notes.append(f"{len(setting.finished) - len(counted)} {uncounted}")
    if len(setting.finished) < len(setting.runs):
        notes.append(f"{len(setting.finished)}/{len(setting.runs)} finished")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def _estimate_cell(estimate: Estimate, digits: int) -> str:
    """``IQM [low, high]``; ``[n/a]`` where too few runs for an interval; ``—`` without runs."""
    if not estimate.runs:
        return "—"
    interval = "n/a" if math.isnan(estimate.low) else f"{estimate.low:,.{digits}f}, {estimate.high:,.{digits}f}"
    return f"{estimate.iqm:,.{digits}f} [{interval}]"


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


def _csv_number(value: float | None) -> Any:
    """A number for the CSV; empty for None and NaN."""
    return "" if value is None or math.isnan(value) else value
