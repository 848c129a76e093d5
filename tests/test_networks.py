"""Actor and critic MLPs: the categorical policy of Discrete actions, the Gaussian one of Box actions."""

from __future__ import annotations

import copy
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Categorical, Normal

from ppo.config import NetworkConfig
from ppo.networks import (CategoricalActor, Critic, GaussianActor, action_space_spec, describe_action_space,
                          MLP, entropy_of, log_prob_of, make_actor, sample_actions)


def linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def test_actor_rows_are_log_probabilities():
    """Actor.forward gives (B, n_actions) log-probabilities: all <= 0 and exp of each row sums to 1,
    whatever the input scale."""
    torch.manual_seed(0)
    actor = CategoricalActor(4, 3, NetworkConfig(orthogonal_init=False))
    obs = torch.randn(50, 4) * 100
    log_probs = actor(obs)
    assert log_probs.shape == (50, 3)
    assert (log_probs <= 0).all()
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(50))


def test_actor_starts_near_uniform_with_orthogonal_init():
    """With orthogonal init the policy head's gain is 0.01, so the initial policy is close to uniform."""
    torch.manual_seed(0)
    actor = CategoricalActor(4, 2, NetworkConfig())
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
    for model, in_dim, out_dim in ((CategoricalActor(3, 5, net).body, 3, 5), (Critic(3, net).body, 3, 1)):
        layers = linears(model)
        assert len(layers) == len(hidden_sizes) + 1
        widths = [in_dim, *hidden_sizes, out_dim]
        assert [(layer.in_features, layer.out_features) for layer in layers] == list(zip(widths[:-1], widths[1:]))
        modules = list(model.children())
        assert len(modules) == 2 * len(hidden_sizes) + 1
        for i in range(len(hidden_sizes)):
            assert isinstance(modules[2 * i], nn.Linear)
            assert type(modules[2 * i + 1]) is activation_type
        assert isinstance(modules[-1], nn.Linear)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_mlp_computes_what_its_layers_do_in_sequence(activation):
    """The MLP's forward, which calls the layers' ops itself, is the function of its layers applied in
    order, as an nn.Sequential's: before and after a weight changes, in a copy, with gradients; and
    the checkpoint names of the layers stay nn.Sequential's (body.0.weight, ...)."""
    torch.manual_seed(0)
    model = MLP(3, 2, NetworkConfig(hidden_sizes=[8, 4], activation=activation), out_gain=0.5)
    x = torch.randn(7, 3, requires_grad=True)

    def in_sequence(m, x):
        for layer in m.children():
            x = layer(x)
        return x

    torch.testing.assert_close(model(x), in_sequence(model, x), rtol=0, atol=0)
    with torch.no_grad():
        model.get_submodule("2").weight.add_(1.0)
    copied = copy.deepcopy(model)
    with torch.no_grad():
        copied.get_submodule("0").bias.fill_(0.3)
    for m in (model, copied):
        torch.testing.assert_close(m(x), in_sequence(m, x), rtol=0, atol=0)
    assert not torch.equal(model(x), copied(x))
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters()) and x.grad is not None
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]


def test_actor_and_critic_are_separate_networks():
    """Actor and critic share no parameters."""
    net = NetworkConfig()
    actor, critic = CategoricalActor(4, 2, net), Critic(4, net)
    assert not {id(p) for p in actor.parameters()} & {id(p) for p in critic.parameters()}


def test_orthogonal_init_gains_and_zero_biases():
    """orthogonal_init: biases 0, hidden weights orthogonal with gain √2, the given head gain
    (W·Wᵀ = gain²·I for a layer with fan_out <= fan_in)."""
    torch.manual_seed(0)
    model = MLP(8, 2, NetworkConfig(hidden_sizes=[8, 4]), out_gain=0.01)
    hidden1, hidden2, head = linears(model)
    for layer, gain in ((hidden1, 2 ** 0.5), (hidden2, 2 ** 0.5), (head, 0.01)):
        assert not layer.bias.any()
        w = layer.weight.detach()
        torch.testing.assert_close(w @ w.T, gain ** 2 * torch.eye(w.shape[0]), atol=1e-5, rtol=1e-5)


def test_without_orthogonal_init_torch_default_init_is_kept():
    """orthogonal_init=false keeps torch's default init: biases are not zeroed."""
    torch.manual_seed(0)
    model = MLP(8, 2, NetworkConfig(hidden_sizes=[8], orthogonal_init=False), out_gain=0.01)
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


# ---------------------------------------------------------------------------------------------
# The Gaussian policy of Box actions
# ---------------------------------------------------------------------------------------------


def gaussian_actor(low=(-2.0,), high=(2.0,), **net) -> GaussianActor:
    return GaussianActor(3, list(low), list(high), NetworkConfig(**net))


def test_gaussian_log_prob_and_entropy_match_torch_normal_on_a_hand_case():
    """For μ = (0.5, -1), log σ = (0.1, -0.3) and a = (1, 0): log π(a|s) is the sum of the two
    dimensions' Normal log-densities, and the entropy the sum of their entropies."""
    actor = gaussian_actor(low=(-1.0, -1.0), high=(1.0, 1.0))
    with torch.no_grad():
        actor.log_std.copy_(torch.tensor([0.1, -0.3]))
    mean = torch.tensor([[0.5, -1.0], [0.0, 0.0]])
    actions = torch.tensor([[1.0, 0.0], [3.0, -2.0]])
    normal = Normal(mean, torch.tensor([0.1, -0.3]).exp())
    torch.testing.assert_close(actor.log_prob(mean, actions), normal.log_prob(actions).sum(-1))
    torch.testing.assert_close(actor.entropy(mean), normal.entropy().sum(-1))
    # by hand, the first row's first dimension: -(0.5 / e^0.1)² / 2 - 0.1 - log √(2π)
    first = -0.5 * (0.5 / math.exp(0.1)) ** 2 - 0.1 - 0.5 * math.log(2 * math.pi)
    second = -0.5 * (1.0 / math.exp(-0.3)) ** 2 + 0.3 - 0.5 * math.log(2 * math.pi)
    assert actor.log_prob(mean, actions)[0].item() == pytest.approx(first + second, rel=1e-6)


