"""Same seed and config, same run: identical metrics and identical logged losses."""

from __future__ import annotations

import pytest

from conftest import make_config, read_scalars
from ppo.train import train

TIMING_KEYS = {"train_seconds", "steps_per_second", "seconds_to_solve", "phase_seconds"}
LOSS_TAGS = ["loss/actor", "loss/critic", "loss/total", "diagnostics/entropy", "diagnostics/approx_kl",
             "diagnostics/clip_fraction", "diagnostics/explained_variance", "episode/score", "episode/length",
             "eval/score"]
OVERRIDES = ["train.total_timesteps=1024", "train.eval_episodes=2", "train.progress=false", "agent.n_epochs=4",
             "agent.batch_size=64"]


def run(tmp_path, name, seed):
    run_dir = tmp_path / name
    metrics = train(make_config([*OVERRIDES, f"seed={seed}"]), run_dir)
    return metrics, read_scalars(run_dir)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("determinism")
    return {name: run(tmp_path, name, seed) for name, seed in (("a", 1), ("b", 1), ("c", 2))}


def test_same_seed_gives_identical_metrics(runs):
    """Two runs with the same seed and config agree on every metric except wall-clock timings."""
    (metrics_a, _), (metrics_b, _) = runs["a"], runs["b"]
    assert {k: v for k, v in metrics_a.items() if k not in TIMING_KEYS} == \
           {k: v for k, v in metrics_b.items() if k not in TIMING_KEYS}


@pytest.mark.parametrize("tag", LOSS_TAGS)
def test_same_seed_gives_identical_logged_scalars(runs, tag):
    """Every loss, diagnostic and episode statistic in the event files is identical, step by step."""
    (_, scalars_a), (_, scalars_b) = runs["a"], runs["b"]
    assert scalars_a[tag] == scalars_b[tag]
    assert len(scalars_a[tag]) > 0


def test_different_seed_gives_different_losses(runs):
    """Another seed gives another run (different actor and critic losses)."""
    (_, scalars_a), (_, scalars_c) = runs["a"], runs["c"]
    assert scalars_a["loss/actor"] != scalars_c["loss/actor"]
    assert scalars_a["loss/critic"] != scalars_c["loss/critic"]
