"""The HParams record and the custom-scalars layout of a run (ppo/dashboard.py)."""

from __future__ import annotations

from tensorboard.plugins.hparams import api_pb2

from conftest import compose_config, read_custom_scalars_layout, read_hparams, read_scalars
from ppo.dashboard import LAYOUT, RESULT_METRICS, flatten, hparams_of, record_run_end, record_run_start


def test_flatten_gives_dotted_keys():
    assert flatten({"agent": {"lr": 1e-3, "n": {"deep": 1}}, "seed": 2, "sizes": [64, 64]}) == {
        "agent.lr": 1e-3, "agent.n.deep": 1, "seed": 2, "sizes": [64, 64]}


def test_hparams_of_the_composed_config():
    """Every agent, network and env key and the seed, with values TensorBoard accepts (numbers and
    strings); how a run is carried out (device, progress, checkpoints) is left out."""
    hparams = hparams_of(compose_config(["agent.max_grad_norm=null", "agent.policy_clip=0.15"]))
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
    """Start and end go into the run dir itself (no sub-runs); all metrics are declared, only those
    with a value are written; the session ends with success."""
    hparams = {"agent.policy_clip": 0.1, "agent.gae_lambda": 0.9, "env.id": "CartPole-v1", "seed": 3}
    record_run_start(tmp_path, hparams, overridden=["agent.policy_clip", "seed"])
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
    layout = read_custom_scalars_layout(tmp_path)
    assert [category.title for category in layout.category] == list(LAYOUT)


def test_a_failed_run_ends_its_session_with_failure(tmp_path):
    record_run_start(tmp_path, {"agent.policy_clip": 0.1})
    record_run_end(tmp_path, None)
    assert read_hparams(tmp_path)["_hparams_/session_end_info"].session_end_info.status == api_pb2.STATUS_FAILURE
    assert not [tag for tag in read_scalars(tmp_path) if tag.startswith("result/")]


def test_the_layout_names_only_tags_the_trainer_writes():
    """Each chart's regexes match tags that ppo.train logs (as documented in the README)."""
    import re

    trainer_tags = {"loss/actor", "loss/critic", "loss/total", "episode/score", "episode/length",
                    "episode/mean_score_100", "eval/score", "diagnostics/entropy", "diagnostics/approx_kl",
                    "diagnostics/clip_fraction", "diagnostics/explained_variance", "diagnostics/learning_rate",
                    "time/steps_per_second", "diagnostics/action_std"}  # the last: Box actions only
    charted = set()
    for charts in LAYOUT.values():
        for kind, patterns in charts.values():
            assert kind == "Multiline"
            for pattern in patterns:
                matches = {tag for tag in trainer_tags if re.search(pattern, tag)}
                assert matches, pattern
                charted |= matches
    assert charted == trainer_tags
