"""PPO training, top to bottom: ``train(config, out_dir) -> metrics``.

One iteration: COLLECT ``n_steps`` steps from ``num_envs`` envs into preallocated (T, N) tensors;
ADVANTAGES by GAE, once; UPDATE the actor and critic for ``n_epochs`` passes over shuffled
minibatches; LOG losses and diagnostics to TensorBoard. Then EVALUATE greedily and checkpoint.

Reliability around the loop: ``resume=True`` continues from the run dir's last checkpoint; SIGINT
and SIGTERM stop the run between two updates with a checkpoint; a NaN or infinite loss or
parameter raises :class:`TrainingDiverged` and leaves the last good checkpoint in place.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from torch.utils.tensorboard import SummaryWriter

from ppo.buffer import Rollout, minibatches, storage_dtype, trainable_samples
from ppo.checkpoint import (CHECKPOINT_DIR, LAST, POLICY_FIELDS, check_spaces, load_checkpoint, load_weights,
                            require_fields, save_checkpoint)
from ppo.compile import compile_if_it_pays
from ppo.config import AgentConfig, Config, DeviceConfig, to_dict
from ppo.errors import ConfigError, TrainingDiverged
from ppo.dashboard import custom_scalars_layout
from ppo.envs import EpisodeTracker, LifeLoss, make_envs, solved_score
from ppo.evaluate import EVAL_SEED_OFFSET, evaluate, record_video, require_video
from ppo.gae import compute_gae
from ppo.loss import PPOLoss, ppo_loss
from ppo.networks import (Actor, Critic, GaussianActor, Policy, action_space_spec, make_actor, make_critic,
                          parameter_groups, policy_and_values)
from ppo.normalize import Normalizer
from ppo.progress import Progress
from ppo.timing import PhaseTimer

log = logging.getLogger(__name__)

SCORE_WINDOW = 100  # episodes in the running mean that decides "solved" (gymnasium's convention)


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
    checkpoint_path = out_dir / CHECKPOINT_DIR / LAST

    # ---- SETUP ----
    saved = load_checkpoint(checkpoint_path) if resume else None  # a missing or corrupt file: ConfigError
    if train_cfg.video:
        require_video("train.video=true")  # now, not after training
    device = select_device(config.device)
    torch.manual_seed(config.seed)
    envs = make_envs(env_cfg)
    try:
        state = TrainingState.create(config, envs, device)
        if saved is not None:
            state.resume_from(saved, str(checkpoint_path), config)
    except ConfigError:
        envs.close()
        raise
    actor, critic, optimizer, generator, normalizer, stats = (state.actor, state.critic, state.optimizer,
                                                              state.generator, state.normalizer, state.stats)
    N, rollout_size = env_cfg.num_envs, config.rollout_size
    num_updates = math.ceil(train_cfg.total_timesteps / rollout_size)
    writer = open_writer(out_dir, config, resumed=saved is not None,
                         continuous_actions=isinstance(actor, GaussianActor), global_step=state.global_step)
    log.info("%s %s in %s | %s | tensorboard --logdir %s", "Resuming" if saved else "Training", env_cfg.id, out_dir,
             describe_run(config, num_updates, state), out_dir)
    progress = Progress(num_updates * rollout_size, enabled=train_cfg.progress, start_step=state.global_step,
                        name=run_name)
    timer = PhaseTimer()
    minibatch_loss_fn = compile_if_it_pays(minibatch_loss, config)  # compiles on its first call
    clock_start = time.perf_counter() - state.train_seconds
    env_seed = config.seed if saved is None else resumed_env_seed(config.seed, state.update)
    env_state = EnvState.reset(envs, env_seed, normalizer, resumed=saved is not None,
                               terminal_on_life_loss=env_cfg.terminal_on_life_loss)
    rollout = Rollout.allocate(agent.n_steps, N, state.obs_shape, actor.action_shape, actor.action_dtype,
                               obs_dtype=storage_dtype(envs.single_observation_space.dtype),
                               same_step_resets=not env_state.next_step_reset)
    last_checkpoint = (state.update, state.global_step) if saved is not None else None
    interrupted = None  # the name of the signal that stopped the run early
    stop = StopSignals()
    try:
        for update in range(state.update + 1, num_updates + 1):
            policy_clip = apply_schedules(optimizer, agent, update, num_updates)

            # ---- COLLECT ----
            with timer("collect"):
                episodes = collect_rollout(envs, actor, rollout, env_state, generator, normalizer, timer)
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
                values, next_values = estimate_values(critic, data, torch.from_numpy(env_state.obs).to(device))
                advantages = compute_gae(data.rewards, values, next_values, data.terminated, data.ended,
                                         agent.gamma, agent.gae_lambda)
                returns = advantages + values

            # ---- UPDATE ----
            # Every step but next-step autoreset's reset steps, gathered once for all epochs.
            samples = trainable_samples(data.trainable, data.obs, data.actions, data.log_probs, advantages, returns,
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
                explained = explained_variance(predictions=samples[5], targets=samples[4])  # values, returns
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
        return {"interrupted": interrupted, "global_step": state.global_step, "update": state.update}

    # ---- EVALUATE ----
    policy = Policy(actor, normalizer)
    eval_scores = evaluate(policy, env_cfg, train_cfg.eval_episodes, seed=config.seed + EVAL_SEED_OFFSET)
    log_evaluation(writer, eval_scores, state.global_step)
    if train_cfg.video:
        record_video(policy, env_cfg, out_dir / "videos", seed=config.seed + EVAL_SEED_OFFSET, writer=writer,
                     step=state.global_step)
    writer.close()
    metrics = run_metrics(state, config, eval_scores, num_updates * rollout_size, timer)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    return metrics


# --------------------------------------------------------------------------------------------
# What a run carries between updates, and what it reports
# --------------------------------------------------------------------------------------------


class RunStats:
    """Episode statistics of a run: the running mean of the last :data:`SCORE_WINDOW` scores, the
    best score and best mean, when the mean first reached the solved score, and the area under the
    mean-score curve over env steps (for :attr:`auc`)."""

    def __init__(self, solved_score: float | None):
        self.solved_score = solved_score
        self.recent_scores: deque[float] = deque(maxlen=SCORE_WINDOW)
        self.episodes = 0
        self.best_score: float | None = None
        self.best_mean_score: float | None = None  # over full windows of SCORE_WINDOW episodes
        self.steps_to_solve: int | None = None
        self.seconds_to_solve: float | None = None
        self.score_area = 0.0  # sum over env steps of the mean score at that step
        self.steps_before_first_score = 0  # steps taken before any episode ended: they count at its mean

    def record(self, score: float, step: int, seconds: float) -> None:
        """One finished episode, ended at env step ``step``, ``seconds`` into training."""
        self.episodes += 1
        self.best_score = score if self.best_score is None else max(self.best_score, score)
        self.recent_scores.append(score)
        if len(self.recent_scores) == SCORE_WINDOW:
            mean = self.mean_score()
            self.best_mean_score = mean if self.best_mean_score is None else max(self.best_mean_score, mean)
            if self.steps_to_solve is None and self.solved_score is not None and mean >= self.solved_score:
                self.steps_to_solve, self.seconds_to_solve = step, seconds

    def mean_score(self) -> float | None:
        """Mean of the last (up to) :data:`SCORE_WINDOW` scores; None before the first episode ends."""
        return sum(self.recent_scores) / len(self.recent_scores) if self.recent_scores else None

    def advance(self, steps: int) -> None:
        """``steps`` more env steps were taken at the current mean score."""
        mean = self.mean_score()
        if mean is None:
            self.steps_before_first_score += steps
            return
        self.score_area += mean * (steps + self.steps_before_first_score)
        self.steps_before_first_score = 0

    def auc(self, budget: int, steps_taken: int) -> float | None:
        """The area under the mean-score curve over the whole budget, divided by the budget: the
        time-average of the mean score, higher for a run that learns sooner even when all runs
        reach the same maximum. Steps left after an early stop count at the last mean."""
        mean = self.mean_score()
        if mean is None:
            return None
        return (self.score_area + mean * (budget - steps_taken + self.steps_before_first_score)) / budget

    def state_dict(self) -> dict:
        return {name: list(value) if isinstance(value, deque) else value for name, value in vars(self).items()}

    def load_state_dict(self, saved: dict) -> None:
        for name, value in saved.items():
            setattr(self, name, deque(value, maxlen=SCORE_WINDOW) if name == "recent_scores" else value)


@dataclass
class TrainingState:
    """Everything a run carries from one update to the next; a checkpoint is its :meth:`state_dict`
    (plus the config and the spaces), and resume is :meth:`load_state_dict`: a field added here is
    saved and restored with no other change."""

    actor: Actor
    critic: Critic
    optimizer: torch.optim.Optimizer
    generator: torch.Generator  # action samples and minibatch shuffles
    normalizer: Normalizer
    stats: RunStats
    obs_shape: tuple[int, ...]  # (obs_dim,) for vectors, (C, H, W) for images
    action_spec: dict
    global_step: int = 0
    update: int = 0
    train_seconds: float = 0.0

    @classmethod
    def create(cls, config: Config, envs: gym.vector.VectorEnv, device: torch.device) -> TrainingState:
        obs_shape = tuple(envs.single_observation_space.shape)
        action_spec = action_space_spec(envs.single_action_space)
        actor = make_actor(obs_shape, action_spec, config.network).to(device)
        critic = make_critic(obs_shape, config.network, actor).to(device)
        # Adam with eps 1e-5 as in SB3 and CleanRL; one parameter group per network (one for both when
        # they share a torso), so that each group's gradient can be clipped on its own (unless
        # agent.clip_grad_jointly), and the fused kernel updates a group in one op.
        optimizer = torch.optim.Adam([{"params": group} for group in parameter_groups(actor, critic)],
                                     lr=config.agent.lr, eps=1e-5, fused=True)
        threshold = solved_score(config.env)
        if threshold is None and config.train.objective == "steps_to_solve":
            raise ConfigError(f"train.objective='steps_to_solve' is not allowed: {config.env.id} has no solved score; "
                              "set env.solved_score, or choose auc, best_mean_score_100 or final_score")
        return cls(actor, critic, optimizer, torch.Generator(device=device).manual_seed(config.seed),
                   Normalizer.from_config(config.env, obs_shape[0], config.env.num_envs, config.agent.gamma),
                   RunStats(threshold), obs_shape, action_spec)

    def state_dict(self) -> dict:
        return {
            "actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
            "optimizer": self.optimizer.state_dict(), "normalizer": self.normalizer.state_dict(),
            "run_stats": self.stats.state_dict(),
            "torch_rng_state": torch.get_rng_state(), "generator_state": self.generator.get_state(),
            "global_step": self.global_step, "update": self.update, "train_seconds": self.train_seconds,
        }

    def load_state_dict(self, saved: dict, source: str) -> None:
        load_weights(self.actor, saved["actor"], "actor", source)
        load_weights(self.critic, saved["critic"], "critic", source)
        self.optimizer.load_state_dict(saved["optimizer"])
        self.normalizer.load_state_dict(saved["normalizer"])
        self.stats.load_state_dict(saved["run_stats"])
        torch.set_rng_state(saved["torch_rng_state"])
        try:
            self.generator.set_state(saved["generator_state"])
        except RuntimeError as err:
            raise ConfigError(f"checkpoint={source!r} cannot be resumed on this device ({err})") from None
        self.global_step, self.update, self.train_seconds = saved["global_step"], saved["update"], saved["train_seconds"]

    def resume_from(self, saved: dict, source: str, config: Config) -> None:
        """:meth:`load_state_dict` after checking that the checkpoint fits this run (env, network
        shape, normalization) and has work left: a finished run goes on only with a larger
        ``train.total_timesteps``. Raises :class:`ConfigError` naming what does not fit."""
        require_fields(saved, [*self.state_dict(), *POLICY_FIELDS, "finished"], source, "resumed")
        saved_budget = saved["config"]["train"]["total_timesteps"]
        if saved["finished"] and config.train.total_timesteps <= saved_budget:
            raise ConfigError(f"checkpoint={source!r} cannot be resumed: its run finished at env step "
                              f"{saved['global_step']}; a train.total_timesteps larger than {saved_budget} "
                              "trains it further")
        check_spaces(saved, self.obs_shape, self.action_spec, config.env.id, source)
        for option, key in (("normalize_observations", "observations"), ("normalize_rewards", "returns")):
            if getattr(config.env, option) and key not in saved["normalizer"]:
                raise ConfigError(f"checkpoint={source!r} cannot be resumed: env.{option} is true but the "
                                  f"checkpoint holds no {key} statistics")
        self.load_state_dict(saved, source)


def save_training_state(path: Path, state: TrainingState, config: Config, writer: SummaryWriter,
                        finished: bool = False) -> None:
    """Checkpoint ``state`` with what a reader needs besides it: the config and the spaces."""
    writer.flush()  # every point up to the checkpoint is on disk: a resumed run starts right after it
    save_checkpoint(path, {**state.state_dict(), "config": to_dict(config), "obs_shape": list(state.obs_shape),
                           "action_space": state.action_spec, "finished": finished})


def run_metrics(state: TrainingState, config: Config, eval_scores: np.ndarray, budget: int,
                timer: PhaseTimer) -> dict:
    """What a finished run reports in ``metrics.json`` and returns; strict JSON (None, never NaN):

    ``final_score`` (mean greedy evaluation score; None without evaluation episodes),
    ``best_mean_score_100``, ``auc`` (see :meth:`RunStats.auc`), ``steps_to_solve`` (None if the
    mean never reached ``solved_score``, itself None for an env without one) and ``objective``,
    the one of them that :func:`objective_value` hands a sweeper."""
    stats = state.stats
    return {
        "final_score": float(np.mean(eval_scores)) if len(eval_scores) else None,
        "final_score_std": float(np.std(eval_scores)) if len(eval_scores) else None,
        "best_mean_score_100": stats.best_mean_score,
        "auc": stats.auc(budget, state.global_step),
        "best_score": stats.best_score,
        "episodes": stats.episodes,
        "solved_score": stats.solved_score,
        "steps_to_solve": stats.steps_to_solve,
        "seconds_to_solve": stats.seconds_to_solve,
        "objective": config.train.objective,
        "budget": budget,
        "global_step": state.global_step,
        "train_seconds": state.train_seconds,
        "steps_per_second": state.global_step / state.train_seconds,
        # Wall seconds per phase; "collect" includes "env_step", the rest is acting and storage.
        "phase_seconds": {phase: round(seconds, 3) for phase, seconds in timer.seconds.items()},
    }


def objective_value(metrics: dict) -> float | None:
    """The number a sweeper optimizes: ``metrics[metrics["objective"]]``, with a run that never
    solved counted at its whole budget for ``steps_to_solve``. None where the metric was not
    measured: ``final_score`` without evaluation episodes, or no finished episode at all."""
    value = metrics[metrics["objective"]]
    if metrics["objective"] == "steps_to_solve" and value is None:
        return metrics["budget"]
    return value


def describe_run(config: Config, num_updates: int, state: TrainingState) -> str:
    """The key hyperparameters in one line, for the run's first log line."""
    agent = config.agent
    return (f"{config.env.num_envs} envs x {agent.n_steps} steps, minibatch {agent.batch_size}, {agent.n_epochs} "
            f"epochs, lr {agent.lr:g}, clip {agent.policy_clip:g}, gamma {agent.gamma:g}, lambda {agent.gae_lambda:g}, "
            f"{num_updates * config.rollout_size:,} steps, seed {config.seed}, solved at "
            f"{'n/a' if state.stats.solved_score is None else f'{state.stats.solved_score:g}'}")


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


