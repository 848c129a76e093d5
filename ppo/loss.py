"""The PPO objective as a pure function of tensors."""

from __future__ import annotations

from typing import NamedTuple

import torch


class PPOLoss(NamedTuple):
    """Loss terms (to minimize) and diagnostics of one minibatch. The caller weights and sums the
    terms: ``actor + critic_coef * critic - entropy_coef * entropy``."""

    actor: torch.Tensor
    """Negated clipped surrogate objective."""
    critic: torch.Tensor
    """Mean squared error of the value to the returns."""
    entropy: torch.Tensor
    """Mean policy entropy (a bonus: subtracted from the total)."""
    approx_kl: torch.Tensor
    """KL(π_old ‖ π_new) estimated as mean((r - 1) - log r), always >= 0 (Schulman's k3 estimator)."""
    clip_fraction: torch.Tensor
    """Share of samples whose ratio lies outside [1-ε, 1+ε]."""


def ppo_loss(
    new_log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    new_values: torch.Tensor,
    returns: torch.Tensor,
    entropy: torch.Tensor,
    policy_clip: float,
) -> PPOLoss:
    """Clipped surrogate (Schulman et al. 2017, eq. 7) and critic regression for one minibatch.

    All inputs are (B,) tensors. The ratio π_new/π_old is exp(log π_new - log π_old): dividing
    probabilities underflows for unlikely actions, subtracting logs does not.
    """
    log_ratio = new_log_probs - old_log_probs
    ratio = log_ratio.exp()
    surrogate = ratio * advantages
    clipped_surrogate = ratio.clamp(1.0 - policy_clip, 1.0 + policy_clip) * advantages
    actor = -torch.min(surrogate, clipped_surrogate).mean()
    critic = (returns - new_values).pow(2).mean()
    with torch.no_grad():
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
        clip_fraction = ((ratio - 1.0).abs() > policy_clip).float().mean()
    return PPOLoss(actor, critic, entropy.mean(), approx_kl, clip_fraction)
