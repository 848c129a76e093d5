"""Population training: :func:`ppo.train.train`'s loop for the K members of a population at once.

Each update, every member acts in its own vector env (its seed, its resets) through one batched
forward pass of all members' actors (:mod:`ppo.stacked`); GAE runs once over all members with each
one's γ and λ; and each minibatch step is one batched forward, backward and Adam step for all members,
each drawing its own minibatches with its own generator (:func:`ppo.update.population_update`).

Members are independent runs: a member's numbers depend on its own config alone, and its run dir holds
what a single run's holds (checkpoint, TensorBoard events and HParams, ``metrics.json``). A member that
finishes, stops early or diverges leaves the population, which goes on without it.

The members' K vector envs of N sub-envs act as one of K*N (:class:`PopulationEnvs`, member-major),
so :func:`ppo.rollout.collect_rollout`, :func:`ppo.rollout.estimate_values` and
:func:`ppo.gae.compute_gae` serve a population as they serve one run. The stacked networks and Adam
hold the weights while members train together; each member's own networks and torch Adam get them
back whenever the member checkpoints, and when it leaves.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import gymnasium as gym
import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from ppo.checkpoint import load_checkpoint
from ppo.dashboard import LOSS_TAGS, log_evaluation, log_update, open_writer, record_episodes
from ppo.envs import make_envs
from ppo.errors import ConfigError, TrainingDiverged
from ppo.evaluate import EVAL_SEED_OFFSET, evaluate, record_video, require_video
from ppo.gae import compute_gae
from ppo.networks import GaussianActor, Policy
from ppo.normalize import Normalizer
from ppo.population import PopulationJob
from ppo.precision import choose_precision
from ppo.progress import Progress
from ppo.rollout import EnvState, EpisodeTracker, LifeLoss, Rollout, collect_rollout, estimate_values, storage_dtype
from ppo.rundir import CHECKPOINT_FILE, METRICS_FILE, read_metrics, write_json
from ppo.stacked import PopulationActor, PopulationCritic, PopulationParameters
from ppo.state import TrainingState, run_metrics, save_training_state
from ppo.timing import PhaseTimer
from ppo.train import StopSignals, describe_run, divergence_message, resumed_env_seed, select_device, train
from ppo.update import Samples, explained_variance, population_update, schedules

log = logging.getLogger("ppo.train")

MEMBER_LOG_KEY = "run_dir"
"""The attribute that marks a log record as one member's (its run dir): the launcher's worker writes
such a record to that member's run.log only, and every other record to every member's."""


def train_population(jobs: list[PopulationJob]) -> list[dict | BaseException]:
    """Train ``jobs`` (all of one :func:`population_key`) together. Returns each member's metrics, as
    :func:`ppo.train.train` returns them (``{"interrupted": ...}`` after SIGINT or SIGTERM), or the
    exception that stopped that member alone (a refused config, :class:`TrainingDiverged`)."""
    if len(jobs) == 1:
        job = jobs[0]
        try:
            return [train(job.config, job.out_dir, resume=job.resume, run_name=job.run_name)]
        except Exception as err:
            return [err]
    return PopulationTrainer(jobs).run()


@dataclass
class Member:
    """One member's run: what :func:`ppo.train.train` keeps in its locals."""

    index: int  # its job's position
    job: PopulationJob
    envs: gym.vector.VectorEnv
    state: TrainingState
    writer: SummaryWriter
    progress: Progress
    env_state: EnvState
    num_updates: int
    clock_start: float
    last_checkpoint: tuple[int, int] | None

    @property
    def config(self):
        return self.job.config


