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
    policy_clip: float | torch.Tensor,
    old_values: torch.Tensor | None = None,
    value_clip: float | torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> PPOLoss:
    """Clipped surrogate (Schulman et al. 2017, eq. 7) and critic regression for one minibatch.

    The inputs are (B,) tensors, and each term is their mean. A population's members come as (K, B)
    tensors with ``policy_clip`` and ``value_clip`` (K, 1), and each term is (K,): the means of each
    member's row, over the samples where ``weights`` (K, B) is 1 when minibatches of members differ
    in size (0 marks padding). The ratio π_new/π_old is exp(log π_new - log π_old): dividing
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
    actor = -_mean(torch.min(surrogate, clipped_surrogate), weights)
    critic_errors = (returns - new_values).pow(2)
    if value_clip is not None:
        if old_values is None:
            raise ValueError("ppo_loss: value_clip needs old_values, the critic's values at collection")
        clipped_values = old_values + (new_values - old_values).clamp(-value_clip, value_clip)
        critic_errors = torch.max(critic_errors, (returns - clipped_values).pow(2))
    critic = _mean(critic_errors, weights)
    with torch.no_grad():
        approx_kl = _mean((ratio - 1.0) - log_ratio, weights)
        clip_fraction = _mean(((ratio - 1.0).abs() > policy_clip).float(), weights)
    return PPOLoss(actor, critic, _mean(entropy, weights), approx_kl, clip_fraction)


def _mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """The mean over the last dim, of the samples whose weight is 1 when ``weights`` are given (a
    row without any is 0)."""
    if weights is None:
        return values.mean(-1)
    return (values * weights).sum(-1) / weights.sum(-1).clamp_min(1.0)
