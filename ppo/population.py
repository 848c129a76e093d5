"""Which runs of a sweep may train together as one population, and what a member is.

A population trains K runs that share everything but their per-member numbers (:data:`PER_MEMBER`:
seed, clip ε, λ, γ, learning rate, loss coefficients, clipping and schedules) in one process, with one
batched update (:mod:`ppo.population_trainer`). The launcher (``hydra/launcher=population``) groups a
sweep's jobs by :func:`population_key`, which needs no torch. Runs that cannot share an update (a CNN,
a shared torso, bf16, observation normalization with same-step autoreset) and populations of one
train with :func:`ppo.train.train`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ppo.config import Config, to_dict

PER_MEMBER = ("seed", "resume", "agent.policy_clip", "agent.gae_lambda", "agent.gamma", "agent.lr",
              "agent.entropy_coef", "agent.critic_coef", "agent.max_grad_norm", "agent.value_clip",
              "agent.anneal_lr", "agent.anneal_policy_clip")
"""The config keys whose values may differ between the members of one population."""


@dataclass
class PopulationJob:
    """One member of a population: a run's config, its run dir, and whether it resumes from the
    checkpoint there (as :func:`ppo.train.train` takes them)."""

    config: Config
    out_dir: Path
    resume: bool = False
    run_name: str | None = None


def population_key(config: Config) -> tuple | None:
    """What runs must share to train as one population: every key but :data:`PER_MEMBER` (and
    whether ``max_grad_norm`` and ``value_clip`` are set at all); None for a run that trains alone."""
    if config.network.type != "mlp" or config.network.shared_torso or config.device.precision == "bf16":
        return None
    if config.env.normalize_observations and config.env.autoreset_mode == "same_step":
        return None  # a truncated episode's final observation is normalized by its member: one at a time
    values = to_dict(config)
    for key in PER_MEMBER:
        section, _, name = key.rpartition(".")
        (values[section] if section else values).pop(name)
    agent = config.agent
    return (repr(sorted(values.items())), agent.max_grad_norm is None, agent.value_clip is None)
