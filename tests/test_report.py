"""ppo.report on synthetic sweeps with known answers: the ranking metric, the effect of each swept key,
too few seeds, null and NaN metrics, unreadable metrics.json files, and the refusal of directories that
hold no sweep. Run dirs are written by hand (``.hydra/overrides.yaml``, ``metrics.json``, event files):
no training. The statistics themselves are tested in test_report_stats.py."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import require_modules
from ppo.report.__main__ import main
from ppo.report.runs import find_sweep_runs, group_settings, key_effects, varying_keys
from ppo.report.stats import improvement
from ppo.report.write import write_report

require_modules("matplotlib", extras="sweep")  # the report draws its plots

# metrics.json as ppo.train writes it, here of a run that played fewer than 100 episodes and never
# reached the env's solved score; each test sets the numbers it is about
METRICS = {"final_score": 0.0, "final_score_std": 0.0, "best_mean_score_100": None, "auc": 5.0, "best_score": 20.0,
           "episodes": 50, "solved_score": 475.0, "steps_to_solve": None, "seconds_to_solve": None,
           "objective": "final_score", "budget": 1000, "global_step": 1000, "train_seconds": 1.0,
           "steps_per_second": 1000.0, "phase_seconds": {}}


def write_run(sweep_dir: Path, overrides: dict, metrics: dict | None = None,
              curve: tuple[list, list] | None = None) -> Path:
    """A run dir as a Hydra sweep leaves it: named by its overrides, with ``.hydra/overrides.yaml``,
    ``metrics.json`` (:data:`METRICS` updated by ``metrics``; none if None: still running) and event
    files of ``episode/mean_score_100``."""
    run_dir = sweep_dir / ",".join(f"{key}={value}" for key, value in overrides.items())
    (run_dir / ".hydra").mkdir(parents=True)
    lines = [f"- {key}={value}\n" for key, value in overrides.items()]
    (run_dir / ".hydra" / "overrides.yaml").write_text("".join(lines))
    if metrics is not None:
        (run_dir / "metrics.json").write_text(json.dumps({**METRICS, **metrics}))
    if curve is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir))
        for step, value in zip(*curve):
            writer.add_scalar("episode/mean_score_100", value, step)
        writer.close()
    return run_dir


def write_sweep(sweep_dir: Path, final_scores: dict[float, list[float | None]], **metrics) -> Path:
    """One setting per ``agent.policy_clip`` value, one run per final score, seeds 1, 2, ..."""
    for clip, scores in final_scores.items():
        for seed, score in enumerate(scores, start=1):
            write_run(sweep_dir, {"agent.policy_clip": clip, "seed": seed}, {"final_score": score, **metrics})
    return sweep_dir


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def tables(markdown: str) -> list[list[str]]:
    """The tables of report.md (ranked by IQM, effects if any, mean ± std), each its rows, header first."""
    blocks = [block.splitlines() for block in markdown.split("\n\n") if block.startswith("| ")]
    return [[line for line in block if not line.startswith("|---")] for block in blocks]


def ranking_table(markdown: str) -> list[str]:
    """The rows of the first table in report.md (the settings ranked by IQM), header first."""
    return tables(markdown)[0]


# --------------------------------------------------------------------------------------------
# Ranking, effects and seeds
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

    settings = {s.values["agent.policy_clip"]: s for s in group_settings(find_sweep_runs(sweep_dir),
                                                                          ["agent.policy_clip"])}
    p, low, high = improvement(settings[0.1].values_of("final_score"), settings[0.3].values_of("final_score"))
    assert p == 0.5 and low < 0.5 < high


def test_ranking_metric_follows_the_objective_and_counts_unsolved_runs_as_their_budget(tmp_path):
    """Runs whose objective is steps_to_solve rank the setting that solves first (fewer steps), though
    the other has the better final score; a run that never solved counts as its budget (not the steps
    it took past it to finish its last rollout); --metric overrides the objective."""
    sweep_dir = tmp_path / "sweep"
    for seed in (1, 2, 3):
        write_run(sweep_dir, {"agent.batch_size": 32, "seed": seed},
                  {"final_score": 400.0, "steps_to_solve": 300 * seed, "budget": 5000, "global_step": 5000,
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


def test_auc_ranking_sample_efficiency_and_key_effects(tmp_path):
    """The faster learner (the higher AUC in metrics.json) ranks first by AUC although every final score
    ties; each swept key's effect pools the other key; both plots are written and shown."""
    sweep_dir = tmp_path / "sweep"
    steps = [250, 500, 750, 1000]
    for lam, speed in ((0.9, 1.0), (0.95, 2.0)):
        for clip in (0.1, 0.2):
            for seed in (1, 2, 3):
                scores = [min(100.0, speed * (40 + 10 * seed + clip * 100) * i) for i in (1, 2, 3, 4)]
                write_run(sweep_dir, {"agent.gae_lambda": lam, "agent.policy_clip": clip, "seed": seed},
                          {"final_score": 100.0, "auc": float(np.mean(scores))}, curve=(steps, scores))
    paths = write_report(sweep_dir, metric="auc")
    rows = read_rows(paths["csv"])
    assert {row["agent.gae_lambda"] for row in rows[:2]} == {"0.95"}
    markdown = paths["markdown"].read_text()
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


