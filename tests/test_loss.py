"""ppo_loss: the clipped surrogate objective, the critic's MSE and the diagnostics."""

from __future__ import annotations

import math

import pytest
import torch

from ppo.loss import ppo_loss

EPS = 0.2
# Six samples, old log-prob 0, so that ratio = exp(new_log_prob):
#   i  ratio  A    r·A    clip(r)·A      min              why
#   0  1.5    +2   3.0    1.2·2 = 2.4    2.4   clipped    gain capped at 1+ε
#   1  1.5    -2  -3.0    1.2·-2 = -2.4  -3.0  unclipped  a loss is never capped
#   2  0.5    -2  -1.0    0.8·-2 = -1.6  -1.6  clipped    gain capped at 1-ε
#   3  0.5    +2   1.0    0.8·2 = 1.6    1.0   unclipped
#   4  1.1    +3   3.3    1.1·3 = 3.3    3.3   inside [0.8, 1.2]
#   5  0.9    -1  -0.9    0.9·-1 = -0.9  -0.9  inside
# mean of the mins = (2.4 - 3.0 - 1.6 + 1.0 + 3.3 - 0.9) / 6 = 1.2 / 6 = 0.2 -> actor loss -0.2
RATIOS = [1.5, 1.5, 0.5, 0.5, 1.1, 0.9]
ADVANTAGES = [2.0, -2.0, -2.0, 2.0, 3.0, -1.0]
EXPECTED_MINS = [2.4, -3.0, -1.6, 1.0, 3.3, -0.9]


def hand_case(requires_grad=False):
    new_log_probs = torch.tensor([math.log(r) for r in RATIOS], dtype=torch.float64, requires_grad=requires_grad)
    old_log_probs = torch.zeros(6, dtype=torch.float64)
    advantages = torch.tensor(ADVANTAGES, dtype=torch.float64)
    new_values = torch.tensor([0.0, 2.0, 5.0, 1.0, 1.0, 1.0], dtype=torch.float64, requires_grad=requires_grad)
    returns = torch.tensor([1.0, 2.0, 3.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    entropy = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], dtype=torch.float64)
    return new_log_probs, old_log_probs, advantages, new_values, returns, entropy


def test_actor_loss_is_minus_the_mean_of_the_pessimistic_surrogate():
    """Actor loss = -mean(min(r·A, clip(r, 1-ε, 1+ε)·A)) on ratios inside and outside the clip range
    with positive and negative advantages (table above)."""
    loss = ppo_loss(*hand_case(), policy_clip=EPS)
    assert sum(EXPECTED_MINS) / 6 == pytest.approx(0.2)
    assert loss.actor.item() == pytest.approx(-0.2)


@pytest.mark.parametrize("i", range(6))
def test_each_sample_contributes_its_hand_computed_min(i):
    """Sample by sample (a batch of one), the actor loss is minus the min in the table."""
    new, old, adv, values, returns, entropy = hand_case()
    s = slice(i, i + 1)
    loss = ppo_loss(new[s], old[s], adv[s], values[s], returns[s], entropy[s], policy_clip=EPS)
    assert loss.actor.item() == pytest.approx(-EXPECTED_MINS[i])


def test_critic_loss_is_the_mean_squared_error_to_the_returns():
    """Critic loss = mean((R - V)²): errors 1, 0, 2, 0, 0, 0 -> (1 + 0 + 4) / 6."""
    loss = ppo_loss(*hand_case(), policy_clip=EPS)
    assert loss.critic.item() == pytest.approx(5.0 / 6.0)


def test_entropy_term_is_the_mean_entropy():
    """The entropy term is the batch mean of the per-sample entropies (0.1..0.6 -> 0.35)."""
    assert ppo_loss(*hand_case(), policy_clip=EPS).entropy.item() == pytest.approx(0.35)


def test_clip_fraction_counts_ratios_outside_the_clip_range():
    """Four of the six ratios (1.5, 1.5, 0.5, 0.5) lie outside [0.8, 1.2]; with ε = 0.6 none does."""
    assert ppo_loss(*hand_case(), policy_clip=EPS).clip_fraction.item() == pytest.approx(4 / 6)
    assert ppo_loss(*hand_case(), policy_clip=0.6).clip_fraction.item() == 0.0


def test_approx_kl_is_the_k3_estimator():
    """approx_kl = mean((r - 1) - log r), computed here from the table's ratios."""
    expected = sum((r - 1) - math.log(r) for r in RATIOS) / len(RATIOS)
    assert ppo_loss(*hand_case(), policy_clip=EPS).approx_kl.item() == pytest.approx(expected)


def test_approx_kl_is_non_negative_for_random_ratios():
    """(r - 1) - log r >= 0 for every r > 0, so the estimate is never negative."""
    torch.manual_seed(0)
    for _ in range(20):
        new, old = torch.randn(64) * 2, torch.randn(64) * 2
        loss = ppo_loss(new, old, torch.randn(64), torch.randn(64), torch.randn(64), torch.rand(64), EPS)
        assert loss.approx_kl.item() >= 0.0


