"""Sweeps through the real command line: the joblib launcher, run dirs named by overrides, HParams and
the custom-scalars layout in each run dir, a real TensorBoard server over the sweep, the report, a
failed run, the Optuna search experiment and submitit's local executor. Tiny step budgets throughout."""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from tensorboard.plugins.hparams import api_pb2

from conftest import read_custom_scalars_layout, read_hparams, read_scalars, require_modules, run_cli
from ppo.dashboard import RESULT_METRICS
from ppo.run import local_cpu_count
from ppo.sweep import sweep_run_name, swept_keys

require_modules("hydra_plugins.hydra_joblib_launcher", "hydra_plugins.hydra_optuna_sweeper",
                "hydra_plugins.hydra_submitit_launcher", "matplotlib")

TINY = ["train.total_timesteps=1024", "train.eval_episodes=2", "train.progress=false"]
CLIPS, BATCH_SIZES, SEEDS = (0.1, 0.3), (64, 128), (1, 2)
# Run dirs are named by the swept values only, in the command line's order, seed last: TINY is left out.
RUN_NAMES = {f"policy_clip={c},batch_size={b},seed={s}" for c in CLIPS for b in BATCH_SIZES for s in SEEDS}
LOSS_AND_SCORE_TAGS = {"loss/actor", "loss/critic", "loss/total", "episode/score", "episode/mean_score_100"}


def run_dirs(sweep_dir: Path) -> dict[str, Path]:
    return {path.name: path for path in sweep_dir.iterdir() if (path / ".hydra").is_dir()}


def saved_job_num(run_dir: Path) -> int:
    """Hydra's job number of a run of a sweep, as its ``.hydra/hydra.yaml`` records it."""
    return OmegaConf.load(run_dir / ".hydra" / "hydra.yaml").hydra.job.num


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory):
    """clip ε × minibatch size × seed, 2 × 2 × 2 = 8 runs through the joblib launcher: (sweep dir, result)."""
    tmp_path = tmp_path_factory.mktemp("sweep")
    sweep_dir = tmp_path / "sweep"
    result = run_cli(tmp_path, "-m", "hydra/launcher=joblib", "agent.policy_clip=0.1,0.3", "agent.batch_size=64,128",
                     "seed=1,2", *TINY, f"hydra.sweep.dir={sweep_dir}", timeout=300)
    return sweep_dir, result


@pytest.mark.slow
def test_sweep_runs_every_setting_in_a_dir_named_by_its_overrides(small_sweep):
    """Exit 0; one run dir per job, named by its swept values seed included (the worker processes name
    them); each finished; the joblib launcher ran them in parallel worker processes with one torch
    thread each."""
    sweep_dir, result = small_sweep
    assert result.returncode == 0, result.stdout + result.stderr
    runs = run_dirs(sweep_dir)
    assert set(runs) == RUN_NAMES
    for name, run_dir in runs.items():
        assert (run_dir / "metrics.json").is_file(), name
        saved = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
        assert name == f"policy_clip={saved.agent.policy_clip},batch_size={saved.agent.batch_size},seed={saved.seed}"
        assert saved.device.torch_threads == 1
    sweep_config = OmegaConf.load(sweep_dir / "multirun.yaml")
    assert sweep_config.hydra.launcher._target_.endswith("JoblibLauncher")
    worker_pids = {path.name.split(".")[-2] for run_dir in runs.values() for path in run_dir.glob("events.out.*")}
    if local_cpu_count() >= 2:
        assert len(worker_pids) >= 2, "the runs should spread over several joblib worker processes"


