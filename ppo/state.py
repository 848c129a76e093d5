"""What a run carries from one update to the next, and what it reports when it ends.

:class:`TrainingState` is the checkpoint (networks, Adam, normalizer, random streams, counters and
:class:`RunStats`); :func:`run_metrics` is ``metrics.json``, and :func:`objective_value` the number
of it that a sweeper optimizes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from ppo.checkpoint import POLICY_FIELDS, check_spaces, load_weights, require_fields, save_checkpoint
from ppo.config import Config, to_dict
from ppo.envs import solved_score
from ppo.errors import ConfigError
from ppo.networks import Actor, Critic, action_space_spec, make_actor, make_critic, parameter_groups
from ppo.normalize import Normalizer
from ppo.timing import PhaseTimer

SCORE_WINDOW = 100  # episodes in the running mean that decides "solved" (gymnasium's convention)


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
        self.global_step, self.update = saved["global_step"], saved["update"]
        self.train_seconds = saved["train_seconds"]

    def resume_from(self, saved: dict, source: str, config: Config, reported: bool = True) -> None:
        """:meth:`load_state_dict` after checking that the checkpoint fits this run (env, network
        shape, normalization) and has work left: a finished run goes on only with a larger
        ``train.total_timesteps``, or when it was stopped before it ``reported`` its metrics (during
        its evaluation). Raises :class:`ConfigError` naming what does not fit."""
        require_fields(saved, [*self.state_dict(), *POLICY_FIELDS, "finished"], source, "resumed")
        saved_budget = saved["config"]["train"]["total_timesteps"]
        if saved["finished"] and config.train.total_timesteps <= saved_budget and reported:
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