def test_unchanged_policy_has_zero_kl_and_no_clipping_and_plain_surrogate():
    """When new and old log-probs are equal (ratio 1): approx_kl = 0, clip_fraction = 0 and the
    actor loss is -mean(A)."""
    torch.manual_seed(0)
    log_probs = torch.log(torch.rand(16))
    advantages = torch.randn(16)
    loss = ppo_loss(log_probs, log_probs.clone(), advantages, torch.zeros(16), torch.zeros(16), torch.zeros(16), EPS)
    assert loss.approx_kl.item() == 0.0
    assert loss.clip_fraction.item() == 0.0
    assert loss.actor.item() == pytest.approx(-advantages.mean().item(), abs=1e-6)


def test_gradient_flows_only_through_unclipped_samples():
    """d(actor)/d(new_log_prob_i) = -r_i·A_i / B where the unclipped term is the min, and 0 where
    the clipped (constant) term is: samples 0 and 2 are clipped on the pessimistic side.
      0: 0    1: -(1.5·-2)/6 = 0.5    2: 0    3: -(0.5·2)/6 = -1/6    4: -3.3/6 = -0.55    5: 0.9/6 = 0.15
    """
    new, old, adv, values, returns, entropy = hand_case(requires_grad=True)
    ppo_loss(new, old, adv, values, returns, entropy, policy_clip=EPS).actor.backward()
    expected = torch.tensor([0.0, 0.5, 0.0, -1.0 / 6.0, -0.55, 0.15], dtype=torch.float64)
    torch.testing.assert_close(new.grad, expected)
    assert new.grad[0].item() == 0.0 and new.grad[2].item() == 0.0


def test_critic_gradient_is_that_of_the_mse():
    """d(critic)/d(V_i) = 2·(V_i - R_i) / B; the actor loss does not depend on the values."""
    new, old, adv, values, returns, entropy = hand_case(requires_grad=True)
    loss = ppo_loss(new, old, adv, values, returns, entropy, policy_clip=EPS)
    (loss.actor + loss.critic).backward()
    torch.testing.assert_close(values.grad, 2.0 * (values.detach() - returns) / 6.0)


def test_diagnostics_carry_no_gradient():
    """approx_kl and clip_fraction are diagnostics: they are detached from the graph."""
    loss = ppo_loss(*hand_case(requires_grad=True), policy_clip=EPS)
    assert not loss.approx_kl.requires_grad
    assert not loss.clip_fraction.requires_grad
    assert loss.actor.requires_grad and loss.critic.requires_grad



# Value clipping with c = 0.5, old values 0:
#   i  V     R    clip(V)  (V-R)²  (clip(V)-R)²  max    why                           d max/dV
#   0  0.2   1    0.2      0.64    0.64          0.64   inside ±c: plain error          2(V-R) = -1.6
#   1  1.0   2    0.5      1.00    2.25          2.25   moved more than c towards R     0
#   2  -1.0  1    -0.5     4.00    2.25          4.00   moved away from R               2(V-R) = -4
#   3  3.0   1.5  0.5      2.25    1.00          2.25   moved past R                    2(V-R) = 3
VALUE_CLIP = 0.5
NEW_VALUES = [0.2, 1.0, -1.0, 3.0]
VALUE_RETURNS = [1.0, 2.0, 1.0, 1.5]


def value_case():
    zeros = torch.zeros(4, dtype=torch.float64)
    new_values = torch.tensor(NEW_VALUES, dtype=torch.float64, requires_grad=True)
    returns = torch.tensor(VALUE_RETURNS, dtype=torch.float64)
    return dict(new_log_probs=zeros, old_log_probs=zeros, advantages=zeros, new_values=new_values,
                returns=returns, entropy=zeros, policy_clip=EPS, old_values=zeros)


def test_value_clipping_takes_each_samples_larger_error():
    """With value_clip 0.5 the critic loss is the mean of the table's max column, (0.64 + 2.25 + 4 +
    2.25) / 4 = 2.285; without it, the plain mean squared error (0.64 + 1 + 4 + 2.25) / 4 = 1.9725."""
    assert ppo_loss(**value_case(), value_clip=VALUE_CLIP).critic.item() == pytest.approx(2.285)
    assert ppo_loss(**value_case()).critic.item() == pytest.approx(1.9725)


def test_value_clipping_stops_the_gradient_of_a_value_that_moved_too_far_towards_its_return():
    """d(critic)/dV_i is the table's last column over B = 4: -0.4, 0, -1, 0.75."""
    case = value_case()
    ppo_loss(**case, value_clip=VALUE_CLIP).critic.backward()
    torch.testing.assert_close(case["new_values"].grad, torch.tensor([-0.4, 0.0, -1.0, 0.75], dtype=torch.float64))


def test_a_wide_value_clip_changes_nothing():
    """No value is more than 3 from its old value, so value_clip 10 gives the plain MSE."""
    assert ppo_loss(**value_case(), value_clip=10.0).critic.item() == pytest.approx(1.9725)


def test_value_clipping_needs_the_old_values():
    case = value_case()
    del case["old_values"]
    with pytest.raises(ValueError, match="old_values"):
        ppo_loss(**case, value_clip=VALUE_CLIP)
