"""ppo.report's statistics on synthetic sweeps with known answers: the interquartile mean, stratified
bootstrap intervals that cover the true IQM, the probability of improvement, the ranking metric, AUC
from a curve, the effect of each swept key, too few seeds, and the refusal of directories that hold
no sweep. Run dirs are written by hand (``.hydra/overrides.yaml``, ``metrics.json``, event files):
no training."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import require_modules
from ppo.report import (
    BOOTSTRAP_RESAMPLES,
    bootstrap_ci,
    curve_auc,
    estimate,
    find_sweep_runs,
    group_settings,
    iqm,
    iqm_curve,
    key_effects,
    main,
    probability_of_improvement,
    probability_of_improvement_ci,
    varying_keys,
    write_report,
)

require_modules("matplotlib", extras="sweep")

# The IQM of the standard exponential distribution: the mean of x over its quantiles 0.25 to 0.75,
# 2·[(a+1)e^-a - (b+1)e^-b] with a = ln(4/3), b = ln(4).
EXPONENTIAL_IQM = 2 * ((np.log(4 / 3) + 1) * 0.75 - (np.log(4) + 1) * 0.25)


def write_run(sweep_dir: Path, overrides: dict, metrics: dict | None = None,
              curve: tuple[list, list] | None = None) -> Path:
    """A run dir as a Hydra sweep leaves it: named by its overrides, with ``.hydra/overrides.yaml``,
    ``metrics.json`` (unless None: still running) and event files of ``episode/mean_score_100``."""
    run_dir = sweep_dir / ",".join(f"{key}={value}" for key, value in overrides.items())
    (run_dir / ".hydra").mkdir(parents=True)
    lines = [f"- {key}={value}\n" for key, value in overrides.items()]
    (run_dir / ".hydra" / "overrides.yaml").write_text("".join(lines))
    if metrics is not None:
        (run_dir / "metrics.json").write_text(json.dumps(metrics))
    if curve is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir))
        for step, value in zip(*curve):
            writer.add_scalar("episode/mean_score_100", value, step)
        writer.close()
    return run_dir


def write_sweep(sweep_dir: Path, final_scores: dict[float, list[float]], **metrics) -> Path:
    """One setting per ``agent.policy_clip`` value, one run per final score, seeds 1, 2, ..."""
    for clip, scores in final_scores.items():
        for seed, score in enumerate(scores, start=1):
            write_run(sweep_dir, {"agent.policy_clip": clip, "seed": seed},
                      {"final_score": score, "global_step": 1000, **metrics})
    return sweep_dir


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def ranking_table(markdown: str) -> list[str]:
    """The rows of the first table in report.md (the settings ranked by IQM), header first."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return [line for line in lines[start:end] if not line.startswith("|---")]


# --------------------------------------------------------------------------------------------
# The statistics
# --------------------------------------------------------------------------------------------


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


def test_auc_is_the_time_average_of_the_curve_over_the_budget():
    """Each logged value holds since the previous one (the first from step 0), the last to the budget."""
    steps, scores = np.array([100.0, 200, 400]), np.array([10.0, 20, 40])
    assert curve_auc(steps, scores) == pytest.approx((10 * 100 + 20 * 100 + 40 * 200) / 400)
    assert curve_auc(steps, scores, budget=500) == pytest.approx((10 * 100 + 20 * 100 + 40 * 300) / 500)


# --------------------------------------------------------------------------------------------
# The report on synthetic sweeps
# --------------------------------------------------------------------------------------------


