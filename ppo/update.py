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
from ppo.stacked import PopulationActor, PopulationCritic, PopulationParameters
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
        return cls(*(take_rows(tensor.reshape(-1, *tensor.shape[2:]), index)
                     for tensor in (obs, actions, log_probs, advantages, returns, values)))

    def rows(self, index: torch.Tensor | slice) -> Samples:
        """The minibatch of rows ``index``."""
        if isinstance(index, slice):
            return Samples(*(tensor[index] for tensor in self))
        return Samples(*(take_rows(tensor, index) for tensor in self))


def take_rows(tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``tensor[index]`` for a 1-D ``index`` of rows, through ``index_select``, which copies whole rows
    (a minibatch of 256 Atari frames in 1.3 ms, where advanced indexing takes 9): channels-last
    images (a rollout's, :meth:`ppo.rollout.Rollout.allocate`) are selected as the (B, H, W, C)
    array they are in memory, and stay channels-last."""
    if tensor.dim() == 4 and not tensor.is_contiguous() and tensor.is_contiguous(memory_format=torch.channels_last):
        return tensor.permute(0, 2, 3, 1).index_select(0, index).permute(0, 3, 1, 2)
    return tensor.index_select(0, index)


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


def population_update(actor: PopulationActor, critic: PopulationCritic, parameters: PopulationParameters,
                      samples: list[Samples | None], agents: list[AgentConfig], policy_clips: list[float],
                      generators: list[torch.Generator], timer: PhaseTimer) -> list[PPOLoss | None]:
    """:func:`ppo_update` for the K members of a population at once: member k learns from its own
    ``samples[k]`` (None: it sits this update out) with its own ``agents[k]`` numbers and clip ε,
    in minibatches drawn with its own ``generators[k]``, exactly as its single run would. Each
    minibatch step is one batched forward, backward and Adam step for all members. Members' sample
    counts differ (reset steps are dropped), so their j-th minibatches may differ in size: the
    shorter are padded and weighted out, and a member without a j-th minibatch takes no Adam step."""
    agent, members = agents[0], len(samples)  # keys other than the per-member numbers are shared
    sizes = [0 if member is None else len(member.obs) for member in samples]
    if not any(sizes):
        return [None] * members
    padded = Samples(*(_pad_rows([None if member is None else member[field] for member in samples], max(sizes))
                       for field in range(len(Samples._fields))))
    policy_clip = torch.tensor(policy_clips).unsqueeze(1)
    value_clip = None if agent.value_clip is None else torch.tensor([a.value_clip for a in agents]).unsqueeze(1)
    critic_coef, entropy_coef = (torch.tensor([getattr(a, name) for a in agents]) for name in ("critic_coef",
                                                                                             "entropy_coef"))
    max_norms = None if agent.max_grad_norm is None else torch.tensor([a.max_grad_norm for a in agents])
    member_rows = torch.arange(members).unsqueeze(1)
    sums, counts = torch.zeros(members, len(PPOLoss._fields)), torch.zeros(members)
    for _epoch in range(agent.n_epochs):
        splits = [minibatches(size, agent.batch_size, generator) if size else ()
                  for size, generator in zip(sizes, generators)]
        for j in range(max(len(split) for split in splits)):
            index, weights, active = _member_minibatch([split[j] if j < len(split) else None for split in splits],
                                                       sizes)
            batch = Samples(*(tensor[member_rows, index] for tensor in padded))
            with timer("update_forward"):
                new_log_probs, entropy = actor.update_terms(batch.obs, batch.actions)
                advantages = batch.advantages
                if agent.normalize_advantages:
                    advantages = _normalized(advantages, weights)
                loss = ppo_loss(new_log_probs, batch.log_probs, advantages, critic.values(batch.obs), batch.returns,
                                entropy, policy_clip, batch.values, value_clip, weights)
                total = loss.actor + critic_coef * loss.critic - entropy_coef * loss.entropy
            with timer("update_backward"):
                parameters.zero_grad()
                total.sum().backward()  # members' parameters are disjoint: each gets its own gradient
            with timer("update_optimizer"):
                if max_norms is not None:
                    parameters.clip_grad_norms(max_norms, agent.clip_grad_jointly)
                parameters.step(None if bool(active.all()) else active.tolist())
            terms = torch.stack(loss).detach().T  # (K, PPOLoss fields)
            sums = torch.where(active.unsqueeze(1), sums + terms, sums)
            counts += active
    means = (sums / counts.clamp_min(1).unsqueeze(1)).tolist()
    return [PPOLoss(*mean) if count else None for mean, count in zip(means, counts.tolist())]


def _pad_rows(tensors: list[torch.Tensor | None], rows: int) -> torch.Tensor:
    """Members' (S_k, ...) tensors as one (K, rows, ...), zero past each one's S_k."""
    like = next(tensor for tensor in tensors if tensor is not None and len(tensor))
    padded = like.new_zeros((len(tensors), rows, *like.shape[1:]))
    for k, tensor in enumerate(tensors):
        if tensor is not None and len(tensor):
            padded[k, :len(tensor)] = tensor
    return padded


def _member_minibatch(parts: list[torch.Tensor | slice | None], sizes: list[int]
                      ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Each member's rows of one minibatch step as (K, B) indices, the (K, B) weights that mark real
    rows (None when all members have B of them), and which members take part, (K,) bool."""
    rows = [torch.arange(size) if isinstance(part, slice) else part if part is not None
            else torch.zeros(0, dtype=torch.long) for part, size in zip(parts, sizes)]
    lengths = [len(index) for index in rows]
    active = torch.tensor([length > 0 for length in lengths])
    if min(lengths) == max(lengths):
        return torch.stack(rows), None, active
    index, weights = torch.zeros(len(rows), max(lengths), dtype=torch.long), torch.zeros(len(rows), max(lengths))
    for k, member_rows in enumerate(rows):
        index[k, :len(member_rows)] = member_rows
        weights[k, :len(member_rows)] = 1.0
    return index, weights, active


def _normalized(advantages: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Each member's advantages (K, B) scaled to mean 0 and std 1 over its real rows, as
    :func:`minibatch_loss` does for one run (a member with one row keeps it as it is)."""
    if weights is None:
        if advantages.shape[1] <= 1:
            return advantages
        return (advantages - advantages.mean(1, keepdim=True)) / (advantages.std(1, keepdim=True) + 1e-8)
    count = weights.sum(1, keepdim=True)
    mean = (advantages * weights).sum(1, keepdim=True) / count.clamp_min(1.0)
    var = ((advantages - mean).square() * weights).sum(1, keepdim=True) / (count - 1).clamp_min(1.0)
    return torch.where(count > 1, (advantages - mean) / (var.sqrt() + 1e-8), advantages)


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
    """Set this update's learning rate and return its clip ε (:func:`schedules`)."""
    lr, policy_clip = schedules(agent, update, num_updates)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return policy_clip


def schedules(agent: AgentConfig, update: int, num_updates: int) -> tuple[float, float]:
    """This update's learning rate (decayed linearly to 0 with ``agent.anneal_lr``) and clip ε
    (decayed likewise with ``agent.anneal_policy_clip``)."""
    lr = linear_decay(agent.lr, update, num_updates) if agent.anneal_lr else agent.lr
    return lr, linear_decay(agent.policy_clip, update, num_updates) if agent.anneal_policy_clip else agent.policy_clip


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
