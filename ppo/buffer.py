"""Rollout storage, preallocated once, and the minibatch split of each epoch."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch


@dataclass
class Rollout:
    """One rollout of ``n_steps`` vector steps from ``num_envs`` envs: every field is (T, N, ...)
    with T = n_steps and N = num_envs, overwritten in place each update.

    It lives on the host, beside the env, so each step writes into it through numpy views without a
    device round trip; the update moves it to the training device once (a no-op on a CPU).
    Observations keep the env's compact dtype (:func:`storage_dtype`): a rollout of Atari frames is
    uint8, and only each minibatch becomes floats, inside the network.
    """

    obs: torch.Tensor  # (T, N, *obs_shape) float32, or the env's uint8 or bool for images: s_t
    actions: torch.Tensor  # (T, N) long for discrete actions, (T, N, action_dim) float for Box: a_t
    log_probs: torch.Tensor  # (T, N) float: log π_old(a_t|s_t)
    rewards: torch.Tensor  # (T, N) float: r_t
    terminated: torch.Tensor  # (T, N) float 0/1: s_{t+1} is terminal, V(s_{t+1}) = 0
    ended: torch.Tensor  # (T, N) float 0/1: terminated or truncated, the episode stops here
    trainable: torch.Tensor  # (T, N) bool: False for a sub-env's reset step in next-step autoreset
    # mode, which ignores the action and spans two episodes: no transition to learn from.
    final_obs: torch.Tensor  # (T, N, *obs_shape) as obs: same-step autoreset mode, the true last obs of
    has_final_obs: torch.Tensor  # (T, N) bool:  an episode truncated at t, to bootstrap from

    @classmethod
    def allocate(cls, n_steps: int, num_envs: int, obs_shape: int | tuple[int, ...], action_shape: tuple[int, ...] = (),
                 action_dtype: torch.dtype = torch.long, obs_dtype: torch.dtype = torch.float32,
                 same_step_resets: bool = True) -> Rollout:
        """Zeroed storage for observations of ``obs_shape`` (an int: a vector's length) and ``obs_dtype``
        (see :func:`storage_dtype`); ``action_shape`` and ``action_dtype`` are the actor's (one index per
        env for discrete actions, a float vector for Box actions). Without ``same_step_resets``
        (next-step autoreset mode) nothing fills ``final_obs``, which is then empty: an Atari rollout
        would spend as much memory on it as on ``obs``."""
        obs_shape = (obs_shape,) if isinstance(obs_shape, int) else tuple(obs_shape)

        def zeros(*trailing: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.zeros((n_steps, num_envs, *trailing), dtype=dtype)

        return cls(
            obs=zeros(*obs_shape, dtype=obs_dtype), actions=zeros(*action_shape, dtype=action_dtype),
            log_probs=zeros(), rewards=zeros(), terminated=zeros(), ended=zeros(), trainable=zeros(dtype=torch.bool),
            final_obs=zeros(*obs_shape, dtype=obs_dtype) if same_step_resets else torch.zeros(0, dtype=obs_dtype),
            has_final_obs=zeros(dtype=torch.bool),
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


def storage_dtype(obs_dtype: np.dtype) -> torch.dtype:
    """How a rollout stores observations of the env's ``obs_dtype``: uint8 pixels and bool grids as they
    are (a quarter or less of float32's memory; the network scales them), any other number as float32."""
    return {np.dtype(np.uint8): torch.uint8, np.dtype(np.bool_): torch.bool}.get(np.dtype(obs_dtype), torch.float32)


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
