"""Everything a run writes to TensorBoard: the trainer's scalars (episodes, losses and
diagnostics, evaluation), its HParams record and a layout for the custom-scalars dashboard made for
PPO.

The trainer opens its writer with :func:`open_writer` and logs through :func:`record_episodes`,
:func:`log_update` and :func:`log_evaluation`.

``python -m ppo.run`` calls :func:`record_run_start` once the config is valid and
:func:`record_run_end` when training returned or failed; :func:`ppo.train.train`, which knows the
env's action space, writes :func:`custom_scalars_layout` beside its scalars. The two records go
into the run directory itself, so TensorBoard lists exactly one run per run directory
(``SummaryWriter.add_hparams`` would open a timestamped sub-run per call instead). The HParams
plugin's three summaries are built from TensorBoard's own protos and go straight to the writer's
file writer:

* at the start: the HParams *experiment* (which hyperparameters and which metrics there are, and
  which hyperparameters differ between runs: the HParams table shows those by default and the
  others on demand) and the *session start* (this run's hyperparameters). A run in progress shows
  in the HParams tab with status unknown.
* at the end: one ``result/<name>`` scalar per metric of :func:`ppo.train.train` that has a value,
  and the *session end*: success, or failure for a run that raised.

Every run declares the same hyperparameters and the same metrics, because TensorBoard takes the
experiment of whichever run it reads first for the whole directory. A metric without a value
(``steps_to_solve`` of a run that never reached the solved score) is declared but not written:
its cell in the HParams table stays empty instead of showing a made-up number.

Each call writes a new event file, so a TensorBoard that is already watching the directory picks
it up: TensorBoard follows the newest event file of a run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from torch.utils.tensorboard import SummaryWriter

from ppo.config import AgentConfig, Config, to_dict
from ppo.loss import PPOLoss
from ppo.networks import GaussianActor
from ppo.rundir import EVENT_FILES
from ppo.state import RunStats, TrainingState
from ppo.update import total_loss

RESULT_METRICS = {
    "final_score": "mean greedy evaluation score after training",
    "best_mean_score_100": "best mean score of 100 consecutive training episodes",
    "auc": "area under the 100-episode mean score over the budget, divided by the budget",
    "steps_to_solve": "env steps until the 100-episode mean first reached env.solved_score",
    "seconds_to_solve": "wall seconds until the 100-episode mean first reached env.solved_score",
    "train_seconds": "wall seconds of training, without the evaluation",
    "steps_per_second": "env steps per wall second of training",
}
"""Metrics of :func:`ppo.train.train` that each run records for the HParams tab, as ``result/<name>``;
the first four are the choices of ``train.objective``, what a sweeper optimizes."""

RESULT_PREFIX = "result/"

NOT_HPARAMS = ("device.", "train.progress", "train.checkpoint_every")
"""Config keys (prefixes) left out of the HParams record: they change how a run is carried out,
not what it learns."""

# Every chart, as tag regexes in the custom-scalars plugin's format: {category: {chart: [kind, tags]}}.
# A run gets the charts it can fill: custom_scalars_layout.
_CHARTS = {
    "Losses": {
        "actor (clipped surrogate)": ["Multiline", [r"^loss/actor$"]],
        "critic (MSE to the returns)": ["Multiline", [r"^loss/critic$"]],
        "total": ["Multiline", [r"^loss/total$"]],
    },
    "Score": {
        "episode score and its 100-episode mean": ["Multiline", [r"^episode/score$", r"^episode/mean_score_100$"]],
        "greedy evaluation": ["Multiline", [r"^eval/score$"]],
        "episode length": ["Multiline", [r"^episode/length$"]],
    },
    "Policy update": {
        "approx KL(old ‖ new)": ["Multiline", [r"^diagnostics/approx_kl$"]],
        "clip fraction": ["Multiline", [r"^diagnostics/clip_fraction$"]],
        "entropy": ["Multiline", [r"^diagnostics/entropy$"]],
        "Gaussian policy std (Box actions)": ["Multiline", [r"^diagnostics/action_std$"]],
    },
    "Critic and schedule": {
        "explained variance": ["Multiline", [r"^diagnostics/explained_variance$"]],
        "learning rate": ["Multiline", [r"^diagnostics/learning_rate$"]],
        "clip ε (agent.anneal_policy_clip decays it)": ["Multiline", [r"^diagnostics/policy_clip$"]],
        "env steps per second": ["Multiline", [r"^time/steps_per_second$"]],
    },
}


def custom_scalars_layout(continuous_actions: bool) -> dict:
    """The custom-scalars dashboard of a run, for ``SummaryWriter.add_custom_scalars``: every chart
    that the run can fill. The Gaussian policy's std has data only for continuous (Box) actions."""
    layout = {category: dict(charts) for category, charts in _CHARTS.items()}
    if not continuous_actions:
        del layout["Policy update"]["Gaussian policy std (Box actions)"]
    return layout


