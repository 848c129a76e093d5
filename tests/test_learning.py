"""End-to-end learning: the default preset actually solves CartPole-v1's early stages."""

from __future__ import annotations

import statistics

import pytest

from conftest import make_config, read_scalars
from ppo.train import train


@pytest.mark.slow
def test_default_preset_learns_cartpole(tmp_path):
    """30 000 steps of the default preset (seed 1): the mean of the last 20 training episodes is at
    least 100 and at least 3x the mean of the first 20 (a random policy scores about 20), and the
    greedy evaluation scores over 100."""
    config = make_config(["train.total_timesteps=30000", "train.eval_episodes=10", "train.progress=false",
                          "seed=1"])
    metrics = train(config, tmp_path)
    scores = [value for _, value in read_scalars(tmp_path)["episode/score"]]
    assert len(scores) >= 40
    first, last = statistics.mean(scores[:20]), statistics.mean(scores[-20:])
    assert last >= 100, (first, last)
    assert last >= 3 * first, (first, last)
    assert metrics["final_score"] > 100
