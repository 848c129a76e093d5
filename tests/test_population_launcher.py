"""``hydra/launcher=population`` (hydra_plugins/ppo_launchers): how it cuts a sweep into populations, that
Hydra finds it from this checkout and from a regular install, and, through the real command line with tiny
budgets, that its run dirs hold what a single run's do, that its job values come back in the order of the
jobs, that a refused member fails alone, that it refuses what it cannot honour in one line, and that a
sweep it ran (finished, or killed mid-way) goes on with ``hydra.sweep.dir=<same>`` or ``resume=<sweep dir>``."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import read_scalars, require_modules, run_cli
from hydra_plugins.ppo_launchers.population import split_into_populations
from ppo.run import CONF_DIR
from ppo.rundir import CHECKPOINT_FILE, FAILED_FILE, METRICS_FILE, read_metrics
from ppo.state import objective_value

CHECKOUT = Path(__file__).resolve().parent.parent
POPULATION = ["hydra/launcher=population", "hydra.launcher.n_jobs=1"]
TINY = ["train.total_timesteps=2048", "train.eval_episodes=1", "train.progress=false"]
VALID_RUNS = {f"policy_clip={clip},seed={seed}" for clip in (0.1, 0.3) for seed in (1, 2)}
REFUSED_RUNS = {"policy_clip=-1,seed=1", "policy_clip=-1,seed=2"}

# --------------------------------------------------------------------------------------------
# Cutting a sweep into populations
# --------------------------------------------------------------------------------------------


def sizes(populations: list[list]) -> list[int]:
    return [len(population) for population in populations]


def test_a_group_larger_than_max_members_is_cut_into_near_equal_populations_in_job_order():
    populations = split_into_populations([list(range(10))], n_jobs=1, max_members=4)
    assert sizes(populations) == [4, 3, 3]
    assert sum(populations, []) == list(range(10))


def test_a_group_is_cut_to_keep_every_process_busy():
    """27 compatible jobs on 2 processes: two populations, not one beside an idle core."""
    assert sizes(split_into_populations([list(range(27))], n_jobs=2, max_members=32)) == [14, 13]
    assert sizes(split_into_populations([list(range(27))], n_jobs=1, max_members=32)) == [27]


def test_groups_share_the_processes_by_size_and_never_mix():
    populations = split_into_populations([["a"] * 6, ["b"] * 2, ["c"]], n_jobs=3, max_members=32)
    assert populations == [["a"] * 3, ["a"] * 3, ["b"] * 2, ["c"]]


def test_more_processes_than_jobs_gives_populations_of_one_never_empty_ones():
    assert split_into_populations([[1, 2], [3]], n_jobs=8, max_members=32) == [[1], [2], [3]]
    assert split_into_populations([], n_jobs=2, max_members=32) == []


# --------------------------------------------------------------------------------------------
# Discovery: this checkout (the README's editable install), and a regular install
# --------------------------------------------------------------------------------------------

DISCOVER = ("from hydra.core.plugins import Plugins; from hydra.plugins.launcher import Launcher; "
            "import sys; print([f'{c.__module__}.{c.__name__}' for c in Plugins.instance().discover(Launcher)]); "
            "print(sys.modules['hydra_plugins.ppo_launchers.population'].__file__)")


def test_hydra_discovers_the_launcher_and_composes_its_config():
    from hydra import compose, initialize_config_dir
    from hydra.core.plugins import Plugins
    from hydra.plugins.launcher import Launcher

    # Hydra's scan loads its own copy of the module: the class is found by name
    found = {f"{plugin.__module__}.{plugin.__name__}" for plugin in Plugins.instance().discover(Launcher)}
    assert "hydra_plugins.ppo_launchers.population.PopulationLauncher" in found
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        config = compose(config_name="config", overrides=["hydra/launcher=population"], return_hydra_config=True)
    launcher = config.hydra.launcher
    assert launcher._target_ == "hydra_plugins.ppo_launchers.population.PopulationLauncher"
    assert launcher.n_jobs is None and launcher.max_members == 32


@pytest.mark.slow
def test_a_regular_install_is_discovered_without_the_checkout(tmp_path):
    """``pip install --target`` of a copy of the project (no editable hook, no checkout on the path):
    Hydra's plugin scan finds the launcher in the installed files."""
    source = tmp_path / "source"  # a copy: pip builds in the source tree, and the checkout stays clean
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(CHECKOUT / name, source / name)
    for name in ("ppo", "conf", "hydra_plugins"):
        shutil.copytree(CHECKOUT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "installed"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, capture_output=True, timeout=300)
    without_checkout = (f"import sys; sys.path[:] = [p for p in sys.path if p.rstrip('/') != {str(CHECKOUT)!r}]; "
                        f"sys.path.insert(0, {str(target)!r}); {DISCOVER}")
    result = subprocess.run([sys.executable, "-c", without_checkout], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    found, module_file = result.stdout.strip().splitlines()[-2:]
    assert "hydra_plugins.ppo_launchers.population.PopulationLauncher" in found
    assert Path(module_file).is_relative_to(target)


# --------------------------------------------------------------------------------------------
# A sweep through the command line
# --------------------------------------------------------------------------------------------


def files_of(run_dir: Path) -> dict[str, str]:
    """A run's results by relative path (Hydra's record and the log aside)."""
    return {str(path.relative_to(run_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(run_dir.rglob("*")) if path.is_file() and ".hydra" not in path.parts
            and path.name != "run.log"}


@pytest.fixture(scope="module")
def population_sweep(tmp_path_factory):
    """clip ε 0.1, 0.3 and a refused -1 × seeds 1, 2: 4 members in one process, 2 refused: (sweep dir,
    result, the finished runs' files)."""
    tmp_path = tmp_path_factory.mktemp("population")
    sweep_dir = tmp_path / "sweep"
    result = run_cli(tmp_path, "-m", *POPULATION, "agent.policy_clip=0.1,0.3,-1", "seed=1,2", *TINY,
                     f"hydra.sweep.dir={sweep_dir}", timeout=300)
    files = {name: files_of(sweep_dir / name) for name in VALID_RUNS}
    return sweep_dir, result, files


@pytest.mark.slow
def test_each_member_run_dir_holds_what_a_single_runs_does(population_sweep):
    sweep_dir, result, _ = population_sweep
    assert "Traceback" not in result.stdout + result.stderr
    assert {path.parent.name for path in sweep_dir.glob("*/.hydra")} == VALID_RUNS | REFUSED_RUNS
    for name in VALID_RUNS:
        run_dir = sweep_dir / name
        for record in ("config.yaml", "hydra.yaml", "overrides.yaml"):
            assert (run_dir / ".hydra" / record).is_file(), (name, record)
        saved = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
        assert name == f"policy_clip={saved.agent.policy_clip},seed={saved.seed}"
        assert (run_dir / CHECKPOINT_FILE).is_file() and read_metrics(run_dir)["global_step"] == 2048
        assert not (run_dir / FAILED_FILE).exists()
        assert read_scalars(run_dir)["loss/total"][-1][0] == 2048
        log = (run_dir / "run.log").read_text()
        assert f"Training CartPole-v1 in {run_dir}" in log and "Done: greedy score" in log, name


@pytest.mark.slow
def test_a_refused_member_fails_alone_and_the_sweep_exits_1(population_sweep):
    sweep_dir, result, _ = population_sweep
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 run(s) failed" in result.stdout + result.stderr
    for name in REFUSED_RUNS:
        failed = json.loads((sweep_dir / name / FAILED_FILE).read_text())
        assert failed["error"].startswith("ConfigError: agent.policy_clip=-1.0 is not allowed")
        assert not (sweep_dir / name / CHECKPOINT_FILE).exists(), "a refused member never trains"
    assert all(read_metrics(sweep_dir / name) is not None for name in VALID_RUNS)


@pytest.mark.slow
def test_a_finished_population_sweep_run_again_into_its_dir_keeps_every_run(population_sweep):
    sweep_dir, _, files = population_sweep
    result = run_cli(sweep_dir.parent, "-m", *POPULATION, "agent.policy_clip=0.1,0.3,-1", "seed=1,2", *TINY,
                     f"hydra.sweep.dir={sweep_dir}", timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output  # the refused members fail again
    for name in VALID_RUNS:
        assert f"Kept: {sweep_dir / name} finished earlier" in output
        assert files_of(sweep_dir / name) == files[name], f"{name} was trained again"


@pytest.mark.slow
def test_job_values_come_back_in_the_order_of_the_jobs(tmp_path):
    """The Optuna sweeper zips the launcher's returns with its trials: each trial's value in the study is
    the objective of the run dir with its job number, and its parameters are that run's."""
    require_modules("hydra_plugins.hydra_optuna_sweeper", "optuna", "sqlalchemy", extras="sweep,sweep-storage")
    import optuna

    sweep_dir, storage = tmp_path / "search", f"sqlite:///{tmp_path / 'study.db'}"
    result = run_cli(tmp_path, "experiment=cartpole_search", "hydra/launcher=population", "hydra.sweeper.n_trials=4",
                     "hydra.sweeper.n_jobs=4", *TINY, f"hydra.sweeper.storage={storage}",
                     f"hydra.sweep.dir={sweep_dir}", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    runs = {OmegaConf.load(path / "hydra.yaml").hydra.job.num: path.parent for path in sweep_dir.glob("*/.hydra")}
    trials = optuna.load_study(study_name="cartpole_search", storage=storage).trials
    assert sorted(trial.number for trial in trials) == sorted(runs) == [0, 1, 2, 3]
    values = [objective_value(read_metrics(runs[trial.number])) for trial in trials]
    assert len(set(values)) > 1, "equal values could not tell the order"
    for trial, value in zip(trials, values):
        saved = OmegaConf.load(runs[trial.number] / ".hydra" / "config.yaml")
        assert trial.value == pytest.approx(value)
        assert trial.params["agent.batch_size"] == saved.agent.batch_size
        assert trial.params["agent.policy_clip"] == pytest.approx(saved.agent.policy_clip)


@pytest.mark.slow
def test_a_population_killed_mid_way_resumes_every_member_from_its_checkpoint(tmp_path):
    sweep_dir = tmp_path / "sweep"
    command = [sys.executable, "-m", "ppo.run", "-m", *POPULATION, "seed=1,2,3", "train.total_timesteps=40960",
               "train.checkpoint_every=1", "train.eval_episodes=1", "train.progress=false",
               f"hydra.sweep.dir={sweep_dir}"]
    env = {key: value for key, value in os.environ.items() if key != "HYDRA_FULL_ERROR"}
    process = subprocess.Popen(command, cwd=tmp_path, env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (sweep_dir / "seed=1" / CHECKPOINT_FILE).is_file():
        assert process.poll() is None and time.time() < deadline, "the sweep ended before the moment to kill it"
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not list(sweep_dir.glob(f"*/{METRICS_FILE}")), "killed before any member finished"

    result = run_cli(tmp_path, f"resume={sweep_dir}", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    for seed in (1, 2, 3):
        run_dir = sweep_dir / f"seed={seed}"
        assert read_metrics(run_dir)["global_step"] == 40960
        steps = [step for step, _ in read_scalars(run_dir)["loss/total"]]
        assert steps == list(range(512, 40960 + 1, 512)), "one step axis: no update twice, none missing"


# --------------------------------------------------------------------------------------------
# What it cannot honour, refused in one line
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("override, key", [("hydra.job.chdir=true", "hydra.job.chdir"),
                                           ("+hydra.job.env_set.OMP_NUM_THREADS=2", "hydra.job.env_set"),
                                           ("hydra.launcher.max_members=0", "hydra.launcher.max_members")])
def test_what_it_cannot_honour_is_refused_in_one_line_before_any_run(override, key, tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = run_cli(tmp_path, "-m", *POPULATION, "seed=1,2", override, *TINY, f"hydra.sweep.dir={sweep_dir}")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(f"error: {key}=") and "is not allowed" in result.stderr
    assert not list(sweep_dir.glob("*/.hydra")), "no job started"


@pytest.mark.slow
def test_another_task_function_is_refused_in_one_line(tmp_path):
    (tmp_path / "other_app.py").write_text(
        "import hydra\n\n@hydra.main(version_base=None)\ndef task(cfg):\n    print('ran')\n\n"
        "if __name__ == '__main__':\n    task()\n")
    result = subprocess.run([sys.executable, "other_app.py", "-m", "hydra/launcher=population", "+x=1,2"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == ("error: hydra/launcher=population is not allowed for the task __main__.task: "
                                     "it trains ppo.run's jobs only (python -m ppo.run)")
    assert "ran" not in result.stdout