def apply_schedules(optimizer: torch.optim.Optimizer, agent: AgentConfig, update: int, num_updates: int) -> float:
    """Set this update's learning rate (decayed linearly to 0 with ``agent.anneal_lr``) and return
    its clip ε (decayed likewise with ``agent.anneal_policy_clip``)."""
    if agent.anneal_lr:
        for group in optimizer.param_groups:
            group["lr"] = linear_decay(agent.lr, update, num_updates)
    return linear_decay(agent.policy_clip, update, num_updates) if agent.anneal_policy_clip else agent.policy_clip


def record_episodes(writer: SummaryWriter, stats: RunStats, episodes: list[tuple[int, float, int]],
                    rollout_start_step: int, num_envs: int, seconds: float, max_episodes: int | None) -> None:
    """The rollout's finished episodes ``(t, score, length)``, at the env step each ended, into the
    run statistics and TensorBoard; none past ``max_episodes``."""
    for t, score, length in episodes:
        if stats.episodes == max_episodes:
            return
        step = rollout_start_step + (t + 1) * num_envs
        stats.record(score, step, seconds)
        writer.add_scalar("episode/score", score, step)
        writer.add_scalar("episode/length", length, step)


def log_evaluation(writer: SummaryWriter, eval_scores: np.ndarray, global_step: int) -> None:
    if len(eval_scores):
        writer.add_scalar("eval/score", float(np.mean(eval_scores)), global_step)
        log.info("Evaluation: %.1f ± %.1f over %d greedy episodes", np.mean(eval_scores), np.std(eval_scores),
                 len(eval_scores))


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


