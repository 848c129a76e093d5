"""Actor and critic: two separate MLPs built from the ``network`` config group.

The actor's kind follows the env's action space: a softmax over ``Discrete`` actions, a Gaussian
over ``Box`` actions. Both offer the same methods, so the trainer has one code path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ppo.config import NetworkConfig
from ppo.normalize import Normalizer

_ACTIVATIONS = {"relu": (nn.ReLU, torch.relu), "tanh": (nn.Tanh, torch.tanh)}  # module, function


class MLP(nn.Module):
    """``in_dim -> hidden_sizes -> out_dim`` with ``net.activation`` between the layers.

    Its layers are children named 0, 1, 2, ... as in an ``nn.Sequential`` (checkpoints name them
    ``body.0.weight``, ...), but ``forward`` calls each layer's op itself: on a CPU, calling a module
    costs about as much as a 64-wide layer's arithmetic, and training calls these networks tens of
    thousands of times. So module hooks on the layers do not fire, and the layers are fixed.
    """

    def __init__(self, in_dim: int, out_dim: int, net: NetworkConfig, out_gain: float):
        activation_module, activation = _ACTIVATIONS[net.activation]
        sizes = [in_dim, *net.hidden_sizes]
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [_init(nn.Linear(fan_in, fan_out), math.sqrt(2), net), activation_module()]
        layers.append(_init(nn.Linear(sizes[-1], out_dim), out_gain, net))
        super().__init__()
        for index, layer in enumerate(layers):
            self.add_module(str(index), layer)
        self.activation = activation
        self.linears = tuple(layers[::2])  # a tuple is not registered again: the layers already are

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *hidden, head = self.linears
        for linear in hidden:
            x = self.activation(F.linear(x, linear.weight, linear.bias))
        return F.linear(x, head.weight, head.bias)


def _init(layer: nn.Linear, gain: float, net: NetworkConfig) -> nn.Linear:
    # Orthogonal init with a small policy-head gain starts the policy near uniform, which SB3 and
    # CleanRL both do ("The 37 Implementation Details of PPO", detail 2).
    if net.orthogonal_init:
        nn.init.orthogonal_(layer.weight, gain)
        nn.init.zeros_(layer.bias)
    return layer


class CategoricalActor(nn.Module):
    """π(a|s) over ``n_actions`` discrete actions: an MLP whose outputs go through a softmax.

    ``forward`` returns the policy's parameters for a batch of observations: log π(·|s), shape
    (B, n_actions), the log of the softmax computed as ``log_softmax`` so that unlikely actions keep
    finite log-probabilities. The other methods take those parameters; the trainer calls the same
    methods on a :class:`GaussianActor`.
    """

    action_shape: tuple[int, ...] = ()  # one action per env: an index
    action_dtype = torch.long

    def __init__(self, obs_dim: int, n_actions: int, net: NetworkConfig):
        super().__init__()
        self.body = MLP(obs_dim, n_actions, net, out_gain=0.01)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.body(obs), dim=-1)

    def sample(self, log_probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return sample_actions(log_probs, generator)

    def log_prob(self, log_probs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return log_prob_of(log_probs, actions)

    def entropy(self, log_probs: torch.Tensor) -> torch.Tensor:
        return entropy_of(log_probs)

    def mode(self, log_probs: torch.Tensor) -> torch.Tensor:
        """The most likely action of each row: the greedy policy of evaluation."""
        return log_probs.argmax(-1)

    def env_actions(self, actions: np.ndarray) -> np.ndarray:
        """Actions as the env takes them."""
        return actions


class GaussianActor(nn.Module):
    """π(a|s) = N(μ(s), diag(σ²)) over a ``Box`` of ``len(low)`` dimensions: an MLP gives the mean μ(s),
    and log σ is a learned vector that does not depend on the state (as in SB3 and CleanRL).

    ``forward`` returns μ(s), shape (B, action_dim). The rollout keeps the sampled, unbounded
    actions, whose log-probabilities the update recomputes; only the env sees them clipped to the
    Box (``env_actions``). Clipping rather than squashing with tanh keeps log-probabilities exact
    and is what SB3 and CleanRL do.
    """

    action_dtype = torch.float32

    def __init__(self, obs_dim: int, low: list[float], high: list[float], net: NetworkConfig):
        super().__init__()
        self.action_shape = (len(low),)
        self.body = MLP(obs_dim, len(low), net, out_gain=0.01)
        self.log_std = nn.Parameter(torch.full(self.action_shape, float(net.log_std_init)))
        self.low, self.high = np.asarray(low, dtype=np.float32), np.asarray(high, dtype=np.float32)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.body(obs)

    def sample(self, mean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(mean.shape, generator=generator, device=mean.device)
        return mean + self.log_std.exp() * noise

    def log_prob(self, mean: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log π(a|s), shape (B,): the independent dimensions' log-densities summed."""
        z = (actions - mean) * torch.exp(-self.log_std)
        return (-0.5 * z.square() - self.log_std - _HALF_LOG_2PI).sum(-1)

    def entropy(self, mean: torch.Tensor) -> torch.Tensor:
        """Entropy of each row's Gaussian, shape (B,): the same for every state, since σ is."""
        return (0.5 + _HALF_LOG_2PI + self.log_std).sum().expand(mean.shape[0])

    def mode(self, mean: torch.Tensor) -> torch.Tensor:
        """The mean action: the deterministic policy of evaluation."""
        return mean

    def env_actions(self, actions: np.ndarray) -> np.ndarray:
        """Actions as the env takes them: clipped to the Box."""
        return np.clip(actions, self.low, self.high)


