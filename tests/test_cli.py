"""``python -m ppo.run``: the real command line, in a subprocess, from an unrelated directory."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf

from conftest import read_scalars, run_cli

EXPECTED_TAGS = {
    "loss/actor", "loss/critic", "loss/total", "episode/score", "episode/length", "eval/score",
    "diagnostics/entropy", "diagnostics/approx_kl", "diagnostics/clip_fraction",
    "diagnostics/explained_variance", "time/steps_per_second",
}


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """One CLI run with the defaults and a small budget: (run dir, CompletedProcess)."""
    tmp_path = tmp_path_factory.mktemp("cli")
    run_dir = tmp_path / "run"
    result = run_cli(tmp_path, "train.total_timesteps=2048", "train.eval_episodes=2", "train.progress=false",
                     f"hydra.run.dir={run_dir}")
    return run_dir, result


def test_cli_run_exits_zero(default_run):
    """A valid command line trains and exits 0 without a traceback."""
    _, result = default_run
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_cli_run_says_where_it_logs_at_its_start_and_whether_it_solved_at_its_end(default_run):
    """The first line names the run dir, the env, the key hyperparameters and the TensorBoard command;
    the last says whether the run reached its solved score; run.log holds both."""
    run_dir, result = default_run
    lines = result.stdout.strip().splitlines()
    first, last = lines[0], lines[-1]
    assert f"Training CartPole-v1 in {run_dir}" in first and f"tensorboard --logdir {run_dir}" in first
    assert "16 envs x 32 steps, minibatch 256" in first and "solved at 475" in first
    assert "NOT solved" in last and "solved is 475" in last and "greedy score" in last
    log = (run_dir / "run.log").read_text()
    assert "Training CartPole-v1" in log and "NOT solved" in log


def test_cli_run_logs_every_documented_tag(default_run):
    """The event file holds losses, episode statistics, the evaluation, diagnostics and throughput."""
    run_dir, _ = default_run
    scalars = read_scalars(run_dir)
    assert EXPECTED_TAGS <= set(scalars)
    assert scalars["loss/actor"][-1][0] == 2048  # logged against env steps


def test_cli_run_saves_the_resolved_config_and_checkpoint(default_run):
    """.hydra/config.yaml holds the composed config with the override; checkpoints/last.pt exists;
    the metrics file is written."""
    run_dir, _ = default_run
    saved = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    assert saved.train.total_timesteps == 2048
    assert saved.train.eval_episodes == 2
    assert saved.agent.policy_clip == 0.2 and saved.env.id == "CartPole-v1"
    assert (run_dir / "checkpoints" / "last.pt").is_file()
    assert (run_dir / "metrics.json").is_file()


@pytest.mark.slow
def test_cli_group_choices_and_key_overrides(tmp_path):
    """env=acrobot network=large agent.policy_clip=0.1 seed=3 all reach the trained run."""
    run_dir = tmp_path / "run"
    result = run_cli(tmp_path, "env=acrobot", "network=large", "agent.policy_clip=0.1", "seed=3",
                     "train.total_timesteps=256", "train.eval_episodes=1", "train.progress=false",
                     f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr
    saved = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    assert saved.env.id == "Acrobot-v1"
    assert list(saved.network.hidden_sizes) == [256, 256] and saved.network.activation == "relu"
    assert saved.agent.policy_clip == 0.1 and saved.seed == 3
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert state["config"]["env"]["id"] == "Acrobot-v1" and state["config"]["seed"] == 3
    assert state["obs_shape"] == [6] and state["action_space"] == {"n": 3}
    assert state["actor"]["body.0.weight"].shape == (256, 6)


@pytest.mark.slow
def test_cli_bad_value_is_one_line_error_and_trains_nothing(tmp_path):
    """agent.policy_clip=-0.1: exit status 2 (as the README documents), a one-line message on stderr
    naming the key, no traceback, and no checkpoint."""
    run_dir = tmp_path / "bad"
    result = run_cli(tmp_path, "agent.policy_clip=-0.1", f"hydra.run.dir={run_dir}")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "agent.policy_clip" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert not (run_dir / "checkpoints").exists()


@pytest.mark.slow
def test_cli_unknown_group_option_fails(tmp_path):
    """env=nope is no preset: non-zero exit, the message names the option, no run directory."""
    run_dir = tmp_path / "bad"
    result = run_cli(tmp_path, "env=nope", f"hydra.run.dir={run_dir}")
    assert result.returncode != 0
    assert "nope" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not run_dir.exists()


@pytest.mark.slow
def test_cli_print_config_does_not_train(tmp_path):
    """--cfg job prints the composed config with the overrides and starts no run."""
    run_dir = tmp_path / "run"
    result = run_cli(tmp_path, "--cfg", "job", "agent.policy_clip=0.15", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr
    printed = OmegaConf.create(result.stdout)
    assert printed.agent.policy_clip == 0.15 and printed.env.id == "CartPole-v1"
    assert not run_dir.exists()


@pytest.mark.slow
def test_cli_help_shows_presets_experiments_sweeps_and_the_other_commands(tmp_path):
    """--help (conf/hydra/help/ppo.yaml): every group with its presets as the files in conf/ hold them,
    the experiments, sweeps, resume, evaluate, report, where keys are documented, and the config
    composed with the command line's overrides. No run starts."""
    from ppo.run import CONF_DIR

    result = run_cli(tmp_path, "--help", "agent.policy_clip=0.15")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for group in ("agent", "network", "env", "device", "experiment"):
        presets = sorted(path.stem for path in (CONF_DIR / group).glob("*.yaml"))
        assert f"\n{group}: {', '.join(presets)}\n" in text, group
    for piece in ("python -m ppo.run experiment=NAME", "python -m ppo.run -m agent.policy_clip=0.1,0.2 seed=1,2,3",
                  "experiment=cartpole_grid", "experiment=cartpole_search",
                  "resume=<run dir or its checkpoints/last.pt>",
                  "python -m ppo.evaluate <run dir> [episodes=N] [video=true]", "python -m ppo.report <sweep dir>",
                  "python -m ppo.run --cfg job", "ppo/config.py", "  policy_clip: 0.15\n"):
        assert piece in text, piece
    assert "powered by Hydra" not in text, "Hydra's generic help is replaced"
    assert not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_cli_experiment_runs(tmp_path):
    """experiment=tutorial, as documented in conf/experiment/tutorial.yaml, is accepted by the CLI."""
    run_dir = tmp_path / "run"
    result = run_cli(tmp_path, "experiment=tutorial", "train.total_timesteps=40", "train.eval_episodes=1",
                     "train.progress=false", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr
    assert OmegaConf.load(run_dir / ".hydra" / "config.yaml").env.num_envs == 1


@pytest.mark.slow
def test_benchmark_command_prints_a_table_of_its_runs(tmp_path):
    """python -m benchmarks.benchmark runs the real CLI once per seed and prints a Markdown table with a
    row per seed and a median row (a tiny budget: the runs do not solve the env)."""
    checkout = os.path.join(os.path.dirname(__file__), os.pardir)  # benchmarks/ is not installed
    result = subprocess.run([sys.executable, "-m", "benchmarks.benchmark", "--seeds", "1", "2", "--solve-only=false",
                             "--", "train.total_timesteps=512"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": os.path.abspath(checkout)})
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert [row.split("|")[1].strip() for row in rows[2:]] == ["1", "2", "median"]
    assert "0/2 solved" in rows[-1]


@pytest.mark.slow
def test_env_id_under_another_env_preset_says_which_settings_it_kept(tmp_path):
    """env.id=MountainCar-v0 under the cartpole preset: the solved score is MountainCar's own (-110,
    gymnasium's threshold), and a warning names the preset made for the id, whose normalization this
    run does not have."""
    run_dir = tmp_path / "run"
    result = run_cli(tmp_path, "env.id=MountainCar-v0", "train.total_timesteps=512", "train.eval_episodes=1",
                     "train.progress=false", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr
    assert "env.id=MountainCar-v0 replaces the id of the env preset cartpole (CartPole-v1)" in result.stdout
    assert "env=mountain_car is the preset made for MountainCar-v0" in result.stdout
    assert "solved at -110" in result.stdout


@pytest.mark.slow
def test_resume_accepts_the_run_dir_or_its_checkpoint_file(tmp_path):
    """resume=<run>/checkpoints/last.pt goes on in <run>, like resume=<run>, with a larger budget;
    Hydra's record of the first command stays in <run>/.hydra."""
    run_dir = tmp_path / "run"
    common = ["train.eval_episodes=1", "train.progress=false"]
    assert run_cli(tmp_path, "train.total_timesteps=512", *common, f"hydra.run.dir={run_dir}").returncode == 0
    result = run_cli(tmp_path, f"resume={run_dir / 'checkpoints' / 'last.pt'}", "train.total_timesteps=1024",
                     "train.progress=false")
    assert result.returncode == 0, result.stderr
    assert f"Resuming CartPole-v1 in {run_dir}" in result.stdout
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["global_step"] == 1024
    assert OmegaConf.load(run_dir / ".hydra" / "overrides.yaml") == ["train.total_timesteps=512", *common]
    assert not (tmp_path / "outputs").exists()