# --------------------------------------------------------------------------------------------
# UPDATE
# --------------------------------------------------------------------------------------------


def ppo_update(actor: Actor, critic: Critic, optimizer: torch.optim.Optimizer, samples: tuple[torch.Tensor, ...],
               agent: AgentConfig, policy_clip: float, generator: torch.Generator, timer: PhaseTimer,
               minibatch_loss_fn: Callable | None = None) -> PPOLoss | None:
    """``agent.n_epochs`` passes over ``samples`` (observations, actions, old log-probabilities,
    advantages, returns, values at collection: one row per transition) in shuffled minibatches of
    ``agent.batch_size``, one Adam step each, with this update's clip ε ``policy_clip``. Each
    minibatch's loss comes from ``minibatch_loss_fn`` (:func:`minibatch_loss`, or its compiled form
    from :func:`ppo.compile.compile_if_it_pays`). Returns the mean of each loss term and diagnostic
    over the minibatches, as floats; None when there was no sample (every step of the rollout was a
    reset step)."""
    minibatch_loss_fn = minibatch_loss_fn or minibatch_loss
    obs, actions, old_log_probs, advantages, returns, old_values = samples
    param_groups = [group["params"] for group in optimizer.param_groups]
    if agent.clip_grad_jointly:
        param_groups = [[param for group in param_groups for param in group]]
    sums, n_minibatches = None, 0
    for _epoch in range(agent.n_epochs):
        for batch in minibatches(len(obs), agent.batch_size, generator):
            with timer("update_forward"):
                total, loss = minibatch_loss_fn(actor, critic, agent, policy_clip, obs[batch], actions[batch],
                                                old_log_probs[batch], advantages[batch], returns[batch],
                                                old_values[batch])
            with timer("update_backward"):
                optimizer.zero_grad(set_to_none=True)
                total.backward()
            with timer("update_optimizer"):
                if agent.max_grad_norm is not None:
                    for params in param_groups:
                        clip_grad_norm(params, agent.max_grad_norm)
                optimizer.step()
            terms = torch.stack(loss).detach()  # PPOLoss's fields, in its order
            sums = terms if sums is None else sums + terms
            n_minibatches += 1
    return PPOLoss(*(sums / n_minibatches).tolist()) if n_minibatches else None