_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)

Actor = Union[CategoricalActor, GaussianActor]


def action_space_spec(space: gym.spaces.Space) -> dict:
    """What an actor needs to know of an action space, as plain data that a checkpoint can hold:
    ``{"n": 2}`` for ``Discrete(2)``, ``{"low": [...], "high": [...]}`` for a flat Box."""
    if isinstance(space, gym.spaces.Discrete):
        return {"n": int(space.n)}
    return {"low": space.low.astype(float).tolist(), "high": space.high.astype(float).tolist()}


def describe_action_space(spec: dict) -> str:
    """``Discrete(2)`` or ``Box(1,) in [-2, 2]``: a spec in words, for messages."""
    if "n" in spec:
        return f"Discrete({spec['n']})"
    low, high = np.asarray(spec["low"]), np.asarray(spec["high"])
    bounds = f"[{low[0]:g}, {high[0]:g}]" if np.ptp(low) == 0 and np.ptp(high) == 0 else f"[{low}, {high}]"
    return f"Box({len(low)},) in {bounds}"


def make_actor(obs_dim: int, action_spec: dict, net: NetworkConfig) -> Actor:
    """The actor for an action space: categorical for ``Discrete``, Gaussian for ``Box``."""
    if "n" in action_spec:
        return CategoricalActor(obs_dim, action_spec["n"], net)
    return GaussianActor(obs_dim, action_spec["low"], action_spec["high"], net)


@dataclass
class Policy:
    """A trained actor with the observation statistics it was trained with (when it normalized them)."""

    actor: Actor
    normalizer: Normalizer | None = None

    @torch.inference_mode()
    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Greedy actions, as the env takes them, for a batch of raw observations (B, obs_dim)."""
        obs = np.asarray(obs, dtype=np.float32)
        if self.normalizer is not None:
            obs = self.normalizer.observations(obs, update=False)
        obs = torch.from_numpy(obs)
        device = next(self.actor.parameters()).device
        return self.actor.env_actions(self.actor.mode(self.actor(obs.to(device))).cpu().numpy())


class Critic(nn.Module):
    """V(s): an MLP with one output. ``forward`` returns shape (B,)."""

    def __init__(self, obs_dim: int, net: NetworkConfig):
        super().__init__()
        self.body = MLP(obs_dim, 1, net, out_gain=1.0)

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
