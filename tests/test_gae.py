"""compute_gae: Generalized Advantage Estimation over a (T, N) rollout, against a slow reference."""

from __future__ import annotations

import pytest
import torch

from ppo.gae import compute_gae


def reference_gae(rewards, values, next_values, terminated, episode_ended, gamma, gae_lambda):
    """The definition, written as plainly as possible: for every env and step t,
    A_t = sum_{k=t}^{end} (γλ)^(k-t) δ_k with δ_k = r_k + γ(1 - term_k)·next_v_k - v_k,
    where ``end`` is the first step k >= t whose episode ended (inclusive), or the last step of the rollout."""
    T, N = rewards.shape
    advantages = torch.zeros(T, N, dtype=torch.float64)
    for n in range(N):
        for t in range(T):
            total = 0.0
            for k in range(t, T):
                r, v, nv = float(rewards[k, n]), float(values[k, n]), float(next_values[k, n])
                delta = r + gamma * (1.0 - float(terminated[k, n])) * nv - v
                total += (gamma * gae_lambda) ** (k - t) * delta
                if float(episode_ended[k, n]):
                    break
            advantages[t, n] = total
    return advantages


def column(*xs):
    """A (T, 1) tensor: one env."""
    return torch.tensor(xs, dtype=torch.float32).unsqueeze(1)


def check_against_reference(rewards, values, next_values, terminated, ended, gamma, lam, **tol):
    got = compute_gae(rewards, values, next_values, terminated, ended, gamma, lam)
    expected = reference_gae(rewards, values, next_values, terminated, ended, gamma, lam)
    assert got.shape == rewards.shape
    tol = {"atol": 1e-5, "rtol": 1e-5, **tol}  # float32 computation vs float64 reference
    torch.testing.assert_close(got.double(), expected, **tol)
    return got


def test_termination_mid_rollout_does_not_bootstrap_and_stops_the_recursion():
    """A terminated step's advantage is r - V (no bootstrap from the next value), and nothing
    after the termination (the next episode) leaks into the advantages before it."""
    gamma, lam = 0.9, 0.8
    rewards = column(1.0, 2.0, 3.0, 4.0, 5.0)
    values = column(0.5, 1.0, 1.5, 2.0, 2.5)
    next_values = column(1.0, 1.5, 99.0, 2.5, 3.0)  # 99 = V(terminal obs): must be ignored
    terminated = column(0, 0, 1, 0, 0)
    ended = terminated.clone()
    got = check_against_reference(rewards, values, next_values, terminated, ended, gamma, lam)

    assert got[2, 0].item() == pytest.approx(3.0 - 1.5)  # r_2 - V(s_2)

    # Change everything after the termination: the advantages up to it stay the same.
    rewards2, values2, next_values2 = rewards.clone(), values.clone(), next_values.clone()
    rewards2[3:] = -7.0
    values2[3:] = 11.0
    next_values2[3:] = 13.0
    got2 = compute_gae(rewards2, values2, next_values2, terminated, ended, gamma, lam)
    torch.testing.assert_close(got2[:3], got[:3])


def test_truncation_mid_rollout_bootstraps_from_next_value_and_stops_the_recursion():
    """A truncated step (ended but not terminated) bootstraps from next_values at that step
    (V of the true final obs), and the sum stops there."""
    gamma, lam = 0.9, 0.8
    rewards = column(1.0, 2.0, 3.0, 4.0)
    values = column(0.5, 1.0, 1.5, 2.0)
    next_values = column(1.0, 10.0, 2.0, 3.0)  # 10 = V(true final obs of the truncated episode)
    terminated = column(0, 0, 0, 0)
    ended = column(0, 1, 0, 0)
    got = check_against_reference(rewards, values, next_values, terminated, ended, gamma, lam)

    assert got[1, 0].item() == pytest.approx(2.0 + 0.9 * 10.0 - 1.0)  # δ_1 only
    assert got[0, 0].item() == pytest.approx((1.0 + 0.9 * 1.0 - 0.5) + 0.9 * 0.8 * (2.0 + 0.9 * 10.0 - 1.0))

    changed = rewards.clone()
    changed[2:] = 100.0
    torch.testing.assert_close(compute_gae(changed, values, next_values, terminated, ended, gamma, lam)[:2], got[:2])


def test_rollout_end_bootstraps_from_the_last_next_value():
    """An episode still running at the end of the rollout bootstraps from next_values[-1]."""
    gamma, lam = 0.9, 0.8
    rewards = column(1.0, 2.0)
    values = column(0.5, 1.0)
    next_values = column(1.0, 5.0)
    zeros = column(0, 0)
    got = check_against_reference(rewards, values, next_values, zeros, zeros, gamma, lam)
    delta1 = 2.0 + 0.9 * 5.0 - 1.0
    delta0 = 1.0 + 0.9 * 1.0 - 0.5
    assert got[1, 0].item() == pytest.approx(delta1)
    assert got[0, 0].item() == pytest.approx(delta0 + 0.72 * delta1)


