"""PPO training, top to bottom: ``train(config, out_dir) -> metrics``.

One iteration: COLLECT ``n_steps`` steps from ``num_envs`` envs into preallocated (T, N) tensors;
ADVANTAGES by GAE, once; UPDATE the actor and critic for ``n_epochs`` passes over shuffled
minibatches; LOG losses and diagnostics to TensorBoard. Then EVALUATE greedily and checkpoint.

Reliability around the loop: ``resume=True`` continues from the run dir's last checkpoint; SIGINT
and SIGTERM stop the run between two updates with a checkpoint; a NaN or infinite loss or
parameter raises :class:`TrainingDiverged` and leaves the last good checkpoint in place.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import torch

from ppo.checkpoint import load_checkpoint
from ppo.compile import compile_if_it_pays
from ppo.config import Config, DeviceConfig
from ppo.dashboard import LOSS_TAGS, log_evaluation, log_update, open_writer, record_episodes
from ppo.envs import make_envs
from ppo.errors import ConfigError, TrainingDiverged
from ppo.evaluate import EVAL_SEED_OFFSET, evaluate, record_video, require_video
from ppo.gae import compute_gae
from ppo.loss import PPOLoss
from ppo.networks import Actor, Critic, GaussianActor, Policy, reads_channels_last, shared_torso
from ppo.precision import choose_precision
from ppo.progress import Progress
from ppo.rollout import EnvState, Rollout, collect_rollout, estimate_values, storage_dtype
from ppo.rundir import CHECKPOINT_FILE, METRICS_FILE, read_metrics, write_json
from ppo.state import TrainingState, run_metrics, save_training_state
from ppo.timing import PhaseTimer
from ppo.update import Samples, apply_schedules, explained_variance, minibatch_loss, ppo_update

log = logging.getLogger(__name__)


def train(config: Config, out_dir: str | Path, resume: bool = False, run_name: str | None = None) -> dict:
    """Train PPO as ``config`` says, writing TensorBoard events, checkpoints and ``metrics.json``
    into ``out_dir``; returns the run's metrics (:func:`run_metrics`). ``resume=True`` continues from
    ``out_dir``'s last checkpoint: :class:`TrainingState` as saved, the envs reset with a seed of the
    seed and the update (episodes in progress at the stop restart). SIGINT or SIGTERM stops after
    the update in progress with a checkpoint and returns ``{"interrupted": "SIGINT" or "SIGTERM",
    "global_step", "update"}``. A non-finite loss or parameter raises :class:`TrainingDiverged`.
    ``run_name`` starts every progress line (the runs of a parallel sweep log to one console)."""
    out_dir = Path(out_dir)
    agent, env_cfg, train_cfg = config.agent, config.env, config.train
    checkpoint_path = out_dir / CHECKPOINT_FILE

    # ---- SETUP ----
    saved = load_checkpoint(checkpoint_path) if resume else None  # a missing or corrupt file: ConfigError
    if train_cfg.video:
        require_video("train.video=true")  # now, not after training
    device = select_device(config.device)
    precision = choose_precision(config.device.precision, device, config.network.type)
    # autocast entered once per minibatch step, inside what compiles (on its first call)
    minibatch_loss_fn = compile_if_it_pays(precision.autocast_each_call(minibatch_loss), config)
    torch.manual_seed(config.seed)
    envs = make_envs(env_cfg)
    try:
        state = TrainingState.create(config, envs, device)
        if saved is not None:
            state.resume_from(saved, str(checkpoint_path), config, reported=read_metrics(out_dir) is not None)
    except ConfigError:
        envs.close()
        raise
    actor, critic, optimizer, generator, normalizer, stats = (state.actor, state.critic, state.optimizer,
                                                              state.generator, state.normalizer, state.stats)
    N, rollout_size = env_cfg.num_envs, config.rollout_size
    num_updates = math.ceil(train_cfg.total_timesteps / rollout_size)
    writer = open_writer(out_dir, config, resumed=saved is not None,
                         continuous_actions=isinstance(actor, GaussianActor), global_step=state.global_step)
    log.info("%s %s in %s | %s | %s | tensorboard --logdir %s", "Resuming" if saved else "Training", env_cfg.id,
             out_dir, describe_run(config, num_updates, state), precision.describe(), out_dir)
    progress = Progress(num_updates * rollout_size, enabled=train_cfg.progress, start_step=state.global_step,
                        name=run_name)
    timer = PhaseTimer()
    clock_start = time.perf_counter() - state.train_seconds
    env_seed = config.seed if saved is None else resumed_env_seed(config.seed, state.update)
    env_state = EnvState.reset(envs, env_seed, normalizer, resumed=saved is not None,
                               terminal_on_life_loss=env_cfg.terminal_on_life_loss)
    rollout = Rollout.allocate(agent.n_steps, N, state.obs_shape, actor.action_shape, actor.action_dtype,
                               obs_dtype=storage_dtype(envs.single_observation_space.dtype),
                               same_step_resets=not env_state.next_step_reset,
                               channels_last=reads_channels_last(actor))
    # A shared torso's acting pass gives the values too; separate networks run the critic once over the
    # rollout, which costs less than a second forward pass at every step.
    values_while_acting = shared_torso(actor, critic) is not None
    last_checkpoint = (state.update, state.global_step) if saved is not None else None
    interrupted = None  # the name of the signal that stopped the run early
    stop = StopSignals()
    try:
        for update in range(state.update + 1, num_updates + 1):
            policy_clip = apply_schedules(optimizer, agent, update, num_updates)

            # ---- COLLECT ----
            with timer("collect"):
                episodes = collect_rollout(envs, actor, rollout, env_state, generator, normalizer, timer,
                                           critic=critic if values_while_acting else None, precision=precision)
            record_episodes(writer, stats, episodes, state.global_step, N, time.perf_counter() - clock_start,
                            train_cfg.max_episodes)
            state.global_step, state.update = state.global_step + rollout_size, update
            stats.advance(rollout_size)
            if (train_cfg.stop_when_solved and stats.steps_to_solve is not None) or \
                    stats.episodes == train_cfg.max_episodes:
                break

            # ---- ADVANTAGES ----
            with timer("advantages"):
                data = rollout.to(device)
                with precision.autocast():
                    values, next_values = estimate_values(critic, data, torch.from_numpy(env_state.obs).to(device),
                                                          acted=values_while_acting)
                advantages = compute_gae(data.rewards, values, next_values, data.terminated, data.ended,
                                         agent.gamma, agent.gae_lambda)
                returns = advantages + values

            # ---- UPDATE ----
            # Every step but next-step autoreset's reset steps, gathered once for all epochs.
            samples = Samples.gather(data.trainable, data.obs, data.actions, data.log_probs, advantages, returns,
                                     values)
            losses = ppo_update(actor, critic, optimizer, samples, agent, policy_clip, generator, timer,
                                minibatch_loss_fn)
            problem = non_finite(losses, actor, critic)
            if problem:  # stop before a NaN is logged or checkpointed
                writer.close()
                raise TrainingDiverged(divergence_message(problem, update, state.global_step, last_checkpoint,
                                                          checkpoint_path))

            # ---- LOG ----
            with timer("log"):
                elapsed = time.perf_counter() - clock_start
                explained = explained_variance(predictions=samples.values, targets=samples.returns)
                log_update(writer, state, losses, agent, policy_clip, explained, elapsed)
                progress.update(state.global_step, stats.mean_score())
            if train_cfg.checkpoint_every and update % train_cfg.checkpoint_every == 0:
                with timer("checkpoint"):
                    state.train_seconds = time.perf_counter() - clock_start
                    save_training_state(checkpoint_path, state, config, writer)
                    last_checkpoint = (state.update, state.global_step)
            if stop.signal is not None and update < num_updates:
                interrupted = stop.signal
                break
    finally:
        stop.restore()
        progress.close(state.global_step, stats.mean_score())
        envs.close()

    state.train_seconds = time.perf_counter() - clock_start
    save_training_state(checkpoint_path, state, config, writer, finished=interrupted is None)
    if interrupted is not None:
        writer.close()
        log.warning("%s: stopped at env step %d (update %d of %d), checkpoint saved. Resume with: "
                    "python -m ppo.run resume=%s", interrupted, state.global_step, state.update, num_updates, out_dir)
        stop.hand_over()
        return {"interrupted": interrupted, "global_step": state.global_step, "update": state.update}

    # ---- EVALUATE ----
    policy = Policy(actor, normalizer, precision)
    eval_scores = evaluate(policy, env_cfg, train_cfg.eval_episodes, seed=config.seed + EVAL_SEED_OFFSET)
    log_evaluation(writer, eval_scores, state.global_step)
    if len(eval_scores):
        log.info("Evaluation: %.1f ± %.1f over %d greedy episodes", np.mean(eval_scores), np.std(eval_scores),
                 len(eval_scores))
    if train_cfg.video:
        record_video(policy, env_cfg, out_dir / "videos", seed=config.seed + EVAL_SEED_OFFSET, writer=writer,
                     step=state.global_step)
    writer.close()
    metrics = run_metrics(state, config, eval_scores, num_updates * rollout_size, timer)
    write_json(out_dir / METRICS_FILE, metrics)
    return metrics


def non_finite(losses: PPOLoss | None, actor: Actor, critic: Critic) -> list[str]:
    """What went NaN or infinite in the last update: loss terms and networks whose parameters are
    not all finite."""
    problem = [LOSS_TAGS[name] for name, value in (losses._asdict().items() if losses else ())
               if not math.isfinite(value)]
    norms = torch.stack([torch.nn.utils.get_total_norm(list(network.parameters())) for network in (actor, critic)])
    problem += [f"{name} parameters" for name, norm in zip(("actor", "critic"), norms.tolist())
                if not math.isfinite(norm)]  # one host sync for both networks
    return problem


def divergence_message(problem: list[str], update: int, global_step: int, last_checkpoint: tuple[int, int] | None,
                       checkpoint_path: Path) -> str:
    kept = (f"the last good checkpoint is {checkpoint_path} (update {last_checkpoint[0]}, env step "
            f"{last_checkpoint[1]})" if last_checkpoint else "no checkpoint was written before it")
    return (f"training diverged at update {update} (env step {global_step}): {', '.join(problem)} not finite; "
            f"{kept}. A smaller agent.lr, or agent.max_grad_norm, may help")


def resumed_env_seed(seed: int, update: int) -> int:
    """The seed that resets the envs when a run resumes after ``update`` updates: a function of the
    run's seed and the update only, so that resuming from one checkpoint twice gives the same run.
    (An env's state cannot be saved in general, so the episodes in progress at the stop restart.)"""
    return int(np.random.SeedSequence([seed, update]).generate_state(1)[0])


PREEMPT_SIGNAL_ENV = "SUBMITIT_PREEMPT_SIGNAL"
"""Names the signal submitit sends a job before SLURM preempts it or its time runs out (USR2 unless set)."""


class StopSignals:
    """While installed, SIGINT (Ctrl-C) and SIGTERM (what a cluster sends on preemption) do not kill
    the process: they set ``signal`` to the signal's name, and the loop stops after the update in
    progress with a checkpoint. So does a cluster's preemption signal (``$SUBMITIT_PREEMPT_SIGNAL``,
    USR2 by default) where a handler of it is installed (submitit's, which requeues the job):
    :meth:`hand_over` then passes it on to that handler once the checkpoint is saved, and the
    requeued job resumes from it. ``restore`` puts the previous handlers back. Installed in the main
    thread only (Python allows signal handlers nowhere else); elsewhere ``signal`` stays None."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signal: str | None = None
        self.previous = {}
        if threading.current_thread() is not threading.main_thread():
            return
        preempt = getattr(signal, "SIG" + os.environ.get(PREEMPT_SIGNAL_ENV, "USR2"), None)
        self.preempt = preempt if preempt is not None and callable(signal.getsignal(preempt)) else None
        signals = (*self.SIGNALS, self.preempt) if self.preempt is not None else self.SIGNALS
        self.previous = {signum: signal.signal(signum, self._handle) for signum in signals}

    def _handle(self, signum: int, _frame) -> None:
        self.signal = signal.Signals(signum).name  # no I/O here: the loop reports and saves

    def restore(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def hand_over(self) -> None:
        """Pass the preemption signal that stopped the run on to the handler it replaced (submitit's
        requeues the job and exits); any other signal: nothing."""
        preempt = getattr(self, "preempt", None)
        if preempt is not None and self.signal == signal.Signals(preempt).name:
            self.previous[preempt](preempt, None)


def select_device(device: DeviceConfig) -> torch.device:
    """The torch device of the ``device`` group, with torch's CPU thread count set."""
    if device.torch_threads:
        torch.set_num_threads(device.torch_threads)
    if device.type == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device.type='cuda' is not allowed: no CUDA device is available here; use cpu or auto")
    return torch.device(device.type)


def describe_run(config: Config, num_updates: int, state: TrainingState) -> str:
    """The key hyperparameters in one line, for the run's first log line."""
    agent = config.agent
    return (f"{config.env.num_envs} envs x {agent.n_steps} steps, minibatch {agent.batch_size}, {agent.n_epochs} "
            f"epochs, lr {agent.lr:g}, clip {agent.policy_clip:g}, gamma {agent.gamma:g}, lambda {agent.gae_lambda:g}, "
            f"{num_updates * config.rollout_size:,} steps, seed {config.seed}, solved at "
            f"{'n/a' if state.stats.solved_score is None else f'{state.stats.solved_score:g}'}")