def test_report_ranks_by_iqm_with_probability_of_improvement(tmp_path):
    """A setting better on every seed comes first; the others' P(best > this) is 1 with interval
    [1, 1]; two settings with the same runs get 0.5 against each other and the same IQM; the
    method is cited."""
    sweep_dir = write_sweep(tmp_path / "sweep", {0.2: [90.0, 95, 100, 96], 0.1: [10.0, 20, 30, 25],
                                                 0.3: [10.0, 20, 30, 25]})
    paths = write_report(sweep_dir)
    rows = read_rows(paths["csv"])
    assert [row["agent.policy_clip"] for row in rows[:1]] == ["0.2"]
    assert float(rows[0]["final_score_iqm"]) == pytest.approx(95.5)  # mean of 95, 96
    for row in rows[1:]:
        assert float(row["p_best_improves"]) == 1.0
        assert (float(row["p_best_improves_ci_low"]), float(row["p_best_improves_ci_high"])) == (1.0, 1.0)
        assert float(row["final_score_iqm"]) == pytest.approx(22.5)
    assert rows[1]["final_score_ci_low"] == rows[2]["final_score_ci_low"]
    markdown = paths["markdown"].read_text()
    assert "Statistical Precipice" in markdown and "Agarwal" in markdown
    table = ranking_table(markdown)
    assert table[0].startswith("| agent.policy_clip | seeds | final score |")
    assert table[1].startswith("| 0.2 | 1, 2, 3, 4 | 95.5 [") and table[1].endswith("| (best) |")
    assert table[2].endswith("| 1.00 [1.00, 1.00] |")

    from ppo.report import improvement

    settings = {s.values["agent.policy_clip"]: s for s in group_settings(find_sweep_runs(sweep_dir),
                                                                          ["agent.policy_clip"])}
    p, low, high = improvement(settings[0.1].values_of("final_score"), settings[0.3].values_of("final_score"),
                               "final_score")
    assert p == 0.5 and low < 0.5 < high


def test_ranking_metric_follows_the_objective_and_counts_unsolved_runs_as_their_budget(tmp_path):
    """Runs whose objective is steps_to_solve rank the setting that solves first (fewer steps), though
    the other has the better final score; a run that never solved counts as its budget (not the steps
    it took past it to finish its last rollout); --metric overrides the objective."""
    sweep_dir = tmp_path / "sweep"
    for seed in (1, 2, 3):
        write_run(sweep_dir, {"agent.batch_size": 32, "seed": seed},
                  {"final_score": 400.0, "steps_to_solve": 300 * seed, "global_step": 5000,
                   "objective": "steps_to_solve"})
        write_run(sweep_dir, {"agent.batch_size": 64, "seed": seed},
                  {"final_score": 500.0, "steps_to_solve": None if seed < 3 else 4000, "budget": 5000,
                   "global_step": 5120, "objective": "steps_to_solve"})
    out = tmp_path / "by_objective"
    rows = read_rows(write_report(sweep_dir, out)["csv"])
    assert [row["agent.batch_size"] for row in rows] == ["32", "64"]
    assert float(rows[1]["steps_to_solve_iqm"]) == pytest.approx((5000 + 5000 + 4000) / 3)
    assert float(rows[1]["p_best_improves"]) == 1.0
    markdown = (out / "report.md").read_text()
    assert "Ranked by **steps to solve** (`steps_to_solve`, lower is better; chosen by the runs' objective" in markdown
    assert "a run that never solved counting as its whole budget of env steps" in markdown
    assert "(1/3)" in ranking_table(markdown)[2]

    assert main([str(sweep_dir), "--out", str(tmp_path / "by_score"), "--metric", "final_score"]) == 0
    rows = read_rows(tmp_path / "by_score" / "report.csv")
    assert [row["agent.batch_size"] for row in rows] == ["64", "32"]
    assert "chosen by --metric" in (tmp_path / "by_score" / "report.md").read_text()