def test_terminated_last_step_does_not_bootstrap():
    """A rollout whose last step terminated ignores next_values[-1]."""
    got = compute_gae(column(1.0), column(0.25), column(1000.0), column(1), column(1), 0.9, 0.8)
    assert got[0, 0].item() == pytest.approx(0.75)


def test_several_envs_with_different_episode_patterns_in_one_call():
    """Each env column is computed independently: termination in one, truncation in another,
    a running episode in a third, two episodes ending in a fourth."""
    gamma, lam = 0.95, 0.7
    torch.manual_seed(0)
    T, N = 6, 4
    rewards = torch.randn(T, N)
    values = torch.randn(T, N)
    next_values = torch.randn(T, N)
    terminated = torch.zeros(T, N)
    ended = torch.zeros(T, N)
    terminated[2, 0] = ended[2, 0] = 1  # env 0: terminates at t=2
    ended[3, 1] = 1  # env 1: truncated at t=3
    # env 2: no episode end
    terminated[1, 3] = ended[1, 3] = 1  # env 3: terminates at t=1, truncated at t=4
    ended[4, 3] = 1
    got = check_against_reference(rewards, values, next_values, terminated, ended, gamma, lam)
    for n in range(N):  # each column alone gives the same numbers
        alone = compute_gae(rewards[:, n:n + 1], values[:, n:n + 1], next_values[:, n:n + 1],
                            terminated[:, n:n + 1], ended[:, n:n + 1], gamma, lam)
        torch.testing.assert_close(alone[:, 0], got[:, n])


def test_lambda_zero_gives_the_td_errors():
    """λ = 0: A_t = δ_t = r_t + γ(1 - term_t)·V(s_{t+1}) - V(s_t), whatever the episode flags."""
    torch.manual_seed(1)
    T, N, gamma = 7, 3, 0.9
    rewards, values, next_values = torch.randn(T, N), torch.randn(T, N), torch.randn(T, N)
    terminated = (torch.rand(T, N) < 0.2).float()
    ended = torch.maximum(terminated, (torch.rand(T, N) < 0.2).float())
    got = compute_gae(rewards, values, next_values, terminated, ended, gamma, 0.0)
    torch.testing.assert_close(got, rewards + gamma * (1 - terminated) * next_values - values)


def test_lambda_one_with_constant_values_gives_monte_carlo_returns_minus_value():
    """λ = 1, V ≡ 1, γ = 0.5: advantages are discounted returns to the episode end minus 1.

    env 0: rewards 1, 2 | 4, 8 ; terminated at t=1; rollout ends at t=3, bootstrap V = 1
        G_0 = 1 + 0.5·2 = 2             -> A_0 = 1
        G_1 = 2                         -> A_1 = 1
        G_2 = 4 + 0.5·8 + 0.25·1 = 8.25 -> A_2 = 7.25
        G_3 = 8 + 0.5·1 = 8.5           -> A_3 = 7.5
    env 1: rewards 1, 1 | 1, 1 ; truncated at t=1 (bootstraps V(final obs) = 1), rollout ends at t=3
        G_0 = 1 + 0.5·1 + 0.25·1 = 1.75 -> A_0 = 0.75
        G_1 = 1 + 0.5·1 = 1.5           -> A_1 = 0.5
        G_2 = 1.75, G_3 = 1.5           -> A_2 = 0.75, A_3 = 0.5
    """
    rewards = torch.tensor([[1.0, 1.0], [2.0, 1.0], [4.0, 1.0], [8.0, 1.0]])
    values = torch.ones(4, 2)
    next_values = torch.ones(4, 2)
    terminated = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    ended = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    got = compute_gae(rewards, values, next_values, terminated, ended, gamma=0.5, gae_lambda=1.0)
    expected = torch.tensor([[1.0, 0.75], [1.0, 0.5], [7.25, 0.75], [7.5, 0.5]])
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("gamma, lam", [(0.99, 0.95), (0.98, 0.8), (1.0, 1.0), (0.5, 0.0), (0.9, 0.3)])
def test_random_rollouts_match_the_reference(gamma, lam):
    """Random rewards, values and episode flags (termination implies an episode end) match the
    per-env, per-episode reference sum."""
    torch.manual_seed(1234)
    T, N = 33, 5
    rewards, values, next_values = torch.randn(T, N), torch.randn(T, N), torch.randn(T, N)
    terminated = (torch.rand(T, N) < 0.1).float()
    truncated = (torch.rand(T, N) < 0.1).float()
    ended = torch.maximum(terminated, truncated)
    check_against_reference(rewards, values, next_values, terminated, ended, gamma, lam, atol=1e-4, rtol=1e-4)


def test_does_not_modify_its_inputs():
    """compute_gae is a pure function: its input tensors are left as they were."""
    torch.manual_seed(2)
    inputs = [torch.randn(5, 2) for _ in range(3)] + [torch.zeros(5, 2), torch.zeros(5, 2)]
    inputs[3][2, 1] = inputs[4][2, 1] = 1
    copies = [x.clone() for x in inputs]
    compute_gae(*inputs, 0.9, 0.9)
    for x, copy in zip(inputs, copies):
        assert torch.equal(x, copy)