@pytest.mark.slow
def test_sweep_runs_log_losses_scores_and_hparams(small_sweep):
    """Each run dir's events hold the loss and score tags, the result metrics, one HParams session
    (experiment, start with its hyperparameters, end with success) and the PPO layout; no sub-runs."""
    sweep_dir, _ = small_sweep
    for name, run_dir in run_dirs(sweep_dir).items():
        assert not [p for p in run_dir.iterdir() if p.is_dir() and list(p.glob("events.out.*"))], "no sub-runs"
        scalars = read_scalars(run_dir)
        assert LOSS_AND_SCORE_TAGS <= set(scalars), name
        assert scalars["result/final_score"][-1][1] == pytest.approx(
            json.loads((run_dir / "metrics.json").read_text())["final_score"])
        hparams = read_hparams(run_dir)
        experiment = hparams["_hparams_/experiment"].experiment
        assert {"agent.policy_clip", "agent.gae_lambda", "agent.batch_size", "seed"} <= {
            info.name for info in experiment.hparam_infos}
        assert {info.name.tag for info in experiment.metric_infos} == {f"result/{m}" for m in RESULT_METRICS}
        swept = {info.name for info in experiment.hparam_infos if info.differs}
        assert swept == {"agent.policy_clip", "agent.batch_size", "seed"}, "differs: the swept keys only"
        start = hparams["_hparams_/session_start_info"].session_start_info
        assert f"policy_clip={start.hparams['agent.policy_clip'].number_value:g}," in name
        assert f"batch_size={start.hparams['agent.batch_size'].number_value:g}," in name
        assert start.hparams["agent.gae_lambda"].number_value == pytest.approx(0.8)
        assert start.hparams["env.id"].string_value == "CartPole-v1"
        assert hparams["_hparams_/session_end_info"].session_end_info.status == api_pb2.STATUS_SUCCESS
        layout = read_custom_scalars_layout(run_dir)
        assert [category.title for category in layout.category] == [
            "Losses", "Score", "Policy update", "Critic and schedule"]


