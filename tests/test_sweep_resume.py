"""A sweep survives being killed: ``python -m ppo.run resume=<sweep dir>`` (or the original command with
``hydra.sweep.dir=<sweep dir>``) keeps finished runs as they are, resumes stopped ones on one step axis,
refuses what it cannot honour in one line and writes nothing then; an Optuna search with a database goes
on with its study; submitit's preemption signal checkpoints the run and its requeued job resumes."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import read_scalars, require_modules, run_cli
from ppo.rundir import CHECKPOINT_FILE, METRICS_FILE, read_metrics
from ppo.sweep import lock_sweep, relaunch_arguments, unlock_sweep

require_modules("hydra_plugins.hydra_joblib_launcher", "hydra_plugins.hydra_optuna_sweeper",
                "hydra_plugins.hydra_submitit_launcher", "matplotlib")

QUIET = ["train.progress=false", "train.checkpoint_every=1", "train.eval_episodes=2"]


def launch(cwd: Path, *args: str) -> subprocess.Popen:
    """``python -m ppo.run <args>`` in a process group of its own, to be killed as a whole."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.Popen([sys.executable, "-m", "ppo.run", *args], cwd=cwd, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_when(process: subprocess.Popen, ready, timeout: float = 240) -> None:
    """SIGKILL ``process``'s group as soon as ``ready()`` holds (what a preempted node does to a sweep)."""
    deadline = time.time() + timeout
    while not ready():
        assert process.poll() is None, "the sweep ended before the moment to kill it"
        assert time.time() < deadline, "the moment to kill the sweep never came"
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def files_of(run_dir: Path) -> dict[str, str]:
    """A run's results by relative path: metrics, checkpoints, event files (Hydra's record aside)."""
    return {str(path.relative_to(run_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(run_dir.rglob("*")) if path.is_file() and ".hydra" not in path.parts
            and path.name != "run.log"}


def loss_steps(run_dir: Path) -> list[int]:
    return [step for step, _ in read_scalars(run_dir)["loss/total"]]


def assert_one_axis(run_dir: Path, budget: int, rollout_size: int = 512) -> None:
    """loss/total at every update's env step, once each, up to the budget: no duplicate, no gap."""
    assert loss_steps(run_dir) == list(range(rollout_size, budget + 1, rollout_size))


@pytest.fixture(scope="module")
def killed_sweep(tmp_path_factory):
    """A 3-run joblib sweep (seeds 1-3) SIGKILLed once a run has finished and a later one has a
    checkpoint: (sweep dir, the run dirs' states at the kill, the finished runs' files)."""
    tmp_path = tmp_path_factory.mktemp("killed")
    sweep_dir = tmp_path / "sweep"
    process = launch(tmp_path, "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=1,2,3",
                     "train.total_timesteps=40960", *QUIET, f"hydra.sweep.dir={sweep_dir}")
    kill_when(process, lambda: (sweep_dir / "seed=3" / CHECKPOINT_FILE).is_file())
    finished = {path.parent.name: files_of(path.parent) for path in sweep_dir.glob(f"*/{METRICS_FILE}")}
    assert finished and "seed=3" not in finished
    return sweep_dir, finished


@pytest.mark.slow
def test_a_killed_sweep_resumes_keeping_finished_runs_and_resuming_stopped_ones(killed_sweep, tmp_path):
    sweep_dir, finished = killed_sweep
    result = run_cli(tmp_path, f"resume={sweep_dir}", timeout=300)
    assert result.returncode == 0, result.stderr
    for name in ("seed=1", "seed=2", "seed=3"):
        assert read_metrics(sweep_dir / name)["global_step"] == 40960
        assert_one_axis(sweep_dir / name, 40960)
    for name, files in finished.items():
        assert files_of(sweep_dir / name) == files, f"{name} finished before the kill, and stays as it was"
    assert "resumed from their checkpoints (" in result.stdout and "seed=3)" in result.stdout
    report = run_cli(tmp_path, str(sweep_dir), module="ppo.report", timeout=120)
    assert report.returncode == 0, report.stderr
    assert "3 runs, 3 finished" in (sweep_dir / "report.md").read_text()


@pytest.mark.slow
def test_the_original_command_into_the_same_dir_keeps_every_finished_run(killed_sweep, tmp_path):
    sweep_dir, _ = killed_sweep
    run_cli(tmp_path, f"resume={sweep_dir}", timeout=300)  # finish it, whichever test runs first
    before = {name: files_of(sweep_dir / name) for name in ("seed=1", "seed=2", "seed=3")}
    result = run_cli(tmp_path, "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=1,2,3",
                     "train.total_timesteps=40960", *QUIET, f"hydra.sweep.dir={sweep_dir}", timeout=300)
    assert result.returncode == 0, result.stderr
    assert {name: files_of(sweep_dir / name) for name in before} == before
    assert "3 kept their results" in result.stdout + result.stderr


@pytest.mark.slow
def test_a_raised_budget_trains_finished_runs_on_to_it(killed_sweep, tmp_path):
    sweep_dir, _ = killed_sweep
    run_cli(tmp_path, f"resume={sweep_dir}", timeout=300)
    result = run_cli(tmp_path, f"resume={sweep_dir}", "train.total_timesteps=51200", timeout=300)
    assert result.returncode == 0, result.stderr
    for name in ("seed=1", "seed=2", "seed=3"):
        assert read_metrics(sweep_dir / name)["budget"] == 51200
        assert_one_axis(sweep_dir / name, 51200)


@pytest.mark.slow
def test_what_a_resume_cannot_honour_is_one_line_and_writes_nothing(killed_sweep, tmp_path):
    """Another override beside resume, a second command on a sweep in progress (its lock held), and a
    checkpoint trained with another config than its job composes now (a code or config change): each
    is refused in one line with exit status 2, the sweep dir untouched and still a report's sweep."""
    sweep_dir, _ = killed_sweep
    run_cli(tmp_path, f"resume={sweep_dir}", timeout=300)
    before = {path: path.stat().st_mtime_ns for path in sweep_dir.rglob("*") if path.is_file()}

    def refused(*args: str) -> str:
        result = run_cli(tmp_path, *args)
        assert result.returncode == 2, result.stdout + result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        return result.stderr

    assert "only train.total_timesteps, train.progress may be given" in refused(f"resume={sweep_dir}", "agent.lr=0.1")
    lock_sweep(sweep_dir)
    try:
        assert "another command is running this sweep" in refused(f"resume={sweep_dir}")
    finally:
        unlock_sweep(sweep_dir)
    checkpoint_path = sweep_dir / "seed=2" / CHECKPOINT_FILE
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    checkpoint["config"]["agent"]["gae_lambda"] = 0.5  # as if trained before the preset changed
    torch.save(checkpoint, checkpoint_path)
    before[checkpoint_path] = checkpoint_path.stat().st_mtime_ns
    message = refused(f"resume={sweep_dir}")
    assert "agent.gae_lambda=0.8 is not allowed in" in message and "trained with agent.gae_lambda=0.5" in message
    assert {path: path.stat().st_mtime_ns for path in sweep_dir.rglob("*") if path.is_file()} == before
    assert run_cli(tmp_path, str(sweep_dir), module="ppo.report").returncode == 0


def test_resume_of_a_sweep_dir_is_the_recorded_command_into_that_dir(tmp_path):
    """From multirun.yaml: Hydra's overrides and the task's, the sweep dir last given, a larger budget
    in place of the recorded one; a dir without that record resumes as a single run (None)."""
    (tmp_path / "multirun.yaml").write_text(
        "hydra:\n  overrides:\n    hydra: [hydra/launcher=joblib, hydra.sweep.dir=old, hydra.mode=MULTIRUN]\n"
        "    task: ['seed=1,2', train.total_timesteps=1024]\n  runtime:\n    choices: {hydra/sweeper: basic}\n"
        "  sweeper: {_target_: hydra._internal.core_plugins.basic_sweeper.BasicSweeper}\n")
    assert relaunch_arguments([f"resume={tmp_path}", "train.total_timesteps=2048"]) == [
        "--multirun", "hydra/launcher=joblib", "seed=1,2", f"hydra.sweep.dir={tmp_path}", "train.total_timesteps=2048"]
    assert relaunch_arguments([f"resume={tmp_path / 'seed=1'}"]) is None


@pytest.mark.slow
def test_a_killed_optuna_search_with_a_database_goes_on_with_its_study(tmp_path):
    """4 trials in batches of 2, killed while the second batch trains: the resume counts the first
    batch's trials, runs the ones left running again in their own dirs (which resume), and asks for
    nothing more; every trial ends complete, job numbers 0-3. Without storage, resume is refused."""
    import optuna

    sweep_dir, storage = tmp_path / "search", f"sqlite:///{tmp_path / 'study.db'}"
    command = ["experiment=cartpole_search", "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2",
               "train.total_timesteps=30720", *QUIET, f"hydra.sweeper.storage={storage}",
               f"hydra.sweep.dir={sweep_dir}"]
    process = launch(tmp_path, *command)
    kill_when(process, lambda: len(list(sweep_dir.glob(f"*job=[23]/{CHECKPOINT_FILE}"))) == 2)
    result = run_cli(tmp_path, f"resume={sweep_dir}", timeout=300)
    assert result.returncode == 0, result.stderr
    trials = optuna.load_study(study_name="cartpole_search", storage=storage).trials
    assert [(trial.number, trial.state.name) for trial in trials] == [(n, "COMPLETE") for n in range(4)]
    run_dirs = sorted(path.parent for path in sweep_dir.glob("*/.hydra"))
    assert sorted(path.name.rpartition("job=")[2] for path in run_dirs) == ["0", "1", "2", "3"]
    for run_dir in run_dirs:
        assert_one_axis(run_dir, 30720, rollout_size=256)
    assert "2 left running are run again" in result.stdout + result.stderr

    in_memory = tmp_path / "in_memory"
    (in_memory / "job=0").mkdir(parents=True)
    (in_memory / "multirun.yaml").write_text((sweep_dir / "multirun.yaml").read_text().replace(storage, "null"))
    refusal = run_cli(tmp_path, f"resume={in_memory}")
    assert refusal.returncode == 2 and "hydra.sweeper.storage" in refusal.stderr


@pytest.mark.slow
def test_submitits_preemption_signal_checkpoints_and_the_requeued_job_resumes(tmp_path):
    """SIGUSR2 (submitit's SUBMITIT_PREEMPT_SIGNAL) to a submitit_local job: the run stops after its
    update with a checkpoint, submitit requeues the job, and the job resumes from the checkpoint: one
    run, on one step axis, to its budget."""
    sweep_dir = tmp_path / "sweep"
    process = subprocess.Popen([sys.executable, "-m", "ppo.run", "-m", "hydra/launcher=submitit_local", "seed=1,2",
                                "train.total_timesteps=61440", *QUIET, f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run_dir = sweep_dir / "seed=1"
    deadline = time.time() + 120
    while not (run_dir / CHECKPOINT_FILE).is_file():
        assert time.time() < deadline and process.poll() is None
        time.sleep(0.1)
    job_pid = int(next(run_dir.glob("events.out.tfevents.*")).name.split(".")[5])
    os.kill(job_pid, signal.SIGUSR2)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    log = (run_dir / "run.log").read_text()
    assert "SIGUSR2: stopped at env step" in log and "Resuming CartPole-v1" in log
    assert read_metrics(run_dir)["global_step"] == 61440
    assert_one_axis(run_dir, 61440)