def minibatch_loss(actor: Actor, critic: Critic, agent: AgentConfig, policy_clip: float, obs: torch.Tensor,
                   actions: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor,
                   returns: torch.Tensor, old_values: torch.Tensor) -> tuple[torch.Tensor, PPOLoss]:
    """One minibatch's loss to minimize, ``actor + critic_coef * critic - entropy_coef * entropy``,
    and its terms. Free of side effects, so that :mod:`ppo.compile` may compile it."""
    # log-probabilities or Gaussian means, and V(s); a shared torso runs once for both
    policy, values = policy_and_values(actor, critic, obs)
    if agent.normalize_advantages and advantages.numel() > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    loss = ppo_loss(
        new_log_probs=actor.log_prob(policy, actions),
        old_log_probs=old_log_probs,
        advantages=advantages,
        new_values=values,
        returns=returns,
        entropy=actor.entropy(policy),
        policy_clip=policy_clip,
        old_values=old_values,
        value_clip=agent.value_clip,
    )
    return total_loss(loss, agent), loss


def total_loss(loss: PPOLoss, agent: AgentConfig):
    """``actor + critic_coef * critic - entropy_coef * entropy``, of a minibatch's tensors or of an
    update's mean floats."""
    total = loss.actor + agent.critic_coef * loss.critic
    if agent.entropy_coef:  # else no backward pass through the entropy
        total = total - agent.entropy_coef * loss.entropy
    return total


