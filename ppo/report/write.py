"""The report of a sweep: its runs read, grouped and ranked, then written as tables and plots."""

from __future__ import annotations

from pathlib import Path

from ppo.report.plots import plot_effects, plot_final_scores, plot_learning_curves
from ppo.report.runs import (
    RANKING_METRICS,
    find_sweep_runs,
    group_settings,
    key_effects,
    objective_of,
    rank_settings,
    varying_keys,
)
from ppo.report.stats import CONFIDENCE, iqm_curve
from ppo.report.tables import Ranking, markdown_report, runs_csv, settings_csv


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
    any_finished = any(run.status == "finished" for run in runs)
    ranking = Ranking(metric or objective_of(runs),
                      "--metric" if metric else "the runs' objective" if any_finished else "the default")
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
