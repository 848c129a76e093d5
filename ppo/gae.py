"""Generalized Advantage Estimation (Schulman et al. 2016, arXiv:1506.02438)."""

from __future__ import annotations

import torch


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    episode_ended: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> torch.Tensor:
    """Advantages of a rollout by one backward pass over time: O(T) for T steps.

    ``A_t = δ_t + γλ·(1 - ended_t)·A_{t+1}`` with ``δ_t = r_t + γ·(1 - terminated_t)·V(s_{t+1}) - V(s_t)``.

    λ = 0 gives the one-step TD error ``δ_t``; λ = 1 gives the discounted return to the end of the
    episode (or of the rollout, bootstrapped there) minus ``V(s_t)``: Monte Carlo.

    Two flags, because an episode can end two ways:
      * ``terminated``: the MDP reached a terminal state; its value is 0, so ``δ_t`` does not bootstrap.
      * ``episode_ended``: terminated *or* truncated (time limit). The sum stops here, so no advantage
        reaches across an automatic reset. A truncated step still bootstraps from ``V(s_{t+1})``,
        which the caller sets to the value of the true final observation.
    The last step of the rollout bootstraps from ``next_values[-1]``, the value of the observation
    after the rollout, unless it terminated.

    Shapes, with T steps and N envs (all float, flags as 0./1.):
        rewards, values, next_values, terminated, episode_ended: (T, N)
        returns advantages: (T, N). Returns for the critic are ``advantages + values``.
    """
    deltas = rewards + gamma * next_values * (1.0 - terminated) - values
    decay = gamma * gae_lambda * (1.0 - episode_ended)
    advantages = torch.empty_like(deltas)
    running = torch.zeros_like(deltas[0])
    for t in range(deltas.shape[0] - 1, -1, -1):
        running = deltas[t] + decay[t] * running
        advantages[t] = running
    return advantages