def test_auc_is_the_trainers_and_a_null_auc_is_missing(tmp_path):
    """A run's auc is the one metrics.json holds, not one from its curve; a null auc (no episode
    finished) stays missing, though the run has a curve."""
    sweep_dir = tmp_path / "sweep"
    write_run(sweep_dir, {"seed": 1}, {"auc": 42.0}, curve=([50, 100], [1.0, 2.0]))
    write_run(sweep_dir, {"seed": 2}, {"auc": None}, curve=([50, 100], [1.0, 2.0]))
    runs = {run.seed: run for run in find_sweep_runs(sweep_dir)}
    assert runs[1].value("auc") == 42.0
    assert runs[2].value("auc") is None and runs[2].missing_reason("auc") == "null: no episode finished"


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


def test_a_sweep_of_seeds_only_gets_a_one_row_table(tmp_path):
    """Runs that differ only in their seed form one setting, its row the only one in the table."""
    sweep_dir = tmp_path / "sweep"
    for seed in (1, 2, 3):
        write_run(sweep_dir, {"seed": seed}, {"final_score": float(seed)})
    table = ranking_table(write_report(sweep_dir)["markdown"].read_text())
    assert len(table) == 2 and table[1].startswith("| 1, 2, 3 | 2.0 [1.0, 3.0] |")


# --------------------------------------------------------------------------------------------
# Missing metrics and unreadable results
# --------------------------------------------------------------------------------------------


def test_finished_runs_without_the_ranking_metric_are_named_and_left_out_of_the_counts(tmp_path):
    """Two of four finished seeds without a final score (train.eval_episodes=0): the report names them
    and why; the seeds cell lists the two the IQM is taken from and says two more finished without
    one; the setting counts as having too few seeds; other cells and the CSV give their counts."""
    sweep_dir = write_sweep(tmp_path / "sweep", {0.1: [10.0, None, 30.0, None], 0.2: [1.0, 2.0, 3.0, 4.0]})
    paths = write_report(sweep_dir)
    markdown = paths["markdown"].read_text()
    assert ("**2 finished runs have no final score** (`final_score`), left out of its statistics: "
            "`agent.policy_clip=0.1,seed=2`, `agent.policy_clip=0.1,seed=4` "
            "(null: train.eval_episodes=0, no greedy evaluation).") in markdown
    ranked, mean_std = tables(markdown)
    assert ranked[1].startswith("| 0.1 | 1, 3 (2 finished without final score) | 20.0 [n/a] | — "
                                "| 5.0 [5.0, 5.0] (n=4) |")
    assert ranked[2].startswith("| 0.2 | 1, 2, 3, 4 | 2.5 [")
    assert "**Too few seeds for confidence intervals:** 1 of 2 settings have fewer than 3 finished seeds with a " \
           "final score" in markdown
    assert mean_std[1].startswith("| 0.1 | 1, 2, 3, 4 | 20.0 ± 14.1 (n=2) |")
    rows = {row["agent.policy_clip"]: row for row in read_rows(paths["csv"])}
    assert rows["0.1"]["final_score_iqm_n"] == rows["0.1"]["final_score_n"] == "2"
    assert rows["0.1"]["finished"] == "4" and rows["0.1"]["auc_iqm_n"] == "4"


