"""Rollout storage, preallocated once, and the minibatch split of each epoch."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class Rollout:
    """One rollout of ``n_steps`` vector steps from ``num_envs`` envs: every field is (T, N, ...)
    with T = n_steps and N = num_envs, on the training device, overwritten in place each update."""

    obs: torch.Tensor  # (T, N, obs_dim) float: s_t
    actions: torch.Tensor  # (T, N) long: a_t
    log_probs: torch.Tensor  # (T, N) float: log π_old(a_t|s_t)
    values: torch.Tensor  # (T, N) float: V_old(s_t)
    rewards: torch.Tensor  # (T, N) float: r_t
    terminated: torch.Tensor  # (T, N) float 0/1: s_{t+1} is terminal, V(s_{t+1}) = 0
    ended: torch.Tensor  # (T, N) float 0/1: terminated or truncated, the episode stops here
    trainable: torch.Tensor  # (T, N) bool: False for a sub-env's reset step in next-step autoreset
    # mode, which ignores the action and spans two episodes: no transition to learn from.
    final_values: torch.Tensor  # (T, N) float: same-step autoreset mode, V(true last obs) of an
    has_final_value: torch.Tensor  # (T, N) bool:  episode truncated at t, to bootstrap from

    @classmethod
    def allocate(cls, n_steps: int, num_envs: int, obs_dim: int, device: torch.device | str) -> Rollout:
        def zeros(*trailing: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.zeros((n_steps, num_envs, *trailing), dtype=dtype, device=device)

        return cls(
            obs=zeros(obs_dim), actions=zeros(dtype=torch.long), log_probs=zeros(), values=zeros(),
            rewards=zeros(), terminated=zeros(), ended=zeros(), trainable=zeros(dtype=torch.bool),
            final_values=zeros(), has_final_value=zeros(dtype=torch.bool),
        )

    def next_values(self, last_values: torch.Tensor) -> torch.Tensor:
        """V(s_{t+1}) for every step, (T, N): the next step's stored value, ``last_values`` (the value of
        the obs after the rollout) for the last step, and V(true last obs) where a same-step reset
        replaced it. In next-step mode a finished episode's last obs *is* the next stored obs, so
        truncated episodes bootstrap from it with no extra forward pass."""
        shifted = torch.cat((self.values[1:], last_values.unsqueeze(0)))
        return torch.where(self.has_final_value, self.final_values, shifted)


def minibatches(index: torch.Tensor, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """A random split of ``index`` into ceil(len / batch_size) minibatches: every entry is in exactly
    one of them, and their sizes differ by at most one (all equal ``batch_size`` when it divides
    ``len(index)``)."""
    n_minibatches = math.ceil(index.numel() / batch_size)
    if n_minibatches == 0:
        return ()
    shuffled = index[torch.randperm(index.numel(), generator=generator, device=index.device)]
    return shuffled.tensor_split(n_minibatches)
