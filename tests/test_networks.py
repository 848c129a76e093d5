"""Actor and critic MLPs and the categorical helpers."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.distributions import Categorical

from ppo.config import NetworkConfig
from ppo.networks import Actor, Critic, entropy_of, log_prob_of, mlp, sample_actions


def linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def test_actor_rows_are_log_probabilities():
    """Actor.forward gives (B, n_actions) log-probabilities: all <= 0 and exp of each row sums to 1,
    whatever the input scale."""
    torch.manual_seed(0)
    actor = Actor(4, 3, NetworkConfig(orthogonal_init=False))
    obs = torch.randn(50, 4) * 100
    log_probs = actor(obs)
    assert log_probs.shape == (50, 3)
    assert (log_probs <= 0).all()
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(50))


def test_actor_starts_near_uniform_with_orthogonal_init():
    """With orthogonal init the policy head's gain is 0.01, so the initial policy is close to uniform."""
    torch.manual_seed(0)
    actor = Actor(4, 2, NetworkConfig())
    probs = actor(torch.randn(100, 4)).exp()
    assert (probs - 0.5).abs().max().item() < 0.05


def test_critic_output_is_one_value_per_row():
    """Critic.forward maps (B, obs_dim) to (B,)."""
    critic = Critic(6, NetworkConfig())
    assert critic(torch.randn(7, 6)).shape == (7,)
    assert critic(torch.randn(1, 6)).shape == (1,)


@pytest.mark.parametrize("hidden_sizes, activation", [([64, 64], "tanh"), ([256, 256], "relu"), ([5], "relu"),
                                                      ([8, 16, 32], "tanh")])
def test_network_follows_hidden_sizes_and_activation(hidden_sizes, activation):
    """The MLP is in -> hidden_sizes -> out: one Linear per hidden layer plus the head, each hidden
    Linear followed by the configured activation, none after the head."""
    net = NetworkConfig(hidden_sizes=hidden_sizes, activation=activation)
    activation_type = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
    for model, in_dim, out_dim in ((Actor(3, 5, net).body, 3, 5), (Critic(3, net).body, 3, 1)):
        layers = linears(model)
        assert len(layers) == len(hidden_sizes) + 1
        widths = [in_dim, *hidden_sizes, out_dim]
        assert [(layer.in_features, layer.out_features) for layer in layers] == list(zip(widths[:-1], widths[1:]))
        modules = list(model)
        assert len(modules) == 2 * len(hidden_sizes) + 1
        for i in range(len(hidden_sizes)):
            assert isinstance(modules[2 * i], nn.Linear)
            assert type(modules[2 * i + 1]) is activation_type
        assert isinstance(modules[-1], nn.Linear)


def test_actor_and_critic_are_separate_networks():
    """Actor and critic share no parameters."""
    net = NetworkConfig()
    actor, critic = Actor(4, 2, net), Critic(4, net)
    assert not {id(p) for p in actor.parameters()} & {id(p) for p in critic.parameters()}


def test_orthogonal_init_gains_and_zero_biases():
    """orthogonal_init: biases 0, hidden weights orthogonal with gain √2, the given head gain
    (W·Wᵀ = gain²·I for a layer with fan_out <= fan_in)."""
    torch.manual_seed(0)
    model = mlp(8, 2, NetworkConfig(hidden_sizes=[8, 4]), out_gain=0.01)
    hidden1, hidden2, head = linears(model)
    for layer, gain in ((hidden1, 2 ** 0.5), (hidden2, 2 ** 0.5), (head, 0.01)):
        assert not layer.bias.any()
        w = layer.weight.detach()
        torch.testing.assert_close(w @ w.T, gain ** 2 * torch.eye(w.shape[0]), atol=1e-5, rtol=1e-5)


def test_without_orthogonal_init_torch_default_init_is_kept():
    """orthogonal_init=false keeps torch's default init: biases are not zeroed."""
    torch.manual_seed(0)
    model = mlp(8, 2, NetworkConfig(hidden_sizes=[8], orthogonal_init=False), out_gain=0.01)
    assert all(layer.bias.abs().sum() > 0 for layer in linears(model))


def test_sample_actions_in_range_and_reproducible_with_a_seeded_generator():
    """Samples lie in [0, n_actions) and the same generator seed gives the same samples."""
    torch.manual_seed(0)
    log_probs = torch.log_softmax(torch.randn(500, 4), -1)
    a = sample_actions(log_probs, torch.Generator().manual_seed(11))
    b = sample_actions(log_probs, torch.Generator().manual_seed(11))
    c = sample_actions(log_probs, torch.Generator().manual_seed(12))
    assert a.shape == (500,) and a.dtype == torch.long
    assert a.min() >= 0 and a.max() < 4
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_sample_actions_never_picks_a_zero_probability_action():
    """A row with probability 1 on one action always samples it."""
    log_probs = torch.log(torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])).repeat(100, 1)
    actions = sample_actions(log_probs, torch.Generator().manual_seed(0))
    assert torch.equal(actions, torch.tensor([1, 0]).repeat(100))


def test_sample_actions_follows_the_probabilities():
    """20 000 draws from (0.2, 0.8): the frequency of action 0 is within 5 standard errors (0.014) of 0.2."""
    log_probs = torch.log(torch.tensor([[0.2, 0.8]])).expand(20_000, 2)
    actions = sample_actions(log_probs, torch.Generator().manual_seed(0))
    assert abs((actions == 0).float().mean().item() - 0.2) < 0.014


def test_log_prob_of_and_entropy_of_match_torch_categorical():
    """log_prob_of and entropy_of agree with torch.distributions.Categorical."""
    torch.manual_seed(0)
    logits = torch.randn(32, 5) * 3
    log_probs = torch.log_softmax(logits, -1)
    actions = torch.randint(0, 5, (32,))
    dist = Categorical(logits=logits)
    torch.testing.assert_close(log_prob_of(log_probs, actions), dist.log_prob(actions))
    torch.testing.assert_close(entropy_of(log_probs), dist.entropy())


def test_entropy_extremes():
    """Uniform over n actions has entropy log n; a (nearly) deterministic policy has entropy ~0."""
    uniform = torch.log(torch.full((1, 4), 0.25))
    assert entropy_of(uniform).item() == pytest.approx(torch.log(torch.tensor(4.0)).item())
    peaked = torch.log_softmax(torch.tensor([[50.0, 0.0, 0.0]]), -1)
    assert entropy_of(peaked).item() == pytest.approx(0.0, abs=1e-6)