def test_gaussian_log_prob_and_entropy_carry_gradients_to_mean_and_log_std():
    """The update trains both the mean network and log σ through log π and the entropy."""
    actor = gaussian_actor()
    obs = torch.randn(8, 3)
    mean = actor(obs)
    (actor.log_prob(mean, torch.randn(8, 1)).sum() + actor.entropy(mean).sum()).backward()
    assert actor.log_std.grad is not None and actor.log_std.grad.abs().sum() > 0
    assert all(p.grad is not None for p in actor.body.parameters())


def test_gaussian_samples_have_the_policy_mean_and_std_and_are_reproducible():
    """20 000 draws around μ = 1 with log σ = log 0.5: sample mean and std within 5 standard errors;
    the same generator seed gives the same draws."""
    actor = gaussian_actor(log_std_init=math.log(0.5))
    mean = torch.ones(20_000, 1)
    draws = actor.sample(mean, torch.Generator().manual_seed(3))
    assert draws.shape == (20_000, 1) and draws.dtype == torch.float32
    assert abs(draws.mean().item() - 1.0) < 5 * 0.5 / math.sqrt(20_000)
    assert abs(draws.std().item() - 0.5) < 5 * 0.5 / math.sqrt(2 * 20_000)
    assert torch.equal(draws, actor.sample(mean, torch.Generator().manual_seed(3)))


def test_actions_sent_to_the_env_are_always_inside_the_bounds():
    """With σ = e² ≈ 7.4 most raw samples fall outside [-2, 2] x [0, 1]: the env still gets only
    actions inside the Box, each raw action inside the Box unchanged and each outside clipped to the bound."""
    actor = gaussian_actor(low=(-2.0, 0.0), high=(2.0, 1.0), log_std_init=2.0)
    with torch.no_grad():
        raw = actor.sample(torch.zeros(5000, 2), torch.Generator().manual_seed(0)).numpy()
    sent = actor.env_actions(raw)
    space = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32))
    assert (raw < space.low).any() and (raw > space.high).any()
    assert all(space.contains(action) for action in sent)
    inside = (raw >= space.low) & (raw <= space.high)
    assert np.array_equal(sent[inside], raw[inside])
    assert np.array_equal(sent[~inside], np.where(raw < space.low, space.low, space.high)[~inside])


def test_gaussian_mode_is_the_mean_and_starts_near_zero():
    """Evaluation acts on the mean; with orthogonal init (head gain 0.01) it starts near 0, with σ = 1."""
    torch.manual_seed(0)
    actor = gaussian_actor()
    mean = actor(torch.randn(100, 3))
    assert torch.equal(actor.mode(mean), mean)
    assert mean.abs().max().item() < 0.1
    assert actor.log_std.tolist() == [0.0]


def test_make_actor_follows_the_action_space():
    """Discrete actions get the categorical actor, Box actions the Gaussian one, from the plain-data
    spec that checkpoints keep."""
    discrete = action_space_spec(gym.spaces.Discrete(3))
    box = action_space_spec(gym.spaces.Box(-1.0, 1.0, (2,), np.float32))
    assert discrete == {"n": 3} and box == {"low": [-1.0, -1.0], "high": [1.0, 1.0]}
    assert isinstance(make_actor(4, discrete, NetworkConfig()), CategoricalActor)
    actor = make_actor(4, box, NetworkConfig(hidden_sizes=[16]))
    assert isinstance(actor, GaussianActor) and actor.action_shape == (2,)
    assert actor(torch.zeros(5, 4)).shape == (5, 2)
    assert describe_action_space(discrete) == "Discrete(3)"
    assert describe_action_space(box) == "Box(2,) in [-1, 1]"


def test_critic_hidden_sizes_shape_the_critic_only():
    """network.critic_hidden_sizes [32, 16] gives the critic 5 -> 32 -> 16 -> 1 layers while the actor
    keeps hidden_sizes [8]; null gives the critic the actor's hidden layers; with a shared torso it is
    refused, since the critic then has the actor's hidden layers."""
    from ppo.errors import ConfigError
    from ppo.networks import make_actor, make_critic

    net = NetworkConfig(hidden_sizes=[8], critic_hidden_sizes=[32, 16])
    actor = make_actor(5, {"n": 2}, net)
    critic = make_critic(5, net, actor)
    assert [tuple(p.shape) for p in critic.parameters() if p.dim() == 2] == [(32, 5), (16, 32), (1, 16)]
    assert [tuple(p.shape) for p in actor.parameters() if p.dim() == 2] == [(8, 5), (2, 8)]
    same = make_critic(5, NetworkConfig(hidden_sizes=[8]), actor)
    assert [tuple(p.shape) for p in same.parameters() if p.dim() == 2] == [(8, 5), (1, 8)]
    shared = NetworkConfig(hidden_sizes=[8], critic_hidden_sizes=[32], shared_torso=True)
    with pytest.raises(ConfigError, match="network.critic_hidden_sizes is not allowed with network.shared_torso"):
        make_critic(5, shared, make_actor(5, {"n": 2}, shared))