class PopulationTrainer:
    """Trains the members of one population until each has finished, stopped or failed."""

    def __init__(self, jobs: list[PopulationJob]):
        self.results: list[dict | BaseException | None] = [None] * len(jobs)
        self.device = select_device(jobs[0].config.device)
        self.timer = PhaseTimer()
        self.members: list[Member] = []
        for index, job in enumerate(jobs):
            try:
                self.members.append(self.start(index, job))
            except Exception as err:  # a member refused at its start never enters
                self.results[index] = err

    def start(self, index: int, job: PopulationJob) -> Member:
        """Set up one member as :func:`ppo.train.train` sets up a run (from its checkpoint when resumed)."""
        config, checkpoint_path = job.config, job.out_dir / CHECKPOINT_FILE
        saved = load_checkpoint(checkpoint_path) if job.resume else None
        if config.train.video:
            require_video("train.video=true")
        torch.manual_seed(config.seed)  # the member's initial weights come from its seed alone
        envs = make_envs(config.env)
        try:
            state = TrainingState.create(config, envs, self.device)
            if saved is not None:
                state.resume_from(saved, str(checkpoint_path), config, reported=read_metrics(job.out_dir) is not None)
        except Exception:
            envs.close()
            raise
        num_updates = math.ceil(config.train.total_timesteps / config.rollout_size)
        writer = open_writer(job.out_dir, config, resumed=saved is not None,
                             continuous_actions=isinstance(state.actor, GaussianActor), global_step=state.global_step)
        precision = choose_precision(config.device.precision, self.device, config.network.type)
        if precision.name != "fp32":  # population_key keeps bf16 runs out: auto keeps MLPs float32
            raise ConfigError(f"device.precision={config.device.precision!r} is not allowed in a population: it "
                              f"chose {precision.describe()}; populations train in fp32")
        tag = {MEMBER_LOG_KEY: str(job.out_dir)}
        log.info("%s %s in %s | %s | %s | tensorboard --logdir %s", "Resuming" if saved else "Training",
                 config.env.id, job.out_dir, describe_run(config, num_updates, state), precision.describe(),
                 job.out_dir, extra=tag)
        progress = Progress(num_updates * config.rollout_size, enabled=config.train.progress,
                            start_step=state.global_step, name=job.run_name or job.out_dir.name, bar=False,
                            log_extra=tag)
        env_seed = config.seed if saved is None else resumed_env_seed(config.seed, state.update)
        env_state = EnvState.reset(envs, env_seed, state.normalizer, resumed=saved is not None,
                                   terminal_on_life_loss=config.env.terminal_on_life_loss)
        return Member(index, job, envs, state, writer, progress, env_state, num_updates,
                      time.perf_counter() - state.train_seconds,
                      (state.update, state.global_step) if saved is not None else None)

    def run(self) -> list[dict | BaseException]:
        stop = StopSignals()
        try:
            while self.members:
                for member in [m for m in self.members if m.state.update >= m.num_updates]:
                    self.leave(member, self.finish)
                if self.members and stop.signal is not None:  # after the update in progress, as a run stops
                    for member in list(self.members):
                        self.leave(member, partial(self.interrupt, signal_name=stop.signal))
                    stop.hand_over()
                if self.members:
                    self.train_together(stop)
        finally:
            stop.restore()
            for member in self.members:
                member.envs.close()
        return self.results

    def leave(self, member: Member, outcome) -> None:
        """Take ``member`` out of the population with its result: ``outcome(member)``, or its error."""
        self.members.remove(member)
        try:
            self.results[member.index] = outcome(member)
        except Exception as err:
            self.results[member.index] = err
        finally:
            member.progress.close(member.state.global_step, member.state.stats.mean_score())
            member.envs.close()

    def train_together(self, stop: StopSignals) -> None:
        """Train the members as one population until one of them leaves it (its budget spent, stopped
        early, diverged) or a signal comes. Every member's own networks, Adam, env state and counters
        are up to date when it returns."""
        members, timer = list(self.members), self.timer
        agents = [m.config.agent for m in members]
        first = members[0]
        num_envs, rollout_size, train_cfg = first.config.env.num_envs, first.config.rollout_size, first.config.train
        actor = PopulationActor([m.state.actor for m in members])
        critic = PopulationCritic([m.state.critic for m in members])
        pairs = [actor.pairs(m.state.actor) + critic.pairs(m.state.critic) for m in members]
        parameters = PopulationParameters([actor.parameters(), critic.parameters()], len(members))
        parameters.adopt([actor, critic])
        for k, member in enumerate(members):
            parameters.load_member(k, pairs[k], member.state.optimizer)
        envs = PopulationEnvs([m.envs for m in members])
        normalizer = PopulationNormalizer([m.state.normalizer for m in members])
        env_state = join_env_states([m.env_state for m in members])
        rollout = Rollout.allocate(first.config.agent.n_steps, envs.num_envs, first.state.obs_shape,
                                   actor.action_shape, actor.action_dtype,
                                   obs_dtype=storage_dtype(first.envs.single_observation_space.dtype),
                                   same_step_resets=not env_state.next_step_reset)
        gamma, gae_lambda = (torch.tensor([getattr(a, key) for a in agents], device=self.device)
                             .repeat_interleave(num_envs) for key in ("gamma", "gae_lambda"))
        generators = [m.state.generator for m in members]
        leaving: dict[int, Callable[[Member], dict]] = {}  # member -> how it leaves: its result, or raises
        diverged: set[int] = set()
        while not leaving and stop.signal is None:
            updates = [m.state.update + 1 for m in members]
            lrs, policy_clips = zip(*(schedules(m.config.agent, update, m.num_updates)
                                      for m, update in zip(members, updates)))
            parameters.set_lr(lrs)

            # ---- COLLECT ----
            with timer("collect"):
                episodes = collect_rollout(envs, actor, rollout, env_state, generators, normalizer, timer)
            stopped, own = [], [[] for _ in members]
            for episode in episodes:
                own[episode[3] // num_envs].append(episode)
            for k, member in enumerate(members):
                state = member.state
                record_episodes(member.writer, state.stats, own[k], state.global_step, num_envs,
                                time.perf_counter() - member.clock_start, train_cfg.max_episodes)
                state.global_step, state.update = state.global_step + rollout_size, updates[k]
                state.stats.advance(rollout_size)
                if (train_cfg.stop_when_solved and state.stats.steps_to_solve is not None) or \
                        state.stats.episodes == train_cfg.max_episodes:
                    stopped.append(k)
                    leaving[k] = self.finish

            # ---- ADVANTAGES ----
            with timer("advantages"):
                data = rollout.to(self.device)
                values, next_values = estimate_values(critic, data, torch.from_numpy(env_state.obs).to(self.device))
                advantages = compute_gae(data.rewards, values, next_values, data.terminated, data.ended, gamma,
                                         gae_lambda)
                returns = advantages + values

            # ---- UPDATE ---- (a member that stopped early learns nothing more, as its single run)
            columns = [slice(k * num_envs, (k + 1) * num_envs) for k in range(len(members))]
            samples = [None if k in stopped else
                       Samples.gather(*(tensor[:, columns[k]] for tensor in (data.trainable, data.obs, data.actions,
                                                                           data.log_probs, advantages, returns,
                                                                           values)))
                       for k in range(len(members))]
            losses = population_update(actor, critic, parameters, samples, agents, list(policy_clips), generators,
                                       timer)
            finite = parameters.finite()

            # ---- LOG, CHECKPOINT ----
            for k, member in enumerate(members):
                if k in stopped:
                    continue
                problem = [LOSS_TAGS[name] for name, value in (losses[k]._asdict().items() if losses[k] else ())
                           if not math.isfinite(value)] + ([] if finite[k] else ["parameters"])
                if problem:
                    leaving[k] = partial(self.diverge, problem=problem)
                    diverged.add(k)
                    continue
                state = member.state
                if actor.continuous:  # the action std that log_update reports
                    with torch.no_grad():
                        state.actor.log_std.copy_(actor.log_std[k, 0])
                for group in state.optimizer.param_groups:
                    group["lr"] = lrs[k]
                with timer("log"):
                    elapsed = time.perf_counter() - member.clock_start
                    explained = explained_variance(predictions=samples[k].values, targets=samples[k].returns)
                    log_update(member.writer, state, losses[k], member.config.agent, policy_clips[k], explained,
                               elapsed)
                    member.progress.update(state.global_step, state.stats.mean_score())
                every = member.config.train.checkpoint_every
                if every and state.update % every == 0:
                    with timer("checkpoint"):
                        parameters.write_member(k, pairs[k], member.state.optimizer)
                        state.train_seconds = time.perf_counter() - member.clock_start
                        save_training_state(member.job.out_dir / CHECKPOINT_FILE, state, member.config, member.writer)
                        member.last_checkpoint = (state.update, state.global_step)
                if state.update >= member.num_updates:
                    leaving[k] = self.finish

        split_env_state(env_state, [m.env_state for m in members])
        for k, member in enumerate(members):
            if k not in diverged:  # a diverged member's last good checkpoint stays as it is
                parameters.write_member(k, pairs[k], member.state.optimizer)
        for k, outcome in leaving.items():
            self.leave(members[k], outcome)

    @staticmethod
    def diverge(member: Member, problem: list[str]) -> dict:
        """A member whose loss or weights went non-finite fails, as its single run would."""
        member.writer.close()
        raise TrainingDiverged(divergence_message(problem, member.state.update, member.state.global_step,
                                                  member.last_checkpoint, member.job.out_dir / CHECKPOINT_FILE))

    def finish(self, member: Member) -> dict:
        """What :func:`ppo.train.train` does after its loop: the final checkpoint, the greedy
        evaluation, ``metrics.json``."""
        state, config, out_dir = member.state, member.config, member.job.out_dir
        state.train_seconds = time.perf_counter() - member.clock_start
        save_training_state(out_dir / CHECKPOINT_FILE, state, config, member.writer, finished=True)
        policy = Policy(state.actor, state.normalizer)
        eval_scores = evaluate(policy, config.env, config.train.eval_episodes, seed=config.seed + EVAL_SEED_OFFSET)
        log_evaluation(member.writer, eval_scores, state.global_step)
        if len(eval_scores):
            log.info("Evaluation of %s: %.1f ± %.1f over %d greedy episodes", out_dir.name, np.mean(eval_scores),
                     np.std(eval_scores), len(eval_scores), extra={MEMBER_LOG_KEY: str(out_dir)})
        if config.train.video:
            record_video(policy, config.env, out_dir / "videos", seed=config.seed + EVAL_SEED_OFFSET,
                         writer=member.writer, step=state.global_step)
        member.writer.close()
        metrics = run_metrics(state, config, eval_scores, member.num_updates * config.rollout_size, self.timer)
        write_json(out_dir / METRICS_FILE, metrics)
        return metrics

    @staticmethod
    def interrupt(member: Member, signal_name: str) -> dict:
        """A signal stopped the population: the member's checkpoint, to resume from."""
        state = member.state
        state.train_seconds = time.perf_counter() - member.clock_start
        save_training_state(member.job.out_dir / CHECKPOINT_FILE, state, member.config, member.writer)
        member.writer.close()
        log.warning("%s: stopped %s at env step %d (update %d of %d), checkpoint saved. Resume with: "
                    "python -m ppo.run resume=<sweep dir>", signal_name, member.job.out_dir, state.global_step,
                    state.update, member.num_updates, extra={MEMBER_LOG_KEY: str(member.job.out_dir)})
        return {"interrupted": signal_name, "global_step": state.global_step, "update": state.update}


class PopulationEnvs:
    """The members' K vector envs of N sub-envs as one vector env of K*N, member k's sub-envs at
    k*N to (k+1)*N - 1: each member's env steps with its own actions, seeds and resets."""

    def __init__(self, member_envs: list[gym.vector.VectorEnv]):
        self.member_envs = member_envs
        self.width = member_envs[0].num_envs
        self.num_envs = self.width * len(member_envs)
        self.metadata = member_envs[0].metadata

    def step(self, actions: np.ndarray):
        steps = [envs.step(actions[k * self.width:(k + 1) * self.width]) for k, envs in enumerate(self.member_envs)]
        obs, rewards, terminated, truncated = (np.concatenate([step[i] for step in steps]) for i in range(4))
        infos = {}
        if any("final_obs" in step[4] for step in steps):  # same-step autoreset: the episodes' last obs
            infos["final_obs"] = np.empty(self.num_envs, dtype=object)
            for k, step in enumerate(steps):
                if "final_obs" in step[4]:
                    infos["final_obs"][k * self.width:(k + 1) * self.width] = step[4]["final_obs"]
        if all("lives" in step[4] for step in steps):
            infos["lives"] = np.concatenate([step[4]["lives"] for step in steps])
        return obs, rewards, terminated, truncated, infos


class PopulationNormalizer:
    """The members' normalizers over the K*N member-major sub-envs, each with its own statistics
    and γ. A part of the rows (a truncated episode's final obs) only occurs without observation
    normalization (:func:`ppo.population.population_key`), where every member's is the same cast."""

    def __init__(self, normalizers: list[Normalizer]):
        self.normalizers = normalizers
        # without statistics or signs a normalizer only casts, the same for every member: one call for all
        self.casts_only = all(n.obs_stats is None and n.return_stats is None and not n.sign_rewards
                              for n in normalizers)

    def _rows(self, data: np.ndarray) -> list[np.ndarray]:
        return np.split(data, len(self.normalizers))

    def observations(self, obs: np.ndarray, update: bool = True) -> np.ndarray:
        if self.casts_only or len(obs) % len(self.normalizers):
            return self.normalizers[0].observations(obs, update=False)
        return np.concatenate([normalizer.observations(part, update)
                               for normalizer, part in zip(self.normalizers, self._rows(obs))])

    def rewards(self, rewards: np.ndarray, ended: np.ndarray, counted: np.ndarray) -> np.ndarray:
        if self.casts_only:
            return rewards
        return np.concatenate([normalizer.rewards(*parts) for normalizer, *parts in
                               zip(self.normalizers, self._rows(rewards), self._rows(ended), self._rows(counted))])


def join_env_states(states: list[EnvState]) -> EnvState:
    """The members' env states as one over their K*N sub-envs."""
    tracker = EpisodeTracker(0)
    tracker.scores = np.concatenate([state.tracker.scores for state in states])
    tracker.lengths = np.concatenate([state.tracker.lengths for state in states])
    life_loss = None
    if states[0].life_loss is not None:
        life_loss = LifeLoss(len(tracker.scores))
        lives = [state.life_loss.lives for state in states]
        life_loss.lives = None if any(part is None for part in lives) else np.concatenate(lives)
    return EnvState(np.concatenate([state.obs for state in states]),
                    np.concatenate([state.resets_now for state in states]), tracker, states[0].next_step_reset,
                    life_loss)


def split_env_state(joint: EnvState, states: list[EnvState]) -> None:
    """Write ``joint`` back into the members' own env states."""
    for k, state in enumerate(states):
        rows = slice(k * len(state.obs), (k + 1) * len(state.obs))
        state.obs, state.resets_now = joint.obs[rows].copy(), joint.resets_now[rows].copy()
        state.tracker.scores = joint.tracker.scores[rows].copy()
        state.tracker.lengths = joint.tracker.lengths[rows].copy()
        if state.life_loss is not None and joint.life_loss.lives is not None:
            state.life_loss.lives = joint.life_loss.lives[rows].copy()