def linear_decay(start: float, update: int, num_updates: int) -> float:
    """A schedule's value at ``update`` (1 to ``num_updates``): ``start`` at the first update, decayed
    linearly towards 0, ``start / num_updates`` at the last (SB3's and CleanRL's annealing)."""
    return start * (1.0 - (update - 1) / num_updates)


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


def wait_for_a_later_event_file_name(out_dir: Path) -> None:
    """TensorBoard reads a dir's event files in name order, and a name starts with the second it was
    made in, then the host, the process id and a counter, which sort as text: a file made in the same
    second as the stopped run's could sort before it, and the purge would come too early. Wait
    (at most a second, and only when resuming within the second the last file was made) so it can't."""
    seconds = [int(path.name.split(".")[3]) for path in out_dir.glob("events.out.tfevents.*")
               if path.name.split(".")[3].isdigit()]
    while seconds and time.time() < max(seconds) + 1:
        time.sleep(0.05)


class StopSignals:
    """While installed, SIGINT (Ctrl-C) and SIGTERM (what a cluster sends on preemption) do not kill
    the process: they set ``signal`` to the signal's name, and the loop stops after the update in
    progress with a checkpoint. ``restore`` puts the previous handlers back. Installed in the main
    thread only (Python allows signal handlers nowhere else); elsewhere ``signal`` stays None."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signal: str | None = None
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            self.previous = {signum: signal.signal(signum, self._handle) for signum in self.SIGNALS}

    def _handle(self, signum: int, _frame) -> None:
        self.signal = signal.Signals(signum).name  # no I/O here: the loop reports and saves

    def restore(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}


def explained_variance(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """1 - Var(targets - predictions) / Var(targets): 1 is a perfect critic, 0 no better than a
    constant, negative worse than one. NaN when the targets do not vary."""
    if targets.numel() < 2:
        return float("nan")
    targets_var = targets.var().item()
    return 1.0 - (targets - predictions).var().item() / targets_var if targets_var > 0 else float("nan")


def clip_grad_norm(params: list[torch.nn.Parameter], max_norm: float) -> None:
    """Scale the gradients of ``params`` so that their global L2 norm is at most ``max_norm``
    (``torch.nn.utils.clip_grad_norm_`` in its two public halves, without its per-call checks)."""
    grads = [p.grad for p in params if p.grad is not None]
    total_norm = torch.nn.utils.get_total_norm(grads, foreach=True)
    torch.nn.utils.clip_grads_with_norm_(params, max_norm, total_norm, foreach=True)


def select_device(device: DeviceConfig) -> torch.device:
    """The torch device of the ``device`` group, with torch's CPU thread count set."""
    if device.torch_threads:
        torch.set_num_threads(device.torch_threads)
    if device.type == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device.type='cuda' is not allowed: no CUDA device is available here; use cpu or auto")
    return torch.device(device.type)


