"""The PPO update: ``n_epochs`` passes over a rollout's transitions in shuffled minibatches, one
Adam step per minibatch on the clipped surrogate loss (:func:`ppo.loss.ppo_loss`), with gradient
clipping and the linear schedules of the learning rate and clip ε.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

from ppo.config import AgentConfig
from ppo.loss import PPOLoss, ppo_loss
from ppo.networks import Actor, Critic, policy_and_values
from ppo.timing import PhaseTimer


class Samples(NamedTuple):
    """A rollout's transitions as rows, one per trainable step, in the same order in every field:
    what the update learns from. Fields are (S, ...) with S the number of trainable steps."""

    obs: torch.Tensor  # s_t, as stored (float, or uint8/bool images)
    actions: torch.Tensor  # a_t
    log_probs: torch.Tensor  # log π_old(a_t|s_t)
    advantages: torch.Tensor  # GAE(γ, λ)
    returns: torch.Tensor  # advantages + values: the critic's targets
    values: torch.Tensor  # V_old(s_t), at collection

    @classmethod
    def gather(cls, trainable: torch.Tensor, obs: torch.Tensor, actions: torch.Tensor, log_probs: torch.Tensor,
               advantages: torch.Tensor, returns: torch.Tensor, values: torch.Tensor) -> Samples:
        """The (T, N, ...) tensors of a rollout as rows, keeping only the steps where ``trainable``
        (T, N) is true: next-step autoreset's reset steps are no transitions."""
        index = trainable.reshape(-1).nonzero().squeeze(1)
        return cls(*(tensor.reshape(-1, *tensor.shape[2:])[index]
                     for tensor in (obs, actions, log_probs, advantages, returns, values)))

    def rows(self, index: torch.Tensor | slice) -> Samples:
        """The minibatch of rows ``index``."""
        return Samples(*(tensor[index] for tensor in self))


def ppo_update(actor: Actor, critic: Critic, optimizer: torch.optim.Optimizer, samples: Samples,
               agent: AgentConfig, policy_clip: float, generator: torch.Generator, timer: PhaseTimer,
               minibatch_loss_fn: Callable | None = None) -> PPOLoss | None:
    """``agent.n_epochs`` passes over ``samples`` in shuffled minibatches of ``agent.batch_size``, one
    Adam step each, with this update's clip ε ``policy_clip``. Each minibatch's loss comes from
    ``minibatch_loss_fn`` (:func:`minibatch_loss`, or its compiled form from
    :func:`ppo.compile.compile_if_it_pays`). Returns the mean of each loss term and diagnostic over
    the minibatches, as floats; None when there was no sample (every step of the rollout was a reset
    step)."""
    minibatch_loss_fn = minibatch_loss_fn or minibatch_loss
    param_groups = [group["params"] for group in optimizer.param_groups]
    if agent.clip_grad_jointly:
        param_groups = [[param for group in param_groups for param in group]]
    sums, n_minibatches = None, 0
    for _epoch in range(agent.n_epochs):
        for index in minibatches(len(samples.obs), agent.batch_size, generator):
            with timer("update_forward"):
                total, loss = minibatch_loss_fn(actor, critic, agent, policy_clip, samples.rows(index))
            with timer("update_backward"):
                optimizer.zero_grad(set_to_none=True)
                total.backward()
            with timer("update_optimizer"):
                if agent.max_grad_norm is not None:
                    for params in param_groups:
                        clip_grad_norm(params, agent.max_grad_norm)
                optimizer.step()
            terms = torch.stack(loss).detach()  # PPOLoss's fields, in its order
            sums = terms if sums is None else sums + terms
            n_minibatches += 1
    return PPOLoss(*(sums / n_minibatches).tolist()) if n_minibatches else None


def minibatch_loss(actor: Actor, critic: Critic, agent: AgentConfig, policy_clip: float,
                   batch: Samples) -> tuple[torch.Tensor, PPOLoss]:
    """One minibatch's loss to minimize, ``actor + critic_coef * critic - entropy_coef * entropy``,
    and its terms. Free of side effects, so that :mod:`ppo.compile` may compile it."""
    # log-probabilities or Gaussian means, and V(s); a shared torso runs once for both
    policy, values = policy_and_values(actor, critic, batch.obs)
    advantages = batch.advantages
    if agent.normalize_advantages and advantages.numel() > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    loss = ppo_loss(
        new_log_probs=actor.log_prob(policy, batch.actions),
        old_log_probs=batch.log_probs,
        advantages=advantages,
        new_values=values,
        returns=batch.returns,
        entropy=actor.entropy(policy),
        policy_clip=policy_clip,
        old_values=batch.values,
        value_clip=agent.value_clip,
    )
    return total_loss(loss, agent), loss


def total_loss(loss: PPOLoss, agent: AgentConfig):
    """``actor + critic_coef * critic - entropy_coef * entropy``, of a minibatch's tensors or of an
    update's mean floats."""
    total = loss.actor + agent.critic_coef * loss.critic
    if agent.entropy_coef:  # else no backward pass through the entropy
        total = total - agent.entropy_coef * loss.entropy
    return total


def linear_decay(start: float, update: int, num_updates: int) -> float:
    """A schedule's value at ``update`` (1 to ``num_updates``): ``start`` at the first update, decayed
    linearly towards 0, ``start / num_updates`` at the last (SB3's and CleanRL's annealing)."""
    return start * (1.0 - (update - 1) / num_updates)


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


def apply_schedules(optimizer: torch.optim.Optimizer, agent: AgentConfig, update: int, num_updates: int) -> float:
    """Set this update's learning rate (decayed linearly to 0 with ``agent.anneal_lr``) and return
    its clip ε (decayed likewise with ``agent.anneal_policy_clip``)."""
    if agent.anneal_lr:
        for group in optimizer.param_groups:
            group["lr"] = linear_decay(agent.lr, update, num_updates)
    return linear_decay(agent.policy_clip, update, num_updates) if agent.anneal_policy_clip else agent.policy_clip


def explained_variance(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """1 - Var(targets - predictions) / Var(targets): 1 is a perfect critic, 0 no better than a
    constant, negative worse than one. NaN when the targets do not vary."""
    if targets.numel() < 2:
        return float("nan")
    targets_var = targets.var().item()
    return 1.0 - (targets - predictions).var().item() / targets_var if targets_var > 0 else float("nan")


def clip_grad_norm(params: list[torch.nn.Parameter], max_norm: float) -> None:
    """Scale the gradients of ``params`` so that their global L2 norm is at most ``max_norm``
    (``torch.nn.utils.clip_grad_norm_`` in its two public halves, without its per-call checks)."""
    grads = [p.grad for p in params if p.grad is not None]
    total_norm = torch.nn.utils.get_total_norm(grads, foreach=True)
    torch.nn.utils.clip_grads_with_norm_(params, max_norm, total_norm, foreach=True)
