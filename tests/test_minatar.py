"""MinAtar: its ids, (C, 10, 10) bool observations channels-first, the experiment, and a tiny run of
experiment=minatar through the real CLI, evaluated with a video. Skipped without
``pip install -e ".[minatar]"``, except in CI (the video part also needs ``.[video]``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import make_config, require_modules, run_cli

require_modules("minatar", "seaborn", extras="minatar")

from ppo.envs import make_envs  # noqa: E402

CHANNELS = {"MinAtar/Breakout-v1": 4, "MinAtar/SpaceInvaders-v1": 6, "MinAtar/Asterix-v1": 4,
            "MinAtar/Freeway-v1": 7, "MinAtar/Seaquest-v1": 10}


def test_minatar_experiment_defaults_to_breakout_with_the_minatar_cnn():
    config = make_config(["experiment=minatar"])
    assert config.env.id == "MinAtar/Breakout-v1" and config.network.type == "minatar_cnn"


@pytest.mark.parametrize("env_id", CHANNELS)
def test_every_minatar_game_gives_channels_first_bool_grids(env_id):
    config = make_config(["experiment=minatar", f"env.id={env_id}"])
    channels = CHANNELS[env_id]
    envs = make_envs(config.env, num_envs=2)
    try:
        obs, _ = envs.reset(seed=0)
        assert envs.single_observation_space.shape == (channels, 10, 10)
        assert obs.shape == (2, channels, 10, 10) and obs.dtype == np.bool_
    finally:
        envs.close()


@pytest.mark.slow
def test_tiny_minatar_run_through_the_cli_with_a_video(tmp_path):
    """experiment=minatar with a tiny budget trains and evaluates; ppo.evaluate replays the score and,
    with video=true, writes an mp4 of the greedy episode."""
    require_modules("moviepy", extras="video")
    run_dir = tmp_path / "run"
    result = run_cli(tmp_path, "experiment=minatar", "env.num_envs=4", "env.max_episode_steps=500", "agent.n_steps=32",
                     "agent.batch_size=64", "train.total_timesteps=512", "train.eval_episodes=2",
                     "train.progress=false", f"hydra.run.dir={run_dir}", timeout=300)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    evaluation = run_cli(tmp_path, str(run_dir), "video=true", module="ppo.evaluate", timeout=300)
    assert evaluation.returncode == 0, evaluation.stderr
    assert f"MinAtar/Breakout-v1: {metrics['final_score']:.1f}" in evaluation.stdout
    videos = list((run_dir / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 0
