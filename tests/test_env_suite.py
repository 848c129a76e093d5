"""The environment suite: every env preset trains through the real CLI, every tuned experiment
composes, and the Gaussian policy learns Pendulum-v1."""

from __future__ import annotations

import importlib.util
import os
import statistics

import pytest
import torch

from conftest import make_config, read_scalars, run_cli
from ppo.envs import solved_score
from ppo.run import CONF_DIR
from ppo.train import train

ENV_PRESETS = sorted(path.stem for path in (CONF_DIR / "env").glob("*.yaml"))
TUNED_EXPERIMENTS = sorted(path.stem for path in (CONF_DIR / "experiment").glob("*_tuned.yaml"))
BOX2D_PRESETS = {"lunar_lander", "lunar_lander_continuous"}
CONTINUOUS_PRESETS = {"pendulum", "mountain_car_continuous", "lunar_lander_continuous"}
# 1000-step episodes: tests/test_mujoco.py trains one of them through the CLI, with its tuned experiment.
MUJOCO_PRESETS = {"half_cheetah", "hopper", "walker2d", "ant", "swimmer"}


def skip_without_box2d(name: str) -> None:
    """Box2D envs need the optional ``box2d`` extra: skipped without it, except in CI, which installs it."""
    if name.removesuffix("_tuned") in BOX2D_PRESETS and importlib.util.find_spec("Box2D") is None:
        if os.environ.get("CI"):
            pytest.fail("CI installs the box2d extra, but Box2D is missing")
        pytest.skip("LunarLander needs Box2D: pip install -e '.[box2d]'")


def test_the_suite_has_the_standard_envs():
    """Classic control and Box2D, discrete and continuous, each with a tuned experiment."""
    assert {"cartpole", "acrobot", "mountain_car", "lunar_lander", "pendulum", "mountain_car_continuous",
            "lunar_lander_continuous"} <= set(ENV_PRESETS)
    assert TUNED_EXPERIMENTS == sorted(f"{name}_tuned" for name in ENV_PRESETS)


@pytest.mark.slow
@pytest.mark.parametrize("preset", [preset for preset in ENV_PRESETS if preset not in MUJOCO_PRESETS])
def test_every_env_preset_trains_a_few_hundred_steps_through_the_cli(tmp_path, preset):
    """``python -m ppo.run env=<preset>`` with the default agent: exit 0, a finite greedy score, and a
    checkpoint whose actor fits the env's action space (a Gaussian log-std for Box actions), with
    normalization statistics where the preset normalizes."""
    skip_without_box2d(preset)
    run_dir = tmp_path / "run"
    result = run_cli(tmp_path, f"env={preset}", "train.total_timesteps=512", "train.eval_episodes=1",
                     "train.progress=false", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert state["global_step"] >= 512
    assert ("log_std" in state["actor"]) == (preset in CONTINUOUS_PRESETS)
    assert ("low" in state["action_space"]) == (preset in CONTINUOUS_PRESETS)
    config = make_config([f"env={preset}"])
    assert ("observations" in state["normalizer"]) == config.env.normalize_observations
    assert solved_score(config.env) is not None  # its own, or gymnasium's reward_threshold
    assert "eval/score" in read_scalars(run_dir)


@pytest.mark.parametrize("experiment", TUNED_EXPERIMENTS)
def test_every_tuned_experiment_composes_into_a_valid_config(experiment):
    """``experiment=<env>_tuned`` picks its env preset and sets a budget; the config validates."""
    config = make_config([f"experiment={experiment}"])
    preset = make_config([f"env={experiment.removesuffix('_tuned')}"])
    assert config.env.id == preset.env.id
    assert config.train.total_timesteps >= 20_000


@pytest.mark.slow
def test_gaussian_policy_learns_pendulum(tmp_path):
    """40 000 steps on Pendulum-v1 (8 envs x 256 steps, 10 epochs, lr 3e-3, γ 0.9; about 6 s): a
    random policy scores about -1200; the last 20 training episodes average at least 500 more than the
    first 20 and better than -600, and the greedy (mean-action) evaluation scores better than -600."""
    config = make_config(["env=pendulum", "agent.n_steps=256", "agent.batch_size=256", "agent.n_epochs=10",
                          "agent.lr=0.003", "agent.anneal_lr=false", "agent.gamma=0.9", "agent.gae_lambda=0.95",
                          "train.total_timesteps=40000", "train.progress=false", "seed=1"])
    metrics = train(config, tmp_path)
    scores = [value for _, value in read_scalars(tmp_path)["episode/score"]]
    first, last = statistics.mean(scores[:20]), statistics.mean(scores[-20:])
    assert last >= first + 500, (first, last)
    assert last > -600, (first, last)
    assert metrics["final_score"] > -600


def test_evaluation_of_a_normalized_continuous_run_reproduces_its_final_score(tmp_path):
    """MountainCarContinuous normalizes observations: ppo.evaluate's policy (loaded from the
    checkpoint, with its saved statistics) replays the run's own greedy evaluation to the same score."""
    from ppo.evaluate import evaluate_run

    config = make_config(["env=mountain_car_continuous", "train.total_timesteps=1024", "train.eval_episodes=2",
                          "train.progress=false"])
    metrics = train(config, tmp_path)
    assert config.env.normalize_observations
    assert evaluate_run(tmp_path)["scores"].mean() == pytest.approx(metrics["final_score"], abs=1e-9)