@pytest.mark.slow
def test_report_over_the_sweep(small_sweep, tmp_path):
    """python -m ppo.report (from another directory) writes the tables with one row per setting and
    both seeds in each (too few for confidence intervals), the per-run CSV, and the plots."""
    sweep_dir, _ = small_sweep
    out_dir = tmp_path / "report"
    result = run_cli(tmp_path, str(sweep_dir), "--out", str(out_dir), module="ppo.report")
    assert result.returncode == 0, result.stderr
    assert "8 runs: 8 finished, 0 failed, 0 without a result" in result.stdout

    with open(out_dir / "report.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert {(float(row["agent.policy_clip"]), int(row["agent.batch_size"])) for row in rows} == {
        (c, b) for c in CLIPS for b in BATCH_SIZES}
    assert all(row["finished"] == "2" and row["seeds"] == "1 2" and row["final_score_n"] == "2" for row in rows)
    scores = [float(row["final_score_mean"]) for row in rows]
    assert scores == sorted(scores, reverse=True), "best setting first"

    markdown = (out_dir / "report.md").read_text()
    ranked, effects, mean_std = [block.splitlines() for block in markdown.split("\n\n") if block.startswith("| ")]
    assert ranked[0].startswith("| agent.policy_clip | agent.batch_size | seeds | final score |")
    assert len(ranked) == len(effects) == len(mean_std) == 2 + 4  # header, separator, 4 settings or values
    assert all("[n/a]" in line for line in ranked[2:]), "2 seeds: no confidence intervals"
    assert all(" ± " in line for line in mean_std[2:])
    assert "![Learning curves](learning_curves.png)" in markdown

    with open(out_dir / "runs.csv", newline="") as file:
        assert {row["run"] for row in csv.DictReader(file)} == RUN_NAMES
    for png in ("learning_curves.png", "final_score.png", "sample_efficiency.png", "effects.png"):
        data = (out_dir / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert not (sweep_dir / "report.md").exists(), "--out leaves the sweep dir alone"


# --------------------------------------------------------------------------------------------
# The real TensorBoard server
# --------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _poll(fetch, ready, timeout: float = 60.0):
    """``fetch()`` until ``ready(value)``; the last value (or the last error) after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = fetch()
            if ready(value) or time.monotonic() > deadline:
                return value
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


@pytest.fixture(scope="module")
def tensorboard_url(small_sweep, tmp_path_factory):
    """A real TensorBoard server on 127.0.0.1 over the small sweep's dir; stopped afterwards."""
    sweep_dir, _ = small_sweep
    port = _free_port()
    log_file = tmp_path_factory.mktemp("tensorboard") / "tensorboard.log"
    with open(log_file, "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(sweep_dir),
                                   "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=log)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.slow
def test_tensorboard_lists_the_runs_by_override_name_with_their_tags(tensorboard_url):
    runs = _poll(lambda: _get(f"{tensorboard_url}/data/runs"), lambda runs: len(runs) >= 8)
    assert set(runs) == RUN_NAMES
    tags = _poll(lambda: _get(f"{tensorboard_url}/data/plugin/scalars/tags"),
                 lambda tags: len(tags) >= 8 and all(LOSS_AND_SCORE_TAGS <= set(t) for t in tags.values()))
    assert set(tags) == RUN_NAMES
    for run_tags in tags.values():
        assert LOSS_AND_SCORE_TAGS <= set(run_tags)
    layout = _get(f"{tensorboard_url}/data/plugin/custom_scalars/layout")
    charts = {chart["title"]: chart["multiline"]["tag"] for category in layout["category"]
              for chart in category["chart"]}
    assert charts["episode score and its 100-episode mean"] == ["^episode/score$", "^episode/mean_score_100$"]
    assert {"actor (clipped surrogate)", "critic (MSE to the returns)"} <= set(charts)


@pytest.mark.slow
def test_tensorboard_hparams_has_one_session_per_run_with_its_metrics(tensorboard_url):
    experiment = _poll(lambda: _get(f"{tensorboard_url}/data/plugin/hparams/experiment", {"experimentName": ""}),
                       lambda e: bool(e.get("hparamInfos")))
    names = [info["name"] for info in experiment["hparamInfos"]]
    assert {"agent.policy_clip", "agent.gae_lambda", "agent.batch_size", "seed"} <= set(names)
    assert names[:3] == ["agent.batch_size", "agent.policy_clip", "seed"], "the swept keys are listed first"
    metric_tags = {info["name"]["tag"] for info in experiment["metricInfos"]}
    assert {"result/final_score", "result/best_mean_score_100", "result/steps_to_solve", "result/train_seconds"} <= (
        metric_tags)

    request = {"experimentName": "", "startIndex": 0, "sliceSize": 100, "colParams": [],
               "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]}
    groups = _poll(lambda: _get(f"{tensorboard_url}/data/plugin/hparams/session_groups", request),
                   lambda g: g.get("totalSize", 0) >= 8)
    sessions = [session for group in groups["sessionGroups"] for session in group["sessions"]]
    assert {session["name"] for session in sessions} == RUN_NAMES
    assert all(session["status"] == "STATUS_SUCCESS" for session in sessions)
    for group in groups["sessionGroups"]:
        values = {metric["name"]["tag"]: metric["value"] for metric in group["metricValues"]}
        assert {"result/final_score", "result/train_seconds"} <= set(values)
        assert group["hparams"]["agent.policy_clip"] in CLIPS
        assert group["hparams"]["agent.batch_size"] in BATCH_SIZES


# --------------------------------------------------------------------------------------------
# A failed run, and a report on a sweep with failed, empty and unfinished runs
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def failed_sweep(tmp_path_factory):
    """A sweep with the basic launcher whose first run fails (minibatch larger than the rollout) and
    whose second runs: (sweep dir, result)."""
    tmp_path = tmp_path_factory.mktemp("failed_sweep")
    sweep_dir = tmp_path / "sweep"
    result = run_cli(tmp_path, "-m", "agent.batch_size=1024,64", "seed=1", *TINY, f"hydra.sweep.dir={sweep_dir}")
    return sweep_dir, result


@pytest.mark.slow
def test_a_failed_run_does_not_stop_the_sweep(failed_sweep):
    """The run after the failed one still trains; the failure is reported with its overrides and in
    failed.json and the HParams session; the command exits 1."""
    sweep_dir, result = failed_sweep
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    runs = run_dirs(sweep_dir)
    assert set(runs) == {"batch_size=1024", "batch_size=64"}
    assert (runs["batch_size=64"] / "metrics.json").is_file()
    failed = json.loads((runs["batch_size=1024"] / "failed.json").read_text())
    assert "agent.batch_size=1024" in failed["overrides"] and "seed=1" in failed["overrides"]
    assert failed["error"].startswith("ConfigError: agent.batch_size=1024 is not allowed")
    assert "1 run(s) failed" in output and "[agent.batch_size=1024 seed=1" in output
    end = read_hparams(runs["batch_size=1024"])["_hparams_/session_end_info"].session_end_info
    assert end.status == api_pb2.STATUS_FAILURE


@pytest.mark.slow
def test_report_on_a_sweep_with_failed_empty_and_unfinished_runs(failed_sweep, tmp_path):
    """The report counts only finished runs, lists the failed run with its error, a run dir with
    nothing in it as having no data, and a run without metrics.json as still running with its step."""
    import shutil

    from ppo.report.write import write_report

    source_dir, _ = failed_sweep
    sweep_dir = tmp_path / "sweep"
    shutil.copytree(source_dir, sweep_dir)
    (sweep_dir / "not-started").mkdir()
    running = sweep_dir / "batch_size=64,seed=2"
    shutil.copytree(sweep_dir / "batch_size=64", running)
    (running / "metrics.json").unlink()
    (running / ".hydra" / "overrides.yaml").write_text(
        (running / ".hydra" / "overrides.yaml").read_text().replace("seed=1", "seed=2"))

    paths = write_report(sweep_dir)
    markdown = paths["markdown"].read_text()
    assert "4 runs, 1 finished, 1 failed, 2 without a result" in markdown
    assert "## Failed runs" in markdown
    assert "- `batch_size=1024`: ConfigError: agent.batch_size=1024 is not allowed" in markdown
    assert "- `not-started`: no data yet" in markdown
    assert "- `batch_size=64,seed=2`: last logged at env step 1,024" in markdown
    with open(paths["csv"], newline="") as file:
        rows = {row["agent.batch_size"]: row for row in csv.DictReader(file)}
    assert rows["64"]["runs"] == "2" and rows["64"]["finished"] == "1" and rows["64"]["seeds"] == "1"
    assert rows["1024"]["finished"] == "0" and rows["1024"]["final_score_mean"] == ""
    assert paths["learning_curves"].is_file() and paths["final_score"].is_file()


# --------------------------------------------------------------------------------------------
# The Optuna search and submitit's local executor
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_optuna_search_experiment_runs_two_trials(tmp_path):
    """experiment=cartpole_search with 2 trials: two runs inside the search space, and the best
    trial in optimization_results.yaml is the run with the best final score."""
    sweep_dir = tmp_path / "search"
    result = run_cli(tmp_path, "experiment=cartpole_search", "hydra.sweeper.n_trials=2",
                     *TINY, f"hydra.sweep.dir={sweep_dir}", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    runs = run_dirs(sweep_dir)
    assert len(runs) == 2
    scores = {}
    for run_dir in runs.values():
        saved = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
        assert 0.05 <= saved.agent.policy_clip <= 0.4 and 0.8 <= saved.agent.gae_lambda <= 1.0
        assert saved.agent.batch_size in (16, 32, 64, 128, 256)
        assert run_dir.name == (f"policy_clip={saved.agent.policy_clip:.3g},gae_lambda={saved.agent.gae_lambda:.3g},"
                                f"batch_size={saved.agent.batch_size},job={saved_job_num(run_dir)}")
        scores[run_dir.name] = json.loads((run_dir / "metrics.json").read_text())["final_score"]
    best = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert best.best_value == pytest.approx(max(scores.values()))
    assert set(best.best_params) == {"agent.policy_clip", "agent.gae_lambda", "agent.batch_size"}


@pytest.mark.slow
def test_submitit_launcher_runs_two_jobs_with_the_local_executor(tmp_path):
    """hydra/launcher=submitit_local: the cluster launcher's code path, on this machine."""
    sweep_dir = tmp_path / "sweep"
    result = run_cli(tmp_path, "-m", "hydra/launcher=submitit_local", "seed=1,2", *TINY,
                     f"hydra.sweep.dir={sweep_dir}", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    runs = run_dirs(sweep_dir)
    assert set(runs) == {"seed=1", "seed=2"}
    assert all((run_dir / "metrics.json").is_file() for run_dir in runs.values())
    assert (sweep_dir / ".submitit").is_dir(), "submitit ran the jobs"


# --------------------------------------------------------------------------------------------
# The ready-made sweep experiments
# --------------------------------------------------------------------------------------------


def compose_with_hydra(overrides):
    """The composed config with its ``hydra`` node, as a sweep sees it."""
    from hydra import compose, initialize_config_dir

    import ppo.run

    with initialize_config_dir(config_dir=str(ppo.run.CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.slow
@pytest.mark.parametrize("name, env_id", [("cartpole_grid", "CartPole-v1"), ("acrobot_grid", "Acrobot-v1")])
def test_grid_experiments_sweep_clip_lambda_and_batch_size_in_parallel(name, env_id, tmp_path):
    """The 3 × 3 × 3 grid with 3 seeds, as a sweep (no -m needed) through the population launcher
    (one process per local core by default), one torch thread per process, run dirs named by the swept
    values only (not by the experiment, which every run has), as ``hydra.sweep.subdir`` resolves them."""
    cfg = compose_with_hydra([f"experiment={name}"])
    assert cfg.env.id == env_id
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    assert cfg.hydra.launcher._target_.endswith("PopulationLauncher") and cfg.hydra.launcher.n_jobs is None
    assert dict(cfg.hydra.sweeper.params) == {"agent.policy_clip": "0.1,0.2,0.3", "agent.gae_lambda": "0.9,0.95,0.99",
                                              "agent.batch_size": "32,64,128", "seed": "1,2,3"}
    assert cfg.hydra.sweep.dir.startswith(f"outputs/multirun/{name}/")
    assert cfg.device.torch_threads == 1

    OmegaConf.save(cfg, tmp_path / "multirun.yaml")  # what the sweep writes before its first job
    cfg.hydra.sweep.dir = str(tmp_path)
    cfg.hydra.overrides.task = ["agent.policy_clip=0.1", "agent.gae_lambda=0.9", "agent.batch_size=32", "seed=1",
                                f"experiment={name}"]
    cfg.hydra.job.num = 0
    assert cfg.hydra.sweep.subdir == "policy_clip=0.1,gae_lambda=0.9,batch_size=32,seed=1"
    assert swept_keys(tmp_path) == ["agent.policy_clip", "agent.gae_lambda", "agent.batch_size", "seed"]


def test_search_experiment_is_an_optuna_search_over_the_issue_ranges():
    cfg = compose_with_hydra(["experiment=cartpole_search"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "maximize"
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler"
    assert dict(sweeper.params) == {"agent.policy_clip": "interval(0.05, 0.4)",
                                    "agent.gae_lambda": "interval(0.8, 1.0)",
                                    "agent.batch_size": "choice(16, 32, 64, 128, 256)"}
    assert sweeper.n_jobs == local_cpu_count() and sweeper.storage is None
    assert cfg.hydra.launcher._target_.endswith("JoblibLauncher")
    assert cfg.env.id == "CartPole-v1"


@pytest.mark.parametrize("objective, direction", [("final_score", "maximize"), ("auc", "maximize"),
                                                  ("best_mean_score_100", "maximize"), ("steps_to_solve", "minimize")])
def test_search_direction_goes_with_the_objective(objective, direction):
    cfg = compose_with_hydra(["experiment=cartpole_search", f"train.objective={objective}"])
    assert cfg.hydra.sweeper.direction == direction


# --------------------------------------------------------------------------------------------
# Run names, from the sweep's multirun.yaml
# --------------------------------------------------------------------------------------------

BASIC_SWEEPER = "basic"  # the hydra/sweeper choice, as multirun.yaml records it
OPTUNA_SWEEPER = "optuna"


def write_sweep(sweep_dir: Path, task=(), params=None, sweeper=BASIC_SWEEPER) -> Path:
    """A ``multirun.yaml`` with the parts that name runs: the command line's overrides and the sweeper."""
    OmegaConf.save({"hydra": {"overrides": {"task": list(task)}, "sweeper": {"params": params},
                              "runtime": {"choices": {"hydra/sweeper": sweeper}}}},
                   sweep_dir / "multirun.yaml")
    return sweep_dir


def test_run_names_hold_the_swept_values_by_leaf_name_seed_last(tmp_path):
    """Keys with one value in every run (train.total_timesteps) stay out; a group is named as typed."""
    sweep = write_sweep(tmp_path, ["seed=1,2", "agent.policy_clip=0.1,0.2", "train.total_timesteps=1024",
                                   "env=acrobot,cartpole"])
    assert swept_keys(sweep) == ["agent.policy_clip", "env", "seed"]
    job = ["seed=2", "agent.policy_clip=0.1", "train.total_timesteps=1024", "env=acrobot"]
    assert sweep_run_name(sweep, job, 3) == "policy_clip=0.1,env=acrobot,seed=2"


def test_run_names_take_the_sweepers_params_first_and_full_keys_where_leaves_clash(tmp_path):
    sweep = write_sweep(tmp_path, ["agent.lr=0.1,0.2", "+extra.lr=1,2"], params={"seed": "1,2,3", "agent.gamma": "0.9,0.99"})
    assert swept_keys(sweep) == ["agent.gamma", "agent.lr", "extra.lr", "seed"]
    job = ["seed=3", "agent.gamma=0.99", "agent.lr=0.2", "+extra.lr=1"]
    assert sweep_run_name(sweep, job, 0) == "gamma=0.99,agent.lr=0.2,extra.lr=1,seed=3"


def test_run_names_stay_unique_where_values_repeat(tmp_path):
    """seed=1,1 runs twice with the same values: the job number tells the runs apart."""
    sweep = write_sweep(tmp_path, ["seed=1,1", "agent.lr=0.1,0.2"])
    assert swept_keys(sweep) == ["agent.lr"]
    names = {sweep_run_name(sweep, [f"seed=1", f"agent.lr={lr}"], num)
             for num, lr in enumerate(["0.1", "0.1", "0.2", "0.2"])}
    assert names == {"lr=0.1,job=0", "lr=0.1,job=1", "lr=0.2,job=2", "lr=0.2,job=3"}


def test_a_key_defined_again_counts_as_its_last_definition(tmp_path):
    """The experiment sweeps the seed, the command line fixes it: every run has seed=5."""
    sweep = write_sweep(tmp_path, ["agent.lr=0.1,0.2", "seed=5"], params={"seed": "1,2,3"})
    assert swept_keys(sweep) == ["agent.lr"]
    assert sweep_run_name(sweep, ["seed=1", "agent.lr=0.2", "seed=5"], 4) == "lr=0.2,job=4"


def test_runs_of_a_sweep_without_swept_keys_are_named_by_job_number(tmp_path):
    assert sweep_run_name(write_sweep(tmp_path, ["train.total_timesteps=1024"]), ["train.total_timesteps=1024"], 0) \
        == "job=0"
    assert swept_keys(tmp_path / "nowhere") == [] and sweep_run_name(tmp_path / "nowhere", ["seed=1"], 4) == "job=4"


def test_optuna_run_names_round_drawn_values_and_end_with_the_job_number(tmp_path):
    """The sampler may draw the same setting twice: the job number keeps the names apart."""
    sweep = write_sweep(tmp_path, ["train.total_timesteps=1024", "agent.lr=tag(log, interval(1e-4, 1e-2))"],
                        params={"agent.policy_clip": "interval(0.05, 0.4)", "agent.batch_size": "choice(16, 32)"},
                        sweeper=OPTUNA_SWEEPER)
    assert swept_keys(sweep) == ["agent.policy_clip", "agent.batch_size", "agent.lr"]
    job = ["agent.policy_clip=0.23417370744327137", "agent.batch_size=32", "agent.lr=0.0012345678",
           "train.total_timesteps=1024"]
    assert sweep_run_name(sweep, job, 7) == "policy_clip=0.234,batch_size=32,lr=0.00123,job=7"


def test_run_names_make_no_subdirectories(tmp_path):
    sweep = write_sweep(tmp_path, ["env.id=ALE/Pong-v5,ALE/Breakout-v5", "seed=range(1,3)"])
    assert sweep_run_name(sweep, ["env.id=ALE/Pong-v5", "seed=2"], 1) == "id=ALE_Pong-v5,seed=2"