def test_a_nan_metric_is_missing_never_a_number(tmp_path):
    """A final score of NaN in metrics.json counts as missing: the other seeds' mean ranks the setting
    first in the mean ± std table, no table or CSV shows a NaN, and the run is named with why."""
    sweep_dir = write_sweep(tmp_path / "sweep", {0.1: [50.0, 50.0, 50.0], 0.2: [100.0, float("nan"), 100.0]})
    assert "NaN" in (sweep_dir / "agent.policy_clip=0.2,seed=2" / "metrics.json").read_text()
    paths = write_report(sweep_dir)
    markdown = paths["markdown"].read_text()
    ranked, mean_std = tables(markdown)
    assert mean_std[1].startswith("| 0.2 | 1, 2, 3 | 100.0 ± 0.0 (n=2) |")
    assert ranked[1].startswith("| 0.2 | 1, 3 (1 finished without final score) | 100.0 [n/a] |")
    assert not any(re.search(r"\bnan\b", line, re.IGNORECASE) for table in (ranked, mean_std) for line in table)
    assert "**1 finished run has no final score** (`final_score`), left out of its statistics: " \
           "`agent.policy_clip=0.2,seed=2` (NaN in metrics.json)." in markdown
    for path in (paths["csv"], paths["runs_csv"]):
        cells = [cell for row in read_rows(path) for cell in row.values()]
        assert not any(cell.lower() == "nan" for cell in cells), path.name
    rows = read_rows(paths["csv"])
    assert rows[0]["agent.policy_clip"] == "0.2" and float(rows[0]["final_score_mean"]) == 100.0
    assert rows[0]["final_score_n"] == "2"


def test_an_unreadable_metrics_json_is_named_with_its_error(tmp_path):
    """A metrics.json cut short, or not a JSON object, leaves its run without a result, and the report's
    line for it and runs.csv name the file and the error."""
    sweep_dir = write_sweep(tmp_path / "sweep", {0.1: [1.0, 2.0]})
    (sweep_dir / "agent.policy_clip=0.1,seed=1" / "metrics.json").write_text("")
    (sweep_dir / "agent.policy_clip=0.1,seed=2" / "metrics.json").write_text("[1, 2]")
    write_run(sweep_dir, {"agent.policy_clip": 0.1, "seed": 3}, {"final_score": 3.0})
    paths = write_report(sweep_dir)
    markdown = paths["markdown"].read_text()
    assert "3 runs, 1 finished, 0 failed, 2 without a result" in markdown
    assert ("- `agent.policy_clip=0.1,seed=1`: metrics.json: Expecting value: line 1 column 1 (char 0); "
            "no data yet") in markdown
    assert "- `agent.policy_clip=0.1,seed=2`: metrics.json: holds a JSON list, not an object; no data yet" in markdown
    runs = {row["run"]: row for row in read_rows(paths["runs_csv"])}
    assert runs["agent.policy_clip=0.1,seed=1"]["status"] == "unfinished"
    assert runs["agent.policy_clip=0.1,seed=1"]["error"] == "metrics.json: Expecting value: line 1 column 1 (char 0)"


def test_an_override_hydra_cannot_parse_is_left_out(tmp_path):
    """overrides.yaml is read with Hydra's parser (ppo.sweep.parse_overrides): a line it cannot parse
    leaves out that key, not the run."""
    run_dir = write_run(tmp_path / "sweep", {"seed": 1}, {"final_score": 1.0})
    (run_dir / ".hydra" / "overrides.yaml").write_text("- seed=1\n- agent.lr=[1,\n")
    (run,) = find_sweep_runs(tmp_path / "sweep")
    assert run.overrides == {"seed": 1} and run.status == "finished"


# --------------------------------------------------------------------------------------------
# Directories that hold no sweep
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["missing", "empty", "single run", "a file", "only empty dirs"])
def test_a_directory_without_sweep_runs_is_refused(tmp_path, case, capsys):
    """Exit code 2, one line on stderr that names the directory and what is expected, nothing written."""
    target = tmp_path / "target"
    if case == "empty":
        target.mkdir()
    elif case == "single run":
        target = write_run(tmp_path, {"seed": 1}, {"final_score": 1.0}).rename(target)
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
