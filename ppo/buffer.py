"""Rollout storage, preallocated once, and the minibatch split of each epoch."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch


@dataclass
class Rollout:
    """One rollout of ``n_steps`` vector steps from ``num_envs`` envs: every field is (T, N, ...)
    with T = n_steps and N = num_envs, overwritten in place each update.

    It lives on the host, beside the env, so each step writes into it through numpy views without a
    device round trip; the update moves it to the training device once (a no-op on a CPU).
    """

    obs: torch.Tensor  # (T, N, obs_dim) float: s_t
    actions: torch.Tensor  # (T, N) long for discrete actions, (T, N, action_dim) float for Box: a_t
    log_probs: torch.Tensor  # (T, N) float: log π_old(a_t|s_t)
    rewards: torch.Tensor  # (T, N) float: r_t
    terminated: torch.Tensor  # (T, N) float 0/1: s_{t+1} is terminal, V(s_{t+1}) = 0
    ended: torch.Tensor  # (T, N) float 0/1: terminated or truncated, the episode stops here
    trainable: torch.Tensor  # (T, N) bool: False for a sub-env's reset step in next-step autoreset
    # mode, which ignores the action and spans two episodes: no transition to learn from.
    final_obs: torch.Tensor  # (T, N, obs_dim) float: same-step autoreset mode, the true last obs of
    has_final_obs: torch.Tensor  # (T, N) bool:  an episode truncated at t, to bootstrap from

    @classmethod
    def allocate(cls, n_steps: int, num_envs: int, obs_dim: int, action_shape: tuple[int, ...] = (),
                 action_dtype: torch.dtype = torch.long) -> Rollout:
        """Zeroed storage; ``action_shape`` and ``action_dtype`` are the actor's (one index per env
        for discrete actions, a float vector for Box actions)."""
        def zeros(*trailing: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.zeros((n_steps, num_envs, *trailing), dtype=dtype)

        return cls(
            obs=zeros(obs_dim), actions=zeros(*action_shape, dtype=action_dtype), log_probs=zeros(), rewards=zeros(),
            terminated=zeros(), ended=zeros(), trainable=zeros(dtype=torch.bool),
            final_obs=zeros(obs_dim), has_final_obs=zeros(dtype=torch.bool),
        )

    def to(self, device: torch.device | str) -> Rollout:
        """The rollout on ``device``: the same tensors where they already are there."""
        return Rollout(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def next_values(self, values: torch.Tensor, last_values: torch.Tensor,
                    final_values: torch.Tensor | None) -> torch.Tensor:
        """V(s_{t+1}) for every step, (T, N), from the critic's ``values`` (T, N) of the stored obs:
        the next step's value, ``last_values`` (N,) (of the obs after the rollout) for the last step,
        and ``final_values`` (T, N) (of ``final_obs``) where a same-step reset replaced the next obs.
        In next-step mode a finished episode's last obs *is* the next stored obs, so truncated
        episodes bootstrap from it with no extra forward pass."""
        shifted = torch.cat((values[1:], last_values.unsqueeze(0)))
        if final_values is None:
            return shifted
        return torch.where(self.has_final_obs.to(values.device), final_values, shifted)


def trainable_samples(trainable: torch.Tensor, *per_step: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each (T, N, ...) tensor of ``per_step`` as samples (T*N, ...), keeping only the steps where
    ``trainable`` (T, N) is true, in the same order for all: row i of every result is one transition."""
    index = trainable.reshape(-1).nonzero().squeeze(1)
    return tuple(tensor.reshape(-1, *tensor.shape[2:])[index] for tensor in per_step)


def minibatches(n_samples: int, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor | slice, ...]:
    """One epoch's split of ``n_samples`` samples into ceil(n_samples / batch_size) minibatches, as
    indices into the samples: every sample is in exactly one of them, and their sizes differ by at
    most one (all equal ``batch_size`` when it divides ``n_samples``).

    Several minibatches are a fresh random permutation, split, on ``generator``'s device (the
    trainer's). A single one is ``slice(None)``, all samples in order: its mean loss does not depend
    on the order, so it needs no shuffle, no draw from ``generator`` and no copy of the samples."""
    n_minibatches = math.ceil(n_samples / batch_size)
    if n_minibatches <= 1:
        return (slice(None),) * n_minibatches
    return torch.randperm(n_samples, generator=generator, device=generator.device).tensor_split(n_minibatches)
