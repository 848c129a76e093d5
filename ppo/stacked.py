"""A population's K networks as one: each layer's weights stacked (K, in, out), run with one batched
matmul (``torch.baddbmm``) for all members; and the optimizer step and gradient clipping over them.

On a CPU a small network's minibatch step is bound by the cost of each torch op, not by its
arithmetic: K members' steps as one set of batched ops cost a fraction of K separate steps. Members
stay independent: member k's outputs, gradients and Adam moments come from its own slice alone.

Tensors here are *members first*, (K, B, ...), in the update; the vector env's sub-envs are
*member-major*, (..., K*N, ...): member k owns sub-envs k*N to (k+1)*N - 1. :class:`PopulationActor`
and :class:`PopulationCritic` take the latter, so the single-run rollout code acts for a population.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from ppo.networks import MLP, Actor, Critic, GaussianActor, entropy_of, log_prob_of, sample_actions

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class StackedMLP:
    """K :class:`~ppo.networks.MLP` of one shape as stacked leaf tensors: ``weights[i]`` (K, in, out),
    ``biases[i]`` (K, 1, out). ``__call__`` maps (K, B, in) to (K, B, out)."""

    def __init__(self, mlps: Sequence[MLP]):
        def stack(tensors):  # a new leaf, contiguous: a copy of the members' values
            return torch.stack([tensor.detach() for tensor in tensors]).requires_grad_()

        layers = range(len(mlps[0].linears))
        self.weights = [stack([mlp.linears[i].weight.T for mlp in mlps]) for i in layers]
        self.biases = [stack([mlp.linears[i].bias.unsqueeze(0) for mlp in mlps]) for i in layers]
        self.activation = TanhBySigmoid.apply if mlps[0].activation is torch.tanh else mlps[0].activation

    def parameters(self) -> list[torch.Tensor]:
        return [tensor for pair in zip(self.weights, self.biases) for tensor in pair]

    def use_parameters(self, tensors: Sequence[torch.Tensor]) -> None:
        """Compute with ``tensors`` (views of :class:`PopulationParameters`' buffer), in :meth:`parameters`' order."""
        self.weights, self.biases = list(tensors[0::2]), list(tensors[1::2])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        *hidden, head = zip(self.weights, self.biases)
        for weight, bias in hidden:
            x = self.activation(torch.baddbmm(bias, x, weight))
        return torch.baddbmm(head[1], x, head[0])

    def pairs(self, mlp: MLP) -> list[tuple[torch.Tensor, torch.Tensor, bool]]:
        """(stacked, member's parameter, whether the member's is the transpose of a slice) for each
        parameter of one member's ``mlp``, in :meth:`parameters`' order."""
        return [pair for linear, weight, bias in zip(mlp.linears, self.weights, self.biases)
                for pair in ((weight, linear.weight, True), (bias, linear.bias, False))]


class TanhBySigmoid(torch.autograd.Function):
    """tanh(x) as 2·sigmoid(2x) - 1, within 2e-7 of ``torch.tanh``, with tanh's own backward. torch's CPU
    tanh costs about 4 ns an element on the AMD EPYC measured, its sigmoid a fifth of that: on a
    population's (K, B, 64) activations the forward and backward together take 0.4 of ``torch.tanh``'s
    time. (On one run's (256, 64) they take the same, so single runs keep ``torch.tanh``.)"""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = torch.sigmoid(x.mul(2)).mul_(2).sub_(1)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)


def members_first(x: torch.Tensor, members: int) -> torch.Tensor:
    """(..., K*N, D) member-major sub-env data as (K, L*N, D), L the product of the leading dims."""
    *lead, width, dim = x.shape
    return x.reshape(-1, members, width // members, dim).transpose(0, 1).reshape(members, -1, dim)


class PopulationActor:
    """K actors of one kind and shape as one, acting for K*N member-major sub-envs: ``forward`` and
    the methods of :class:`~ppo.networks.CategoricalActor` and :class:`~ppo.networks.GaussianActor`.
    ``sample`` takes the members' K generators: each member's actions come from its own stream,
    drawn as its single run draws them."""

    def __init__(self, actors: Sequence[Actor]):
        first = actors[0]
        self.members = len(actors)
        self.body = StackedMLP([actor.body for actor in actors])
        self.continuous = isinstance(first, GaussianActor)
        self.action_shape, self.action_dtype = first.action_shape, first.action_dtype
        self.log_std = (torch.stack([actor.log_std.detach() for actor in actors]).unsqueeze(1).requires_grad_()
                        if self.continuous else None)  # (K, 1, action_dim)
        self.low, self.high = getattr(first, "low", None), getattr(first, "high", None)

    def parameters(self) -> list[torch.Tensor]:
        return self.body.parameters() + ([self.log_std] if self.continuous else [])

    def use_parameters(self, tensors: Sequence[torch.Tensor]) -> None:
        self.body.use_parameters(tensors[:len(self.body.parameters())])
        if self.continuous:
            self.log_std = tensors[-1]

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        """The policy's parameters (log π(·|s), or μ(s)) for member-major observations (..., K*N, D)."""
        *lead, width, _ = obs.shape
        outputs = self.body(members_first(obs, self.members))
        outputs = outputs.reshape(self.members, -1, width // self.members, outputs.shape[-1]).transpose(0, 1)
        return self.policy(outputs.reshape(*lead, width, -1))

    def policy(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs if self.continuous else torch.log_softmax(outputs, dim=-1)

    def member_log_std(self, rows: int) -> torch.Tensor:
        """log σ of each member repeated for its ``rows`` member-major rows: (K*rows, action_dim)."""
        return self.log_std.expand(-1, rows, -1).reshape(-1, self.log_std.shape[-1])

    def sample(self, policy: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        rows = policy.shape[0] // self.members
        chunks = policy.split(rows)
        if not self.continuous:
            return torch.cat([sample_actions(chunk, generator) for chunk, generator in zip(chunks, generators)])
        noise = torch.cat([torch.randn(chunk.shape, generator=generator)
                           for chunk, generator in zip(chunks, generators)])
        return policy + self.member_log_std(rows).exp() * noise

    def log_prob(self, policy: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        if not self.continuous:
            return log_prob_of(policy, actions)
        return gaussian_log_prob(policy, actions, self.member_log_std(policy.shape[0] // self.members))

    def env_actions(self, actions: np.ndarray) -> np.ndarray:
        return np.clip(actions, self.low, self.high) if self.continuous else actions

    # ---- members first, for the update: (K, B, ...) ----
    def update_terms(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log π(a|s) and the policy's entropy, (K, B) each, for members-first minibatches."""
        outputs = self.body(obs)
        if not self.continuous:
            log_probs = torch.log_softmax(outputs, dim=-1)
            return log_prob_of(log_probs, actions), entropy_of(log_probs)
        entropy = (0.5 + _HALF_LOG_2PI + self.log_std).sum(-1)  # (K, 1): the same in every state
        return gaussian_log_prob(outputs, actions, self.log_std), entropy.expand(-1, obs.shape[1])

    def pairs(self, actor: Actor) -> list[tuple[torch.Tensor, torch.Tensor, bool]]:
        return self.body.pairs(actor.body) + ([(self.log_std, actor.log_std, False)] if self.continuous else [])


def gaussian_log_prob(mean: torch.Tensor, actions: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log N(actions; mean, exp(log_std)²) summed over the action dims, as GaussianActor.log_prob."""
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z.square() - log_std - _HALF_LOG_2PI).sum(-1)


class PopulationCritic:
    """K critics as one: V(s) for member-major observations (..., K*N, D), shape (..., K*N); and
    ``values`` for members-first minibatches (K, B, D) -> (K, B)."""

    def __init__(self, critics: Sequence[Critic]):
        self.members = len(critics)
        self.body = StackedMLP([critic.body for critic in critics])

    def parameters(self) -> list[torch.Tensor]:
        return self.body.parameters()

    def use_parameters(self, tensors: Sequence[torch.Tensor]) -> None:
        self.body.use_parameters(tensors)

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        *lead, width, _ = obs.shape
        values = self.body(members_first(obs, self.members)).squeeze(-1)  # (K, L*N)
        return values.reshape(self.members, -1, width // self.members).transpose(0, 1).reshape(*lead, width)

    def values(self, obs: torch.Tensor) -> torch.Tensor:
        return self.body(obs).squeeze(-1)

    def pairs(self, critic: Critic) -> list[tuple[torch.Tensor, torch.Tensor, bool]]:
        return self.body.pairs(critic.body)


Pairs = list[tuple[torch.Tensor, torch.Tensor, bool]]
"""(stacked tensor, one member's tensor, transposed) for each parameter: see :meth:`StackedMLP.pairs`."""


class PopulationParameters:
    """Every parameter of a population's stacked networks in one (K, P) buffer, member k's all in row k,
    with its gradients in a (K, P) buffer beside it, and the optimizer step over them.

    The networks' stacked tensors become views of the buffer (:meth:`adopt`), so autograd fills the
    gradient buffer and each member's parameters are one contiguous row. That row is what torch's fused
    Adam (eps 1e-5, as each single run's) steps, one parameter group per member: each member has its
    own learning rate (:meth:`set_lr`), moments and step count, and one kernel call updates all
    (per-layer slices would cost it 13 tensors a member, 8x the time). Gradient clipping is a norm per
    member and group of columns (:meth:`clip_grad_norms`).
    """

    def __init__(self, groups: Sequence[Sequence[torch.Tensor]], members: int, eps: float = 1e-5):
        tensors = [tensor for group in groups for tensor in group]
        widths = [tensor[0].numel() for tensor in tensors]
        ends = np.cumsum(widths).tolist()
        self.columns = [slice(end - width, end) for width, end in zip(widths, ends)]  # each tensor's
        group_ends = np.cumsum([len(group) for group in groups]).tolist()
        self.group_columns = [slice(self.columns[end - len(group)].start, self.columns[end - 1].stop)
                              for group, end in zip(groups, group_ends)]
        self.values = torch.cat([tensor.detach().reshape(members, -1) for tensor in tensors], dim=1)
        self.grads = torch.zeros_like(self.values)
        self.tensors = []
        for tensor, columns in zip(tensors, self.columns):
            view = self.values[:, columns].view(tensor.shape).requires_grad_()
            view.grad = self.grads[:, columns].view(tensor.shape)  # backward accumulates into the buffer
            self.tensors.append(view)
        self.rows = [self.values[k].requires_grad_() for k in range(members)]
        for row, grad in zip(self.rows, self.grads):
            row.grad = grad
        self.adam = torch.optim.Adam([{"params": [row]} for row in self.rows], lr=0.0, eps=eps, fused=True)
        # a slice of the buffer is a strided view, whose gradient torch calls a layout it may handle slower:
        # measured, it is the fastest layout for the update as a whole
        warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")

    def adopt(self, networks: Sequence[PopulationActor | PopulationCritic]) -> None:
        """Make the networks' stacked tensors (in the order given at construction) views of the buffer."""
        views = iter(self.tensors)
        for network in networks:
            network.use_parameters([next(views) for _ in network.parameters()])

    def zero_grad(self) -> None:
        self.grads.zero_()

    def set_lr(self, lrs: Sequence[float]) -> None:
        for group, lr in zip(self.adam.param_groups, lrs):
            group["lr"] = lr

    @torch.no_grad()
    def clip_grad_norms(self, max_norms: torch.Tensor, jointly: bool) -> None:
        """Scale each member's gradient so that its L2 norm over each group of columns (over all of
        them, ``jointly``) is at most ``max_norms[k]``: ``torch.nn.utils.clip_grad_norm_`` per member."""
        groups = [slice(0, self.grads.shape[1])] if jointly else self.group_columns
        for columns in groups:
            grads = self.grads[:, columns]
            grads.mul_((max_norms / (grads.norm(dim=1) + 1e-6)).clamp(max=1.0).unsqueeze(1))

    @torch.no_grad()
    def step(self, active: Sequence[bool] | None = None) -> None:
        """One Adam step of the members that ``active`` marks (all by default); the others keep their
        parameters, moments and step counts."""
        if active is not None:
            for row, grad, take in zip(self.rows, self.grads, active):
                row.grad = grad if take else None  # Adam skips a parameter without a gradient
        self.adam.step()
        if active is not None:
            for row, grad in zip(self.rows, self.grads):
                row.grad = grad

    def finite(self) -> list[bool]:
        """Whether each member's parameters are all finite, in one host sync."""
        return self.values.isfinite().all(1).tolist()

    def member_parts(self, row: torch.Tensor, pairs: Pairs) -> list[torch.Tensor]:
        """A member's (P,) ``row`` (its parameters, or an Adam moment) cut into views shaped as the
        member's own tensors in ``pairs``."""
        parts = [row[columns].view(stacked.shape[1:]) for (stacked, _, _), columns in zip(pairs, self.columns)]
        return [part.T if transposed else part.reshape(member.shape)
                for part, (_, member, transposed) in zip(parts, pairs)]

    @torch.no_grad()
    def write_member(self, k: int, pairs: Pairs, optimizer: torch.optim.Optimizer) -> None:
        """Member ``k``'s weights into its own networks (``pairs``), and its learning rate and Adam state
        into its own torch Adam, as its single run's would hold them."""
        for part, (_, member, _) in zip(self.member_parts(self.values[k], pairs), pairs):
            member.copy_(part)
        for group in optimizer.param_groups:
            group["lr"] = self.adam.param_groups[k]["lr"]
        state = self.adam.state.get(self.rows[k])
        if state:
            moments = {key: self.member_parts(state[key], pairs) for key in ("exp_avg", "exp_avg_sq")}
            for i, (_, member, _) in enumerate(pairs):
                optimizer.state[member] = {"step": state["step"].clone(),
                                           **{key: parts[i].clone() for key, parts in moments.items()}}

    @torch.no_grad()
    def load_member(self, k: int, pairs: Pairs, optimizer: torch.optim.Optimizer) -> None:
        """Member ``k``'s learning rate and Adam state from its own torch Adam (a resumed member; its
        weights are in the buffer from the start)."""
        self.adam.param_groups[k]["lr"] = optimizer.param_groups[0]["lr"]
        states = [optimizer.state.get(member) for _, member, _ in pairs]
        if not all(states):
            return
        state = {"step": states[0]["step"].clone()}
        for key in ("exp_avg", "exp_avg_sq"):
            state[key] = torch.zeros_like(self.rows[k])
            for part, member_state in zip(self.member_parts(state[key], pairs), states):
                part.copy_(member_state[key])
        self.adam.state[self.rows[k]] = state
