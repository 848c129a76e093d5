"""Atari through ale-py: the preprocessed observations of the C++ vector env and of gymnasium's
wrappers, raw rewards and lives, and a tiny run of experiment=atari through the real CLI.
Skipped without ``pip install -e ".[atari]"``, except in CI."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

from conftest import read_scalars, require_modules, run_cli

require_modules("ale_py", "cv2", extras="atari")

from ppo.config import EnvConfig  # noqa: E402  (after the skip: EnvConfig registers the ALE ids)
from ppo.envs import make_envs  # noqa: E402


@pytest.mark.parametrize("vectorization", ["auto", "sync"])
def test_atari_observations_are_stacked_84x84_grayscale_uint8(vectorization):
    """Both paths give (frame_stack, 84, 84) uint8 frames, Breakout's 4 minimal actions, lives in the
    infos and next-step autoreset; auto picks ale-py's C++ vector env."""
    envs = make_envs(EnvConfig(id="ALE/Breakout-v5", num_envs=2, vectorization=vectorization, frame_stack=3))
    try:
        assert (type(envs).__name__ == "AtariVectorEnv") == (vectorization == "auto")
        assert envs.single_observation_space.shape == (3, 84, 84)
        assert envs.single_action_space == gym.spaces.Discrete(4)
        assert envs.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
        obs, infos = envs.reset(seed=0)
        obs, *_, infos = envs.step(np.ones(2, dtype=np.int64))
        assert obs.shape == (2, 3, 84, 84) and obs.dtype == np.uint8 and obs.any()
        assert infos["lives"].tolist() == [5, 5]
    finally:
        envs.close()


@pytest.mark.slow
def test_atari_rewards_reach_the_trainer_unclipped():
    """Seaquest scores 20 points per enemy: the env passes them on as they are (the trainer takes
    their sign for learning, env.sign_rewards), so that episode scores are the game's."""
    envs = make_envs(EnvConfig(id="ALE/Seaquest-v5", num_envs=4, repeat_action_probability=0.0))
    rng = np.random.default_rng(0)
    try:
        envs.reset(seed=0)
        rewards = set()
        for _ in range(1500):
            _, reward, *_ = envs.step(rng.integers(0, envs.single_action_space.n, 4))
            rewards |= set(reward.tolist())
            if max(rewards) > 1:
                break
    finally:
        envs.close()
    assert max(rewards) == 20


@pytest.mark.slow
def test_tiny_atari_run_through_the_cli_trains_evaluates_and_reloads(tmp_path):
    """experiment=atari on Breakout with a tiny budget, episodes cut at 200 steps (a greedy untrained
    policy may never press FIRE again): metrics.json with the greedy episode's game score, the same in
    TensorBoard's eval/score and in the episode that ppo.evaluate replays."""
    run_dir = tmp_path / "run"
    result = run_cli(tmp_path, "experiment=atari", "env.num_envs=2", "env.max_episode_steps=200", "agent.n_steps=32",
                     "agent.batch_size=32", "train.total_timesteps=128", "train.eval_episodes=1",
                     "train.progress=false", f"hydra.run.dir={run_dir}", timeout=300)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["global_step"] == 128 and metrics["final_score_std"] == 0.0  # one episode
    assert read_scalars(run_dir)["eval/score"] == [(128, pytest.approx(metrics["final_score"]))]
    evaluation = run_cli(tmp_path, str(run_dir), "episodes=1", module="ppo.evaluate", timeout=300)
    assert evaluation.returncode == 0, evaluation.stderr
    assert evaluation.stdout.startswith(f"ALE/Breakout-v5: {metrics['final_score']:.1f} ± 0.0 over 1 greedy episodes")


@pytest.mark.parametrize("vectorization", ["auto", "sync"])
def test_breakout_is_served_at_reset(vectorization):
    """Both paths press FIRE at reset: with no-op actions after it the ball moves, so consecutive frames
    differ (without the serve, Breakout's screen would stand still)."""
    envs = make_envs(EnvConfig(id="ALE/Breakout-v5", num_envs=1, vectorization=vectorization,
                               repeat_action_probability=0.0))
    try:
        envs.reset(seed=0)
        for _ in range(5):
            obs, *_ = envs.step(np.zeros(1, dtype=np.int64))
        assert (obs[0, -1] != obs[0, -2]).any()
    finally:
        envs.close()
