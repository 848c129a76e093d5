"""Checkpoints: what train() writes, load_policy, and errors on missing or corrupt files."""

from __future__ import annotations

import json
import math

import pytest
import torch

from conftest import make_config
from ppo.checkpoint import load_checkpoint, load_policy, save_checkpoint
from ppo.errors import ConfigError
from ppo.evaluate import evaluate
from ppo.train import train


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny CartPole run (512 steps, 2 eval episodes): (config, run dir, metrics)."""
    config = make_config(["train.total_timesteps=512", "train.eval_episodes=2", "train.progress=false"])
    run_dir = tmp_path_factory.mktemp("run")
    return config, run_dir, train(config, run_dir)


def test_train_writes_metrics_json_with_final_score(trained_run):
    """metrics.json holds the returned metrics, final_score the greedy evaluation mean."""
    _, run_dir, metrics = trained_run
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert set(saved) >= {"final_score", "global_step", "best_mean_score_100", "steps_to_solve", "train_seconds",
                          "steps_per_second"}
    assert saved["final_score"] == metrics["final_score"]
    assert math.isfinite(saved["final_score"]) and saved["final_score"] >= 8  # CartPole can't end sooner
    assert saved["global_step"] == 512


def test_load_policy_returns_the_saved_actor_and_config(trained_run):
    """load_policy(run dir) gives a policy whose actor is in eval mode with exactly the checkpoint's
    weights, and the run's config."""
    config, run_dir, _ = trained_run
    policy, loaded_config = load_policy(run_dir)
    actor = policy.actor
    assert loaded_config == config
    assert not actor.training
    saved = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["actor"]
    state = actor.state_dict()
    assert state.keys() == saved.keys()
    for name in saved:
        assert torch.equal(state[name], saved[name]), name


def test_loaded_actor_is_the_trained_one(trained_run):
    """The loaded actor replays the run's greedy evaluation (same seed) to the same final score."""
    config, run_dir, metrics = trained_run
    policy, _ = load_policy(run_dir / "checkpoints" / "last.pt")
    scores = evaluate(policy, config.env, config.train.eval_episodes, seed=config.seed + 1_000_000)
    assert float(scores.mean()) == metrics["final_score"]


def test_checkpoint_records_progress(trained_run):
    """The last checkpoint holds both networks, the optimizer, the step and update counts."""
    config, run_dir, _ = trained_run
    state = load_checkpoint(run_dir)
    assert {"actor", "critic", "optimizer", "config", "obs_shape", "action_space", "normalizer"} <= set(state)
    assert state["global_step"] == 512
    assert state["update"] == 512 // config.rollout_size  # whole rollouts of n_steps * num_envs
    assert (state["obs_shape"], state["action_space"]) == ([4], {"n": 2})


def test_missing_checkpoint_is_a_config_error(tmp_path):
    """A run dir without checkpoints/last.pt, or a missing file, raises ConfigError naming the path."""
    with pytest.raises(ConfigError, match="checkpoint"):
        load_policy(tmp_path)
    with pytest.raises(ConfigError, match="nothere.pt"):
        load_checkpoint(tmp_path / "nothere.pt")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all \x00\x01\x02" * 10])
def test_corrupt_checkpoint_is_a_config_error(tmp_path, content):
    """Garbage bytes (or an empty file) raise ConfigError, not a torch/pickle exception."""
    path = tmp_path / "checkpoints" / "last.pt"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(ConfigError, match="checkpoint"):
        load_policy(tmp_path)


def test_truncated_checkpoint_is_a_config_error(tmp_path):
    """A checkpoint cut short (a crash while copying it) raises ConfigError."""
    good = tmp_path / "good.pt"
    save_checkpoint(good, {"x": torch.arange(1000)})
    bad = tmp_path / "bad.pt"
    bad.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ConfigError):
        load_checkpoint(bad)


def test_checkpoint_with_code_is_refused(tmp_path):
    """Loading never unpickles arbitrary objects: a file holding one is rejected with ConfigError."""
    path = tmp_path / "evil.pt"
    torch.save({"obj": ValueError("arbitrary object")}, path)
    with pytest.raises(ConfigError):
        load_checkpoint(path)


def test_save_checkpoint_is_atomic_and_round_trips(tmp_path):
    """save_checkpoint creates missing folders, leaves no temporary file, and overwrites in place."""
    path = tmp_path / "a" / "b" / "last.pt"
    save_checkpoint(path, {"step": 1, "w": torch.ones(3)})
    save_checkpoint(path, {"step": 2, "w": torch.zeros(3)})
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]
    state = load_checkpoint(path)
    assert state["step"] == 2 and torch.equal(state["w"], torch.zeros(3))