@dataclass
class EnvState:
    """Where the vector env stands between two rollouts."""

    obs: np.ndarray  # (N, *obs_shape): the observation to act on next, normalized if the env config says so
    resets_now: np.ndarray  # (N,) bool: next-step autoreset mode, sub-envs whose next step() only resets
    tracker: EpisodeTracker  # score and length of each sub-env's episode in progress
    next_step_reset: bool  # the env's autoreset mode is next-step (else same-step)
    life_loss: LifeLoss | None = None  # env.terminal_on_life_loss: lost lives end episodes for learning

    @classmethod
    def reset(cls, envs: gym.vector.VectorEnv, seed: int, normalizer: Normalizer | None = None,
              resumed: bool = False, terminal_on_life_loss: bool = False) -> EnvState:
        """Reset the envs. A resumed run's first observations stand in for the ones the stopped run
        had already taken into the normalizer's statistics: they are not counted twice."""
        obs, _ = envs.reset(seed=seed)
        normalizer = normalizer or Normalizer(obs.shape[-1], envs.num_envs)
        return cls(normalizer.observations(obs, update=not resumed), np.zeros(envs.num_envs, dtype=bool),
                   EpisodeTracker(envs.num_envs), envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP,
                   LifeLoss(envs.num_envs) if terminal_on_life_loss else None)


