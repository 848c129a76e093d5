"""Observation normalization and reward scaling (the env.normalize_* options) and their statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ppo.checkpoint import load_checkpoint, save_checkpoint
from ppo.config import EnvConfig
from ppo.normalize import Normalizer, RunningMeanStd


def normalizer(num_envs=2, obs_dim=3, gamma=0.9, **env) -> Normalizer:
    options = dict(normalize_observations=True, normalize_rewards=True) | env
    return Normalizer.from_config(EnvConfig(id="CartPole-v1", **options), obs_dim, num_envs, gamma)


def test_running_mean_std_equals_the_statistics_of_all_rows_seen():
    """Batches of any sizes merge into the mean and (population) variance of their concatenation."""
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 4)) for n in (1, 7, 100, 2)]
    stats = RunningMeanStd((4,))
    for batch in batches:
        stats.update(batch)
    rows = np.concatenate(batches)
    np.testing.assert_allclose(stats.mean, rows.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats.var, rows.var(0), rtol=1e-4)
    assert stats.count == pytest.approx(len(rows))


def test_observations_are_standardized_with_the_running_statistics_then_clipped():
    """After many observations of mean 5 and std 3, new ones come out as (obs - 5) / 3, and a far
    outlier is clipped to clip_observations; with update=False the statistics stay as they are."""
    norm = normalizer(clip_observations=4.0)
    rng = np.random.default_rng(1)
    for _ in range(200):
        norm.observations(rng.normal(5.0, 3.0, size=(50, 3)))
    before = norm.obs_stats.mean.copy()
    out = norm.observations(np.array([[8.0, 5.0, 1000.0]]), update=False)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, :2], [1.0, 0.0], atol=0.05)
    assert out[0, 2] == 4.0
    assert np.array_equal(norm.obs_stats.mean, before)


def test_rewards_are_divided_by_the_std_of_the_discounted_return_and_the_return_restarts_at_episode_ends():
    """Reward 1 each step, γ = 0.5: the return runs 1, 1.5, 1.75, ... and each scaled reward is
    1 / std(the returns so far); an ended episode's return restarts at 0; a reset step (counted
    False) stays out of the statistics. Signs are kept, and rewards are clipped to clip_rewards."""
    norm = normalizer(num_envs=1, gamma=0.5, clip_rewards=1000.0)
    returns = []
    for _ in range(20):
        scaled = norm.rewards(np.array([1.0]), ended=np.array([False]), counted=np.array([True]))
        returns.append(1.0 + 0.5 * (returns[-1] if returns else 0.0))
    assert norm.returns[0] == pytest.approx(returns[-1])
    assert scaled[0] == pytest.approx(1.0 / np.std(returns), rel=1e-3)
    norm.rewards(np.array([1.0]), ended=np.array([True]), counted=np.array([True]))
    assert norm.returns[0] == 0.0
    count = norm.return_stats.count
    norm.rewards(np.array([0.0]), ended=np.array([False]), counted=np.array([False]))
    assert norm.return_stats.count == count
    assert norm.rewards(np.array([-2.0]), np.array([False]), np.array([True]))[0] < 0
    clipped = normalizer(num_envs=1, clip_rewards=0.5).rewards(np.array([100.0]), np.array([False]), np.array([True]))
    assert clipped[0] == 0.5


def test_switched_off_the_data_passes_through():
    """Without the options, observations (as float32) and rewards come back unchanged."""
    norm = Normalizer.from_config(EnvConfig(id="CartPole-v1"), 3, 2, 0.99)
    obs = np.arange(6, dtype=np.float64).reshape(2, 3) * 100
    assert np.array_equal(norm.observations(obs), obs.astype(np.float32))
    rewards = np.array([5.0, -7.0])
    assert np.array_equal(norm.rewards(rewards, np.array([False, True]), np.array([True, True])), rewards)
    assert norm.state_dict() == {}


def test_statistics_survive_a_checkpoint_round_trip(tmp_path):
    """state_dict -> save_checkpoint -> load_checkpoint (weights only) -> load_state_dict gives a
    normalizer that normalizes exactly as the original."""
    original = normalizer()
    rng = np.random.default_rng(2)
    for _ in range(20):
        original.observations(rng.normal(-4.0, 9.0, size=(2, 3)))
        original.rewards(rng.normal(size=2), rng.random(2) < 0.1, np.ones(2, dtype=bool))
    save_checkpoint(tmp_path / "n.pt", {"normalizer": original.state_dict()})
    restored = normalizer()
    restored.load_state_dict(load_checkpoint(tmp_path / "n.pt")["normalizer"])
    probe = rng.normal(size=(5, 3))
    assert np.array_equal(restored.observations(probe, update=False), original.observations(probe, update=False))
    assert restored.return_stats.var == original.return_stats.var
    assert restored.return_stats.count == original.return_stats.count
    assert isinstance(original.state_dict()["observations"]["mean"], torch.Tensor)
