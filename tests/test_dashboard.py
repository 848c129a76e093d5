"""The HParams record and the custom-scalars layout of a run (ppo/dashboard.py)."""

from __future__ import annotations

import re

import pytest
from tensorboard.plugins.hparams import api_pb2

from conftest import BOX_ID, compose, make_config, read_custom_scalars_layout, read_hparams, read_scalars
from ppo.dashboard import (RESULT_METRICS, RESULT_PREFIX, custom_scalars_layout, flatten, hparams_of, record_run_end,
                           record_run_start)


def test_flatten_gives_dotted_keys():
    assert flatten({"agent": {"lr": 1e-3, "n": {"deep": 1}}, "seed": 2, "sizes": [64, 64]}) == {
        "agent.lr": 1e-3, "agent.n.deep": 1, "seed": 2, "sizes": [64, 64]}


def test_hparams_of_the_composed_config():
    """Every agent, network and env key and the seed, with values TensorBoard accepts (numbers and
    strings); how a run is carried out (device, progress, checkpoints) is left out."""
    hparams = hparams_of(compose(["agent.max_grad_norm=null", "agent.policy_clip=0.15"]))
    assert hparams["agent.policy_clip"] == 0.15 and hparams["agent.gae_lambda"] == 0.8
    assert hparams["agent.batch_size"] == 256 and hparams["seed"] == 1
    assert hparams["agent.max_grad_norm"] == "null"
    assert hparams["agent.anneal_lr"] == "true"  # booleans as strings: the default preset anneals
    assert hparams["network.hidden_sizes"] == "[64, 64]" and hparams["env.id"] == "CartPole-v1"
    assert hparams["train.total_timesteps"] == 150_000
    left_out = ("device.", "train.progress", "train.checkpoint_every")
    assert not [key for key in hparams if key.startswith(left_out)]
    assert all(isinstance(value, (int, float, str)) for value in hparams.values())


def test_a_finished_run_records_one_session_with_its_metrics(tmp_path):
    """Start and end go into the run dir itself (no sub-runs); only the differing keys are marked
    ``differs``; all metrics are declared, only those with a value are written; the session ends with
    success."""
    hparams = {"agent.policy_clip": 0.1, "agent.gae_lambda": 0.9, "env.id": "CartPole-v1", "seed": 3}
    record_run_start(tmp_path, hparams, differing=["agent.policy_clip", "seed"])
    metrics = {"final_score": 500.0, "best_mean_score_100": 480.5, "steps_to_solve": None, "seconds_to_solve": None,
               "global_step": 4096, "train_seconds": 3.5, "steps_per_second": 1170.3}
    record_run_end(tmp_path, metrics)

    assert [path for path in tmp_path.iterdir() if path.is_dir()] == []
    records = read_hparams(tmp_path)
    experiment = records["_hparams_/experiment"].experiment
    assert {info.name: info.differs for info in experiment.hparam_infos} == {
        "agent.policy_clip": True, "agent.gae_lambda": False, "env.id": False, "seed": True}
    assert {info.name.tag for info in experiment.metric_infos} == {f"result/{name}" for name in RESULT_METRICS}
    start = records["_hparams_/session_start_info"].session_start_info
    assert start.hparams["agent.policy_clip"].number_value == 0.1
    assert start.hparams["env.id"].string_value == "CartPole-v1"
    assert records["_hparams_/session_end_info"].session_end_info.status == api_pb2.STATUS_SUCCESS
    scalars = read_scalars(tmp_path)
    assert scalars["result/final_score"] == [(4096, 500.0)]
    assert scalars["result/best_mean_score_100"] == [(4096, 480.5)]
    assert "result/steps_to_solve" not in scalars and "result/seconds_to_solve" not in scalars
    assert read_custom_scalars_layout(tmp_path) is None, "the trainer writes the layout, for its action space"


def test_a_group_marks_all_of_its_keys_as_differing(tmp_path):
    record_run_start(tmp_path, {"env.id": "Acrobot-v1", "env.num_envs": 8, "agent.lr": 0.001}, ["env"])
    experiment = read_hparams(tmp_path)["_hparams_/experiment"].experiment
    assert {info.name: info.differs for info in experiment.hparam_infos} == {
        "env.id": True, "env.num_envs": True, "agent.lr": False}


def test_a_failed_run_ends_its_session_with_failure(tmp_path):
    record_run_start(tmp_path, {"agent.policy_clip": 0.1})
    record_run_end(tmp_path, None)
    assert read_hparams(tmp_path)["_hparams_/session_end_info"].session_end_info.status == api_pb2.STATUS_FAILURE
    assert not [tag for tag in read_scalars(tmp_path) if tag.startswith("result/")]


TINY_RUN = ["train.total_timesteps=512", "train.eval_episodes=2", "train.progress=false", "train.checkpoint_every=0"]
BOX_RUN = [f"env.id={BOX_ID}", "env.num_envs=2", "agent.n_steps=16", "agent.batch_size=16"]  # Box(-1, 1, (2,)) actions


@pytest.mark.parametrize("env_overrides, continuous", [([], False), (BOX_RUN, True)], ids=["CartPole", "Box actions"])
def test_the_layout_charts_exactly_what_a_run_writes(tmp_path, env_overrides, continuous):
    """A tiny real run (CartPole's discrete actions, or a toy env's Box actions) writes the layout for
    its action space: every regex of every chart matches a tag that the run wrote, and every tag it
    wrote is on a chart (the results that ppo.run adds at the end are in the HParams tab)."""
    from ppo.train import train

    train(make_config(TINY_RUN + env_overrides), tmp_path)
    written = {tag for tag in read_scalars(tmp_path) if not tag.startswith(RESULT_PREFIX)}
    layout = read_custom_scalars_layout(tmp_path)
    charts = {chart.title: list(chart.multiline.tag) for category in layout.category for chart in category.chart}
    assert charts == {title: patterns for category in custom_scalars_layout(continuous).values()
                      for title, (kind, patterns) in category.items()}
    charted = set()
    for title, patterns in charts.items():
        for pattern in patterns:
            matches = {tag for tag in written if re.search(pattern, tag)}
            assert matches, f"{title}: {pattern} matches no tag of the run, {sorted(written)}"
            charted |= matches
    assert charted == written
    assert ("Gaussian policy std (Box actions)" in charts) == continuous