@torch.inference_mode()
def collect_rollout(
    envs: gym.vector.VectorEnv, actor: Actor, rollout: Rollout, state: EnvState, generator: torch.Generator,
    normalizer: Normalizer | None = None, timer: PhaseTimer | None = None,
) -> list[tuple[int, float, int]]:
    """Fill ``rollout`` with its T vector steps, acting from ``state`` (advanced in place).

    Returns the episodes that ended in it as ``(t, score, length)``, ``t`` being the rollout step
    that ended each, scored in the env's own rewards; the rollout keeps the rewards and observations
    as ``normalizer`` makes them. One actor forward pass per step for all envs; values come later,
    in one pass.
    """
    device = next(actor.parameters()).device
    timer = timer or PhaseTimer()
    normalizer = normalizer or Normalizer(state.obs.shape[-1], envs.num_envs)  # none: data as the env gives it
    # numpy views of the host-side rollout: env outputs go in without torch op overhead.
    obs, rewards, terminated = rollout.obs.numpy(), rollout.rewards.numpy(), rollout.terminated.numpy()
    ended, trainable = rollout.ended.numpy(), rollout.trainable.numpy()
    rollout.has_final_obs.zero_()
    episodes = []
    for t in range(obs.shape[0]):
        obs[t] = state.obs
        policy = actor(torch.from_numpy(obs[t]).to(device))
        action = actor.sample(policy, generator)
        rollout.actions[t] = action
        rollout.log_probs[t] = actor.log_prob(policy, action)

        with timer("env_step"):
            next_obs, reward, term, trunc, infos = envs.step(actor.env_actions(action.cpu().numpy()))
        done = term | trunc
        counted = ~state.resets_now
        rewards[t] = normalizer.rewards(reward, done, counted)
        terminated[t], ended[t], trainable[t] = term, done, counted
        if state.life_loss is not None:  # for learning only: the game, its score and its resets go on
            lost = state.life_loss.update(infos, done)
            terminated[t], ended[t] = term | lost, done | lost
        if state.next_step_reset:
            state.resets_now = done
        elif trunc.any():
            # Same-step reset: next_obs already starts the new episode; the truncated one's true
            # last obs is in infos, and it is what the truncated step bootstraps from.
            cut = np.flatnonzero(trunc & ~term)
            if cut.size:
                rollout.final_obs.numpy()[t, cut] = normalizer.observations(np.stack(infos["final_obs"][cut]),
                                                                            update=False)
                rollout.has_final_obs[t, cut] = True
        state.obs = normalizer.observations(next_obs)
        scores, lengths = state.tracker.update(reward, done, counted)
        episodes += [(t, score, length) for score, length in zip(scores.tolist(), lengths.tolist())]
    return episodes


@torch.no_grad()
def estimate_values(critic: Critic, rollout: Rollout, next_obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """V(s_t) and V(s_{t+1}) for every step of a rollout already on the critic's device, (T, N) each,
    in batched forward passes: the critic is the same for the whole rollout."""
    values = _in_chunks(critic, rollout.obs)
    final_values = _in_chunks(critic, rollout.final_obs) if rollout.has_final_obs.any() else None
    return values, rollout.next_values(values, critic(next_obs), final_values)


IMAGE_CHUNK = 256  # images per value forward pass: a float copy of a chunk, never of the whole rollout


def _in_chunks(critic: Critic, obs: torch.Tensor) -> torch.Tensor:
    """``critic(obs)`` over (T, N, ...) observations: in one pass for vectors, in passes of about
    :data:`IMAGE_CHUNK` images for uint8 or bool images, which the network turns into floats."""
    if obs.is_floating_point():
        return critic(obs)
    return torch.cat([critic(chunk) for chunk in obs.split(max(1, IMAGE_CHUNK // obs.shape[1]))])
