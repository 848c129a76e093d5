"""Actor and critic: two separate MLPs built from the ``network`` config group."""

from __future__ import annotations

import math

import torch
from torch import nn

from ppo.config import NetworkConfig

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


def mlp(in_dim: int, out_dim: int, net: NetworkConfig, out_gain: float) -> nn.Sequential:
    """``in_dim -> hidden_sizes -> out_dim`` with ``net.activation`` between the layers."""
    sizes = [in_dim, *net.hidden_sizes]
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [_init(nn.Linear(fan_in, fan_out), math.sqrt(2), net), _ACTIVATIONS[net.activation]()]
    layers.append(_init(nn.Linear(sizes[-1], out_dim), out_gain, net))
    return nn.Sequential(*layers)


def _init(layer: nn.Linear, gain: float, net: NetworkConfig) -> nn.Linear:
    # Orthogonal init with a small policy-head gain starts the policy near uniform, which SB3 and
    # CleanRL both do ("The 37 Implementation Details of PPO", detail 2).
    if net.orthogonal_init:
        nn.init.orthogonal_(layer.weight, gain)
        nn.init.zeros_(layer.bias)
    return layer


class Actor(nn.Module):
    """π(a|s) over ``n_actions`` discrete actions: an MLP whose outputs go through a softmax.

    ``forward`` returns log π(·|s), shape (B, n_actions): the log of the softmax, computed as
    ``log_softmax`` so that unlikely actions keep finite log-probabilities.
    """

    def __init__(self, obs_dim: int, n_actions: int, net: NetworkConfig):
        super().__init__()
        self.body = mlp(obs_dim, n_actions, net, out_gain=0.01)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.body(obs), dim=-1)


class Critic(nn.Module):
    """V(s): an MLP with one output. ``forward`` returns shape (B,)."""

    def __init__(self, obs_dim: int, net: NetworkConfig):
        super().__init__()
        self.body = mlp(obs_dim, 1, net, out_gain=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.body(obs).squeeze(-1)


def sample_actions(log_probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One action per row of a (B, A) log-probability table, drawn with ``generator``.

    Gumbel-max: argmax(log p + G) with G = -log(E), E ~ Exp(1), is distributed as p. Three cheap
    ops instead of ``torch.multinomial``, which costs 3x as much on the acting path for small B.
    """
    exponential = torch.empty_like(log_probs).exponential_(generator=generator)
    return (log_probs - exponential.log()).argmax(-1)


def log_prob_of(log_probs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log π(a|s) of the chosen actions, shape (B,)."""
    return log_probs.gather(-1, actions.unsqueeze(-1)).squeeze(-1)


def entropy_of(log_probs: torch.Tensor) -> torch.Tensor:
    """Entropy of each row's categorical distribution, shape (B,)."""
    return -(log_probs.exp() * log_probs).sum(-1)