def hparams_of(cfg: DictConfig | Mapping) -> dict[str, float | int | str]:
    """The run's hyperparameters for the HParams tab: the composed config flattened to dotted keys
    (``agent.policy_clip``), less :data:`NOT_HPARAMS`. TensorBoard takes numbers and strings only:
    booleans become ``"true"``/``"false"``, ``None`` becomes ``"null"`` (so every run declares the
    same keys) and lists their text, e.g. ``"[64, 64]"``."""
    container = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
    return {key: _hparam_value(value) for key, value in flatten(container).items()
            if not key.startswith(NOT_HPARAMS)}


def flatten(tree: Mapping, prefix: str = "") -> dict:
    """``{"agent": {"lr": 1e-3}}`` -> ``{"agent.lr": 1e-3}``; lists stay values."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _hparam_value(value) -> float | int | str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float, str)):
        return value
    return str(value)


def record_run_start(run_dir: str | Path, hparams: Mapping[str, float | int | str],
                     differing: Iterable[str] = ()) -> None:
    """Write the HParams experiment and this run's session start.

    ``differing``: the keys whose values differ between the runs shown together, such as the swept
    keys of a sweep (:func:`ppo.sweep.swept_keys`) or the keys a single run's command line sets; a
    group such as ``env`` stands for all of its keys. Only their hyperparameters are marked ``differs``:
    TensorBoard lists those first and shows them by default, the others on demand."""
    differing = tuple(differing)
    experiment = api_pb2.Experiment(
        hparam_infos=[api_pb2.HParamInfo(name=name, type=_data_type(value),
                                         differs=any(name == key or name.startswith(key + ".") for key in differing))
                      for name, value in hparams.items()],
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=RESULT_PREFIX + name), description=description)
                      for name, description in RESULT_METRICS.items()],
    )
    session_start = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
    for name, value in hparams.items():
        if isinstance(value, str):
            session_start.hparams[name].string_value = value
        else:
            session_start.hparams[name].number_value = value
    writer = SummaryWriter(str(run_dir))
    try:
        writer.file_writer.add_summary(_hparams_summary(metadata.EXPERIMENT_TAG, experiment=experiment))
        writer.file_writer.add_summary(_hparams_summary(metadata.SESSION_START_INFO_TAG,
                                                        session_start_info=session_start))
    finally:
        writer.close()


def record_run_end(run_dir: str | Path, metrics: Mapping[str, float | None] | None) -> None:
    """Write the ``result/*`` scalars of ``metrics`` (at its ``global_step``) and the session end:
    success, or failure when ``metrics`` is None (the run raised)."""
    writer = SummaryWriter(str(run_dir))
    try:
        step = int(metrics.get("global_step") or 0) if metrics else 0
        for name in RESULT_METRICS:
            value = metrics.get(name) if metrics else None
            if value is not None:
                writer.add_scalar(RESULT_PREFIX + name, value, step)
        end = plugin_data_pb2.SessionEndInfo(
            status=api_pb2.STATUS_SUCCESS if metrics is not None else api_pb2.STATUS_FAILURE, end_time_secs=time.time())
        writer.file_writer.add_summary(_hparams_summary(metadata.SESSION_END_INFO_TAG, session_end_info=end), step)
    finally:
        writer.close()


def _data_type(value: float | int | str) -> int:
    return api_pb2.DATA_TYPE_STRING if isinstance(value, str) else api_pb2.DATA_TYPE_FLOAT64


def _hparams_summary(tag: str, **plugin_data) -> Summary:
    """A summary of the HParams plugin: ``plugin_data`` is one field of ``HParamsPluginData``."""
    content = plugin_data_pb2.HParamsPluginData(**plugin_data)
    return Summary(value=[Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(content))])


# --------------------------------------------------------------------------------------------
# The trainer's scalars
# --------------------------------------------------------------------------------------------


def open_writer(out_dir: Path, config: Config, resumed: bool, continuous_actions: bool,
                global_step: int = 0) -> SummaryWriter:
    """The run's TensorBoard writer. A resumed run discards the events that the stopped one logged
    after its checkpoint at ``global_step`` (``purge_step``): TensorBoard then shows one point per
    step, without duplicates or gaps."""
    if resumed:
        wait_for_a_later_event_file_name(out_dir)
        return SummaryWriter(str(out_dir), purge_step=global_step + 1)
    writer = SummaryWriter(str(out_dir))
    writer.add_text("config", "```\n" + json.dumps(to_dict(config), indent=2) + "\n```")
    writer.add_custom_scalars(custom_scalars_layout(continuous_actions))
    return writer


def record_episodes(writer: SummaryWriter, stats: RunStats, episodes: list[tuple[int, float, int, int]],
                    rollout_start_step: int, num_envs: int, seconds: float, max_episodes: int | None) -> None:
    """The rollout's finished episodes ``(t, score, length, env)``, at the env step each ended, into the
    run statistics and TensorBoard; none past ``max_episodes``."""
    for t, score, length, _env in episodes:
        if stats.episodes == max_episodes:
            return
        step = rollout_start_step + (t + 1) * num_envs
        stats.record(score, step, seconds)
        writer.add_scalar("episode/score", score, step)
        writer.add_scalar("episode/length", length, step)


def log_evaluation(writer: SummaryWriter, eval_scores: np.ndarray, global_step: int) -> None:
    """The mean greedy evaluation score, at the run's last env step (nothing without episodes)."""
    if len(eval_scores):
        writer.add_scalar("eval/score", float(np.mean(eval_scores)), global_step)


LOSS_TAGS = {"actor": "loss/actor", "critic": "loss/critic", "entropy": "diagnostics/entropy",
             "approx_kl": "diagnostics/approx_kl", "clip_fraction": "diagnostics/clip_fraction"}
"""TensorBoard tag of each :class:`ppo.loss.PPOLoss` field."""


def log_update(writer: SummaryWriter, state: TrainingState, losses: PPOLoss | None, agent: AgentConfig,
               policy_clip: float, explained: float, elapsed: float) -> None:
    """One update's scalars, at its env step: losses and diagnostics (means over the minibatches),
    the running mean score, speed and schedule (learning rate and clip ε)."""
    step = state.global_step
    scalars = {"time/steps_per_second": step / elapsed,
               "diagnostics/learning_rate": state.optimizer.param_groups[0]["lr"],
               "diagnostics/policy_clip": policy_clip}
    if losses is not None:
        scalars.update({LOSS_TAGS[name]: value for name, value in losses._asdict().items()})
        scalars["loss/total"] = total_loss(losses, agent)
        scalars["diagnostics/explained_variance"] = explained
    if isinstance(state.actor, GaussianActor):  # how much the policy still explores
        scalars["diagnostics/action_std"] = state.actor.log_std.exp().mean().item()
    mean_score = state.stats.mean_score()
    if mean_score is not None:
        scalars["episode/mean_score_100"] = mean_score
    for tag, value in scalars.items():
        writer.add_scalar(tag, value, step)


def wait_for_a_later_event_file_name(out_dir: Path) -> None:
    """TensorBoard reads a dir's event files in name order, and a name starts with the second it was
    made in, then the host, the process id and a counter, which sort as text: a file made in the same
    second as the stopped run's could sort before it, and the purge would come too early. Wait
    (at most a second, and only when resuming within the second the last file was made) so it can't."""
    seconds = [int(path.name.split(".")[3]) for path in out_dir.glob(EVENT_FILES)
               if path.name.split(".")[3].isdigit()]
    while seconds and time.time() < max(seconds) + 1:
        time.sleep(0.05)
