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
    """Mean squared error of the value to the returns; with ``value_clip``, the mean of each sample's
    larger error, of the value and of the value clipped near its old one."""
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
    old_values: torch.Tensor | None = None,
    value_clip: float | None = None,
) -> PPOLoss:
    """Clipped surrogate (Schulman et al. 2017, eq. 7) and critic regression for one minibatch.

    All inputs are (B,) tensors. The ratio π_new/π_old is exp(log π_new - log π_old): dividing
    probabilities underflows for unlikely actions, subtracting logs does not.

    With ``value_clip`` (which needs ``old_values``, the critic's values at collection), the critic's
    error per sample is max((V - R)², (V_old + clip(V - V_old, -c, c) - R)²), OpenAI Baselines' PPO2
    form ("The 37 Implementation Details of PPO", detail 9). Like the surrogate it is pessimistic:
    once V is more than c from V_old, the clipped term is a constant, and V gets a gradient only
    where its own error is the larger (it moved away from R, or past it), none where it moved
    towards R, so one update moves it about c at most.
    """
    log_ratio = new_log_probs - old_log_probs
    ratio = log_ratio.exp()
    surrogate = ratio * advantages
    clipped_surrogate = ratio.clamp(1.0 - policy_clip, 1.0 + policy_clip) * advantages
    actor = -torch.min(surrogate, clipped_surrogate).mean()
    critic_errors = (returns - new_values).pow(2)
    if value_clip is not None:
        if old_values is None:
            raise ValueError("ppo_loss: value_clip needs old_values, the critic's values at collection")
        clipped_values = old_values + (new_values - old_values).clamp(-value_clip, value_clip)
        critic_errors = torch.max(critic_errors, (returns - clipped_values).pow(2))
    critic = critic_errors.mean()
    with torch.no_grad():
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
        clip_fraction = ((ratio - 1.0).abs() > policy_clip).float().mean()
    return PPOLoss(actor, critic, entropy.mean(), approx_kl, clip_fraction)