def test_auc_from_curves_sample_efficiency_and_key_effects(tmp_path):
    """Runs without auc in metrics.json get it from their curve (and the report says so); the faster
    learner ranks first by AUC although every final score ties; each swept key's effect pools the
    other key; both plots are written and shown."""
    sweep_dir = tmp_path / "sweep"
    steps = [250, 500, 750, 1000]
    for lam, speed in ((0.9, 1.0), (0.95, 2.0)):
        for clip in (0.1, 0.2):
            for seed in (1, 2, 3):
                scores = [min(100.0, speed * (40 + 10 * seed + clip * 100) * i) for i in (1, 2, 3, 4)]
                write_run(sweep_dir, {"agent.gae_lambda": lam, "agent.policy_clip": clip, "seed": seed},
                          {"final_score": 100.0, "global_step": 1000}, curve=(steps, scores))
    paths = write_report(sweep_dir, metric="auc")
    rows = read_rows(paths["csv"])
    assert {row["agent.gae_lambda"] for row in rows[:2]} == {"0.95"}
    seed_1 = [min(100.0, 2.0 * 70 * i) for i in (1, 2, 3, 4)]  # lambda 0.95, clip 0.2, seed 1
    runs = {run.name: run for run in find_sweep_runs(sweep_dir)}
    assert runs["agent.gae_lambda=0.95,agent.policy_clip=0.2,seed=1"].value("auc") == pytest.approx(np.mean(seed_1))
    markdown = paths["markdown"].read_text()
    assert "AUC of 12 run(s) whose metrics.json lacks it is computed from their" in markdown
    assert "![Sample efficiency](sample_efficiency.png)" in markdown
    assert "![Effect of each swept key](effects.png)" in markdown
    for kind in ("sample_efficiency", "effects"):
        assert paths[kind].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    found = find_sweep_runs(sweep_dir)
    keys, _ = varying_keys(found)
    effects, unpooled = key_effects(group_settings(found, keys), keys, "auc")
    assert not unpooled
    by_value = {(effect.key, effect.value): effect for effect in effects}
    assert set(by_value) == {("agent.gae_lambda", 0.9), ("agent.gae_lambda", 0.95), ("agent.policy_clip", 0.1),
                             ("agent.policy_clip", 0.2)}
    assert all(effect.settings == 2 and effect.estimate.runs == 6 for effect in effects)
    fast, slow = by_value["agent.gae_lambda", 0.95].estimate, by_value["agent.gae_lambda", 0.9].estimate
    assert fast.low > slow.high, "the faster λ is better on every run: disjoint intervals"
    assert f"| agent.gae_lambda | 0.95 | 2 | 6 | {fast.iqm:,.1f} [" in markdown


def test_auc_in_metrics_json_is_taken_as_written(tmp_path):
    """A run's own auc wins over its curve."""
    run_dir = write_run(tmp_path / "sweep", {"seed": 1}, {"final_score": 1.0, "global_step": 100, "auc": 42.0},
                        curve=([50, 100], [1.0, 2.0]))
    (run,) = [run for run in find_sweep_runs(tmp_path / "sweep") if run.path == run_dir]
    assert run.value("auc") == 42.0


def test_report_says_when_seeds_are_too_few(tmp_path):
    """Two seeds per setting: intervals n/a and a sentence why; three: intervals, marked as rough."""
    two = write_sweep(tmp_path / "two", {0.1: [1.0, 2.0], 0.2: [3.0, 4.0]})
    markdown = write_report(two)["markdown"].read_text()
    assert "**Too few seeds for confidence intervals:** 2 of 2 settings have fewer than 3" in markdown
    assert all("[n/a]" in row for row in ranking_table(markdown)[1:])
    assert all(row["final_score_ci_low"] == "" for row in read_rows(two / "report.csv"))

    three = write_sweep(tmp_path / "three", {0.1: [1.0, 2.0, 5.0], 0.2: [3.0, 4.0, 6.0]})
    markdown = write_report(three)["markdown"].read_text()
    assert "Too few seeds" not in markdown and "[n/a]" not in markdown
    assert "**Intervals from 3 seeds are rough:**" in markdown
    assert "| 0.2 | 1, 2, 3 | 4.3 [3.0, 6.0] |" in markdown


@pytest.mark.parametrize("case", ["missing", "empty", "single run", "a file", "only empty dirs"])
def test_a_directory_without_sweep_runs_is_refused(tmp_path, case, capsys):
    """Exit code 2, one line on stderr that names the directory and what is expected, nothing written."""
    target = tmp_path / "target"
    if case == "empty":
        target.mkdir()
    elif case == "single run":
        target = write_run(tmp_path, {"seed": 1}, {"final_score": 1.0, "global_step": 10}).rename(target)
        (target / ".hydra" / "overrides.yaml").write_text("[]\n")
    elif case == "a file":
        target.write_text("not a sweep")
    elif case == "only empty dirs":
        (target / "not-started").mkdir(parents=True)
    before = sorted(tmp_path.rglob("*"))
    assert main([str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {target} ")
    assert "expected a sweep directory" in err
    assert sorted(tmp_path.rglob("*")) == before, "nothing written"


def test_a_sweep_of_seeds_only_gets_a_one_row_table(tmp_path):
    """Runs that differ only in their seed form one setting, its row the only one in the table."""
    sweep_dir = tmp_path / "sweep"
    for seed in (1, 2, 3):
        write_run(sweep_dir, {"seed": seed}, {"final_score": float(seed), "global_step": 10})
    table = ranking_table(write_report(sweep_dir)["markdown"].read_text())
    assert len(table) == 2 and table[1].startswith("| 1, 2, 3 | 2.0 [1.0, 3.0] |")
