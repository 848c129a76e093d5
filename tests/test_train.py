"""ppo.train: rollout collection in both gymnasium autoreset modes, evaluation, and train() edge cases.

The toy envs (tests/conftest.py) observe ``[t]``, the step count of the episode, and pay reward 1
per step, so every expected observation, reward, flag and episode below follows by hand from the
episode lengths.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import BOTH_ID, BOX_ID, FLOAT64_ID, MIXED_ID, TERMINATE_ID, TRUNCATE_ID, read_scalars
from ppo.rollout import Rollout
from ppo.config import AgentConfig, Config, EnvConfig, NetworkConfig, TrainConfig
from ppo.errors import ConfigError
from ppo.envs import make_envs
from ppo.checkpoint import load_checkpoint, load_policy
from ppo.networks import CategoricalActor, Critic, GaussianActor, Policy, log_prob_of
from ppo.normalize import Normalizer
from ppo.evaluate import evaluate
from ppo.loss import ppo_loss
from ppo.rollout import EnvState, collect_rollout, estimate_values
from ppo.state import RunStats, objective_value
from ppo.train import train

CPU = torch.device("cpu")


@dataclass
class Setup:
    envs: gym.vector.VectorEnv
    actor: CategoricalActor
    critic: Critic
    rollout: Rollout
    state: EnvState
    generator: torch.Generator

    def collect(self):
        """One rollout; returns its finished episodes and keeps the critic's values and next values."""
        episodes = collect_rollout(self.envs, self.actor, self.rollout, self.state, self.generator)
        self.values, self.next_values = estimate_values(self.critic, self.rollout, torch.from_numpy(self.state.obs))
        return episodes

    def value(self, t: float) -> torch.Tensor:
        """V of the toy env's observation [t]."""
        with torch.no_grad():
            return self.critic(torch.tensor([[float(t)]]))[0]


@pytest.fixture
def make_setup():
    """Build a sync vector env of a toy env in the given autoreset mode, real networks, an allocated
    rollout and the reset EnvState (seed 0); closes the envs afterwards."""
    opened = []

    def build(env_id, mode, num_envs, n_steps):
        envs = make_envs(EnvConfig(id=env_id, num_envs=num_envs, vectorization="sync", autoreset_mode=mode))
        opened.append(envs)
        torch.manual_seed(0)
        net = NetworkConfig(hidden_sizes=[16], orthogonal_init=False)
        setup = Setup(envs, CategoricalActor(1, 2, net), Critic(1, net), Rollout.allocate(n_steps, num_envs, 1),
                      EnvState.reset(envs, 0), torch.Generator().manual_seed(0))
        # The value checks below are only meaningful if the critic tells the observations apart.
        values = [setup.value(t).item() for t in range(6)]
        assert len(set(values)) == 6
        return setup

    yield build
    for envs in opened:
        envs.close()


def column(rollout_field, n):
    return rollout_field[:, n].tolist()


# ---------------------------------------------------------------------------------------------
# next_step autoreset mode
# ---------------------------------------------------------------------------------------------

# MIXED_ID with seed 0, 2 envs, T = 10. Sub-env 0 terminates after 3 steps, sub-env 1 is truncated
# after 4. In next_step mode the step after an episode's end only resets: it stores the final obs,
# ignores the action, pays 0 and is no transition (trainable False).
#   t          0  1  2  3  4  5  6  7  8  9   | obs after
#   env 0 obs  0  1  2  3  0  1  2  3  0  1   | 2
#         end        T           T
#         reset         R           R
#   env 1 obs  0  1  2  3  4  0  1  2  3  4   | 0
#         end           t              t      (t: truncated)
#         reset            R              R
NEXT_OBS = [[0, 1, 2, 3, 0, 1, 2, 3, 0, 1], [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]]
NEXT_TRAINABLE = [[True, True, True, False, True, True, True, False, True, True],
                  [True, True, True, True, False, True, True, True, True, False]]
NEXT_TERMINATED = [[0, 0, 1, 0, 0, 0, 1, 0, 0, 0], [0] * 10]
NEXT_ENDED = [[0, 0, 1, 0, 0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0, 0, 1, 0]]


def test_next_step_mode_stores_reset_steps_as_untrainable_with_zero_reward(make_setup):
    """next_step mode: the step after an episode end stores the final obs, reward 0, no flags, and
    trainable=False; every other step is trainable with reward 1."""
    s = make_setup(MIXED_ID, "next_step", num_envs=2, n_steps=10)
    s.collect()
    r = s.rollout
    for n in range(2):
        assert column(r.obs[..., 0], n) == NEXT_OBS[n]
        assert column(r.trainable, n) == NEXT_TRAINABLE[n]
        assert column(r.rewards, n) == [1.0 if ok else 0.0 for ok in NEXT_TRAINABLE[n]]
        assert column(r.terminated, n) == NEXT_TERMINATED[n]
        assert column(r.ended, n) == NEXT_ENDED[n]
    assert not r.has_final_obs.any()


def test_next_step_mode_reports_true_episode_lengths_and_scores(make_setup):
    """The reset step is no part of an episode: lengths and scores are 3 and 4 (not 4 and 5), each
    reported at the rollout step that ended the episode, with its sub-env."""
    s = make_setup(MIXED_ID, "next_step", num_envs=2, n_steps=10)
    episodes = s.collect()
    assert episodes == [(2, 3.0, 3, 0), (3, 4.0, 4, 1), (6, 3.0, 3, 0), (8, 4.0, 4, 1)]


def test_next_step_mode_truncated_step_bootstraps_from_the_true_final_obs(make_setup):
    """next_values at a truncated step is V(final obs [4]) (the obs stored at the reset step);
    at the last step it is V(obs after the rollout)."""
    s = make_setup(MIXED_ID, "next_step", num_envs=2, n_steps=10)
    s.collect()
    torch.testing.assert_close(s.next_values[3, 1], s.value(4))
    torch.testing.assert_close(s.next_values[8, 1], s.value(4))
    torch.testing.assert_close(s.next_values[-1], torch.stack((s.value(2), s.value(0))))


def test_stored_values_and_log_probs_belong_to_the_stored_obs_and_actions(make_setup):
    """values[t] = V(obs[t]) (one batched pass after the rollout) and log_probs[t] =
    log π(actions[t] | obs[t]) (recorded while acting); actions are valid."""
    s = make_setup(MIXED_ID, "next_step", num_envs=2, n_steps=10)
    s.collect()
    r = s.rollout
    with torch.no_grad():
        obs = r.obs.view(-1, 1)
        torch.testing.assert_close(s.values.view(-1), s.critic(obs))
        torch.testing.assert_close(r.log_probs.view(-1), log_prob_of(s.actor(obs), r.actions.view(-1)))
    assert set(r.actions.view(-1).tolist()) <= {0, 1}


def test_next_step_mode_reset_step_carries_over_to_the_next_rollout(make_setup):
    """An episode ending on a rollout's last step makes the next rollout's first step the
    (untrainable, reward 0) reset step, and the final obs bootstraps the last step."""
    s = make_setup(TERMINATE_ID, "next_step", num_envs=1, n_steps=3)
    episodes = s.collect()
    assert episodes == [(2, 3.0, 3, 0)]
    torch.testing.assert_close(s.next_values[-1], s.value(3).unsqueeze(0))  # the terminal obs [3]
    episodes = s.collect()
    r = s.rollout
    assert column(r.obs[..., 0], 0) == [3, 0, 1]
    assert column(r.trainable, 0) == [False, True, True]
    assert column(r.rewards, 0) == [0.0, 1.0, 1.0]
    assert episodes == []


def test_episode_statistics_span_rollouts(make_setup):
    """An episode started in one rollout and finished in the next is reported once, whole."""
    s = make_setup(TRUNCATE_ID, "next_step", num_envs=1, n_steps=3)
    first = s.collect()
    second = s.collect()
    assert first == []
    assert second == [(0, 4.0, 4, 0)]
    assert column(s.rollout.ended, 0) == [1, 0, 0]
    assert column(s.rollout.trainable, 0) == [True, False, True]


# ---------------------------------------------------------------------------------------------
# same_step autoreset mode
# ---------------------------------------------------------------------------------------------

# MIXED_ID with seed 0, 2 envs, T = 10, same_step mode: a finished sub-env is reset within the
# same step, so the next stored obs is already the new episode's first.
#   t          0  1  2  3  4  5  6  7  8  9   | obs after
#   env 0 obs  0  1  2  0  1  2  0  1  2  0   | 1
#         end        T        T        T
#   env 1 obs  0  1  2  3  0  1  2  3  0  1   | 2
#         end           t           t         (t: truncated; true final obs [4] in infos)
SAME_OBS = [[0, 1, 2, 0, 1, 2, 0, 1, 2, 0], [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]]
SAME_TERMINATED = [[0, 0, 1, 0, 0, 1, 0, 0, 1, 0], [0] * 10]
SAME_ENDED = [[0, 0, 1, 0, 0, 1, 0, 0, 1, 0], [0, 0, 0, 1, 0, 0, 0, 1, 0, 0]]


def test_same_step_mode_every_step_is_trainable(make_setup):
    """same_step mode has no reset steps: every step is trainable and pays reward 1."""
    s = make_setup(MIXED_ID, "same_step", num_envs=2, n_steps=10)
    s.collect()
    r = s.rollout
    assert r.trainable.all()
    assert (r.rewards == 1.0).all()
    for n in range(2):
        assert column(r.obs[..., 0], n) == SAME_OBS[n]
        assert column(r.terminated, n) == SAME_TERMINATED[n]
        assert column(r.ended, n) == SAME_ENDED[n]


def test_same_step_mode_final_obs_exactly_at_truncated_steps(make_setup):
    """has_final_obs is set exactly at truncated (not terminated) steps, with final_obs = the true
    final obs [4] from infos; next_values uses V(final obs) there instead of the next stored obs's."""
    s = make_setup(MIXED_ID, "same_step", num_envs=2, n_steps=10)
    s.collect()
    r = s.rollout
    expected = torch.zeros(10, 2, dtype=torch.bool)
    expected[3, 1] = expected[7, 1] = True
    assert torch.equal(r.has_final_obs, expected)
    assert r.final_obs[3, 1].tolist() == [4.0] and r.final_obs[7, 1].tolist() == [4.0]
    torch.testing.assert_close(s.next_values[3, 1], s.value(4))
    torch.testing.assert_close(s.next_values[7, 1], s.value(4))
    torch.testing.assert_close(s.next_values[-1], torch.stack((s.value(1), s.value(2))))


def test_same_step_mode_reports_true_episode_lengths(make_setup):
    """same_step mode reports each episode at the step that ended it, with its true length."""
    s = make_setup(MIXED_ID, "same_step", num_envs=2, n_steps=10)
    episodes = s.collect()
    assert episodes == [(2, 3.0, 3, 0), (3, 4.0, 4, 1), (5, 3.0, 3, 0), (7, 4.0, 4, 1), (8, 3.0, 3, 0)]


def test_same_step_mode_terminated_and_truncated_together_has_no_final_value(make_setup):
    """A step both terminated and truncated is terminal: no bootstrap value is recorded for it."""
    s = make_setup(BOTH_ID, "same_step", num_envs=1, n_steps=6)
    s.collect()
    r = s.rollout
    assert column(r.terminated, 0) == [0, 0, 0, 1, 0, 0]
    assert column(r.ended, 0) == [0, 0, 0, 1, 0, 0]
    assert not r.has_final_obs.any()


def test_same_step_mode_has_final_obs_is_cleared_between_rollouts(make_setup):
    """A truncation flag of one rollout does not survive into the next: rollouts of 3 steps over
    4-step episodes see the truncation at t = -, 0, 1, 2 in turn."""
    s = make_setup(TRUNCATE_ID, "same_step", num_envs=1, n_steps=3)
    seen = []
    for _ in range(4):
        s.collect()
        seen.append(s.rollout.has_final_obs[:, 0].tolist())
    assert seen == [[False, False, False], [True, False, False], [False, True, False], [False, False, True]]


def test_both_modes_give_the_same_trainable_transitions(make_setup):
    """The transitions learned from (obs, reward, terminated, ended of the trainable steps) are
    the same sequence in both modes: next_step only inserts untrainable reset steps."""
    nxt = make_setup(MIXED_ID, "next_step", num_envs=2, n_steps=10)
    same = make_setup(MIXED_ID, "same_step", num_envs=2, n_steps=10)
    nxt.collect()
    same.collect()
    for n in range(2):
        keep = nxt.rollout.trainable[:, n]
        k = int(keep.sum())
        for name in ("obs", "rewards", "terminated", "ended"):
            a = getattr(nxt.rollout, name)[:, n][keep]
            b = getattr(same.rollout, name)[:k, n]
            assert torch.equal(a, b), name


# ---------------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
@pytest.mark.parametrize("env_id, length", [(TERMINATE_ID, 3), (TRUNCATE_ID, 4)])
def test_evaluate_scores_one_whole_episode_per_sub_env(mode, env_id, length):
    """evaluate plays exactly one episode per requested episode and returns its score (here its length)."""
    torch.manual_seed(0)
    policy = Policy(CategoricalActor(1, 2, NetworkConfig()))
    scores = evaluate(policy, EnvConfig(id=env_id, num_envs=1, vectorization="sync", autoreset_mode=mode),
                      episodes=3, seed=5)
    assert scores.tolist() == [float(length)] * 3


def test_evaluate_zero_episodes_returns_nothing():
    """episodes=0 plays nothing."""
    policy = Policy(CategoricalActor(1, 2, NetworkConfig()))
    assert len(evaluate(policy, EnvConfig(id=TERMINATE_ID), episodes=0, seed=0)) == 0


# ---------------------------------------------------------------------------------------------
# train() on the toy envs
# ---------------------------------------------------------------------------------------------


def toy_config(env_id, mode="next_step", n_steps=8, num_envs=2, batch_size=4, total=64, eval_episodes=2, **agent):
    return Config(
        agent=AgentConfig(n_steps=n_steps, batch_size=batch_size, n_epochs=2, **agent),
        network=NetworkConfig(hidden_sizes=[8]),
        env=EnvConfig(id=env_id, num_envs=num_envs, vectorization="sync", autoreset_mode=mode),
        train=TrainConfig(total_timesteps=total, eval_episodes=eval_episodes, progress=False),
        seed=0,
    )


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_train_logs_true_episode_lengths_in_both_modes(tmp_path, mode):
    """train() on the mixed toy env logs episode lengths 3 and 4 only (never +1) and scores equal to
    them, in both autoreset modes; the greedy evaluation scores whole episodes."""
    metrics = train(toy_config(MIXED_ID, mode), tmp_path)
    scalars = read_scalars(tmp_path)
    lengths = {value for _, value in scalars["episode/length"]}
    scores = [value for _, value in scalars["episode/score"]]
    assert lengths == {3.0, 4.0}
    assert [value for _, value in scalars["episode/length"]] == scores
    assert metrics["global_step"] == 64
    assert metrics["final_score"] == pytest.approx(3.5)  # eval sub-env 0 (seed even): 3, sub-env 1: 4
    assert json.loads((tmp_path / "metrics.json").read_text())["global_step"] == 64


def test_train_rounds_the_budget_up_to_whole_rollouts(tmp_path):
    """total_timesteps is rounded up to whole rollouts of n_steps * num_envs."""
    metrics = train(toy_config(TERMINATE_ID, total=17, eval_episodes=0), tmp_path)
    assert metrics["global_step"] == 32  # ceil(17 / 16) = 2 rollouts of 8 x 2


def test_train_with_anneal_lr_decays_the_learning_rate_linearly(tmp_path):
    """anneal_lr: update k (1-based) of U uses lr·(1 - (k-1)/U): 4 updates -> lr, ¾lr, ½lr, ¼lr."""
    train(toy_config(TERMINATE_ID, total=64, eval_episodes=0, anneal_lr=True, lr=0.004), tmp_path)
    logged = [value for _, value in read_scalars(tmp_path)["diagnostics/learning_rate"]]
    assert logged == pytest.approx([0.004, 0.003, 0.002, 0.001])


def spy_on_ppo_loss(monkeypatch) -> list[dict]:
    """The keyword arguments of every ppo_loss call that train() makes, from now on."""
    import ppo.update

    calls = []

    def recording_ppo_loss(**kwargs):
        calls.append({key: value.detach().clone() if torch.is_tensor(value) else value
                      for key, value in kwargs.items()})
        return ppo_loss(**kwargs)

    monkeypatch.setattr(ppo.update, "ppo_loss", recording_ppo_loss)
    return calls


def test_train_with_anneal_policy_clip_decays_the_clip_linearly(tmp_path, monkeypatch):
    """anneal_policy_clip: update k (1-based) of U clips at ε·(1 - (k-1)/U), like anneal_lr: 4 updates of
    ε 0.2 log 0.2, 0.15, 0.1, 0.05, and every minibatch's loss is clipped at its update's ε."""
    calls = spy_on_ppo_loss(monkeypatch)
    train(toy_config(TERMINATE_ID, total=64, eval_episodes=0, anneal_policy_clip=True, policy_clip=0.2), tmp_path)
    logged = [value for _, value in read_scalars(tmp_path)["diagnostics/policy_clip"]]
    assert logged == pytest.approx([0.2, 0.15, 0.1, 0.05])
    used = [call["policy_clip"] for call in calls]
    assert sorted(set(used), reverse=True) == pytest.approx([0.2, 0.15, 0.1, 0.05])
    assert used == sorted(used, reverse=True)


def test_train_passes_value_clip_and_the_values_at_collection_to_the_loss(tmp_path, monkeypatch):
    """agent.value_clip reaches ppo_loss with each sample's value at collection: in the update's first
    minibatch the critic has not moved yet, so its new values equal those old values sample by sample.
    Without annealing, ε stays at agent.policy_clip."""
    calls = spy_on_ppo_loss(monkeypatch)
    train(toy_config(MIXED_ID, total=32, eval_episodes=0, value_clip=0.3), tmp_path)
    assert {call["value_clip"] for call in calls} == {0.3}
    assert calls[0]["old_values"].shape == calls[0]["new_values"].shape
    torch.testing.assert_close(calls[0]["old_values"], calls[0]["new_values"], rtol=1e-5, atol=1e-6)
    assert not torch.equal(calls[-1]["old_values"], calls[-1]["new_values"])  # the critic learned
    assert [value for _, value in read_scalars(tmp_path)["diagnostics/policy_clip"]] == pytest.approx([0.2, 0.2])


def test_train_stops_after_max_episodes(tmp_path):
    """train.max_episodes=5 on 3-step episodes (2 envs, 8-step rollouts): training stops after the
    rollout in which the 5th episode ends, logs exactly 5 episodes, and reports them."""
    config = toy_config(TERMINATE_ID, total=640, eval_episodes=0)
    config.train.max_episodes = 5
    metrics = train(config, tmp_path)
    assert metrics["episodes"] == 5 and metrics["best_score"] == 3.0
    assert len(read_scalars(tmp_path)["episode/score"]) == 5
    # next-step mode: each env ends episodes at t = 2 and 6 of a rollout (resets at 3 and 7), so the
    # first rollout of 8 x 2 steps ends 4 episodes and the second the 5th.
    assert metrics["global_step"] == 32


def test_train_survives_a_rollout_with_no_trainable_step(tmp_path):
    """n_steps=1 with one env in next_step mode: the rollout right after an episode end holds only
    the reset step, so nothing is trainable. Training must skip the update, not crash."""
    config = toy_config(TERMINATE_ID, n_steps=1, num_envs=1, batch_size=1, total=8, eval_episodes=0)
    metrics = train(config, tmp_path)
    assert metrics["global_step"] == 8


def test_float64_observation_env_trains_on_float32_observations(tmp_path):
    """An env declaring float64 observations trains: its observations are cast to the networks'
    float32 as they are stored, and its greedy episodes score as the env says (3 steps of reward 1)."""
    config = toy_config(FLOAT64_ID, total=32, eval_episodes=1)
    metrics = train(config, tmp_path)
    assert metrics["final_score"] == 3.0
    assert metrics["global_step"] == 32


# ---------------------------------------------------------------------------------------------
# Box actions and normalization
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_box_actions_are_stored_raw_and_sent_clipped(mode):
    """On a Box(-1, 1, (2,)) toy env with σ = e (most draws outside the bounds): the rollout keeps
    the raw float actions (T, N, 2), whose recorded log-probabilities the actor reproduces, while the
    env only ever receives actions inside the Box (the toy env asserts it on every step)."""
    envs = make_envs(EnvConfig(id=BOX_ID, num_envs=2, vectorization="sync", autoreset_mode=mode))
    try:
        torch.manual_seed(0)
        actor = GaussianActor(1, [-1.0, -1.0], [1.0, 1.0], NetworkConfig(hidden_sizes=[8], log_std_init=1.0))
        rollout = Rollout.allocate(10, 2, 1, actor.action_shape, actor.action_dtype)
        collect_rollout(envs, actor, rollout, EnvState.reset(envs, 0), torch.Generator().manual_seed(0))
    finally:
        envs.close()
    assert rollout.actions.shape == (10, 2, 2) and rollout.actions.dtype == torch.float32
    assert rollout.actions.abs().max() > 1  # raw draws, not clipped ones
    with torch.no_grad():
        expected = actor.log_prob(actor(rollout.obs.view(-1, 1)), rollout.actions.view(-1, 2))
    torch.testing.assert_close(rollout.log_probs.view(-1), expected)


def test_train_on_box_actions_logs_episodes_and_evaluates_the_mean_action(tmp_path):
    """train() on the Box toy env runs end to end with the Gaussian policy: true episode lengths,
    the policy's σ logged every update, the log-std among the trained parameters, and a checkpoint that load_policy turns back into a
    Gaussian policy giving in-bounds actions."""
    metrics = train(toy_config(BOX_ID), tmp_path)
    scalars = read_scalars(tmp_path)
    assert {value for _, value in scalars["episode/length"]} == {3.0, 4.0}
    assert len(scalars["diagnostics/action_std"]) == 4 and scalars["diagnostics/action_std"][0][1] > 0.5
    assert metrics["final_score"] == pytest.approx(3.5)
    state = load_checkpoint(tmp_path)
    assert state["action_space"] == {"low": [-1.0, -1.0], "high": [1.0, 1.0]}
    assert "log_std" in state["actor"]
    policy, _ = load_policy(tmp_path)
    actions = policy(np.array([[0.0], [500.0]], dtype=np.float32))
    assert isinstance(policy.actor, GaussianActor) and actions.shape == (2, 2)
    assert (np.abs(actions) <= 1).all()


def test_normalization_statistics_are_checkpointed_and_used_by_the_loaded_policy(tmp_path):
    """With both normalizations on, the checkpoint holds the observation and return statistics of
    training (the toy obs are 0..3, so their mean is strictly between), and load_policy's policy
    normalizes with exactly those statistics."""
    config = toy_config(MIXED_ID)
    config.env.normalize_observations = config.env.normalize_rewards = True
    train(config, tmp_path)
    saved = load_checkpoint(tmp_path)["normalizer"]
    assert 0 < saved["observations"]["mean"].item() < 4 and saved["observations"]["count"] > 64
    assert saved["returns"]["count"] > 0
    policy, _ = load_policy(tmp_path)
    reference = Normalizer.from_config(config.env, 1, 1, config.agent.gamma)
    reference.load_state_dict(saved)
    probe = np.array([[0.0], [3.0]], dtype=np.float32)
    assert np.array_equal(policy.normalizer.observations(probe, update=False),
                          reference.observations(probe, update=False))
    assert policy.normalizer.observations(probe, update=False)[0, 0] < 0  # 0 is below the mean


def test_rollout_holds_normalized_observations_and_scaled_rewards_but_scores_are_raw(tmp_path):
    """Normalization changes what the networks see, not what is reported: episode scores stay the
    toy env's lengths (3 and 4)."""
    config = toy_config(MIXED_ID)
    config.env.normalize_observations = config.env.normalize_rewards = True
    train(config, tmp_path)
    assert {value for _, value in read_scalars(tmp_path)["episode/score"]} == {3.0, 4.0}


# ---------------------------------------------------------------------------------------------
# gradient clipping
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_norm", [1e-3, 0.5, 1e6])
def test_clip_grad_norm_matches_torch(max_norm):
    """clip_grad_norm scales gradients exactly as torch.nn.utils.clip_grad_norm_ does, both when the
    norm is above max_norm (scaled down) and below it (left alone)."""
    from ppo.update import clip_grad_norm

    import copy

    torch.manual_seed(0)
    net = Critic(3, NetworkConfig(hidden_sizes=[8, 8]))
    nets = [net, copy.deepcopy(net)]
    x = torch.randn(16, 3)
    for net in nets:
        net(x).pow(2).sum().backward()
    clip_grad_norm(list(nets[0].parameters()), max_norm)
    torch.nn.utils.clip_grad_norm_(nets[1].parameters(), max_norm)
    for mine, reference in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(mine.grad, reference.grad)


def test_metrics_break_the_wall_time_down_by_phase(tmp_path):
    """metrics.json holds the seconds spent per phase: collecting (of which stepping the env),
    advantages, the update's forward, backward and optimizer parts, and logging."""
    metrics = train(toy_config(TERMINATE_ID, total=64, eval_episodes=0), tmp_path)
    phases = json.loads((tmp_path / "metrics.json").read_text())["phase_seconds"]
    assert {"collect", "env_step", "advantages", "update_forward", "update_backward", "update_optimizer",
            "log"} <= set(phases)
    assert 0 < phases["env_step"] <= phases["collect"]
    assert sum(v for k, v in phases.items() if k != "env_step") <= metrics["train_seconds"] + 1e-3


# ---------------------------------------------------------------------------------------------
# Run statistics and metrics
# ---------------------------------------------------------------------------------------------


def test_run_stats_auc_is_the_time_average_of_the_mean_score_over_the_budget():
    """100 steps before any episode ends count at the first mean (2); then 100 steps at mean 2,
    100 at mean (2+4)/2 = 3; an early stop leaves 200 of the 500-step budget, counted at the last
    mean: (200*2 + 100*3 + 200*3) / 500 = 2.6."""
    stats = RunStats(solved_score=None)
    stats.advance(100)
    stats.record(2.0, step=150, seconds=0.1)
    stats.advance(100)
    stats.record(4.0, step=250, seconds=0.2)
    stats.advance(100)
    assert stats.auc(budget=500, steps_taken=300) == pytest.approx(2.6)
    assert stats.best_score == 4.0 and stats.episodes == 2
    assert stats.best_mean_score is None  # no full window of 100 episodes yet
    assert stats.steps_to_solve is None  # no solved score: never solved


def test_run_stats_solve_at_the_first_full_window_whose_mean_reaches_the_solved_score():
    stats = RunStats(solved_score=1.0)
    for episode in range(150):
        stats.record(0.0 if episode < 50 else 2.0, step=10 * (episode + 1), seconds=float(episode))
    # windows end at episodes 100..150; the mean of the window ending at episode e is 2 * (e - 50) / 100
    assert stats.steps_to_solve == 1000 and stats.seconds_to_solve == 99.0
    assert stats.best_mean_score == 2.0


def test_metrics_json_is_strict_json_with_null_for_what_was_not_measured(tmp_path):
    """No evaluation episodes: final_score is null (never NaN) in metrics.json, which strict JSON
    parsers read; the objective final_score then hands a sweeper None."""
    metrics = train(toy_config(TERMINATE_ID, total=32, eval_episodes=0), tmp_path)

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    saved = json.loads((tmp_path / "metrics.json").read_text(), parse_constant=refuse)
    assert saved["final_score"] is None and saved["final_score_std"] is None
    assert saved["solved_score"] is None and saved["steps_to_solve"] is None
    assert saved["auc"] == 3.0  # every episode of the toy env scores 3
    assert objective_value(saved) is None
    assert objective_value({**saved, "objective": "auc"}) == 3.0
    assert objective_value({**saved, "objective": "steps_to_solve"}) == saved["budget"] == 32
    assert metrics == saved


def test_steps_to_solve_objective_needs_a_solved_score(tmp_path):
    """An env without a solved score cannot rank runs by steps to solve: every run would tie at its
    budget. A ConfigError names the key before any training."""
    config = toy_config(TERMINATE_ID, total=32, eval_episodes=0)
    config.train.objective = "steps_to_solve"
    with pytest.raises(ConfigError, match="train.objective='steps_to_solve' is not allowed: .* has no solved score"):
        train(config, tmp_path)
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize("jointly", [False, True])
def test_gradients_are_clipped_per_network_or_jointly(jointly):
    """One SGD step of size 1 moves the parameters by minus the clipped gradient. Returns of 1000 make
    both gradients far longer than max_grad_norm 0.1: clipped per network, each network moves by
    exactly 0.1; with ``agent.clip_grad_jointly``, the two moves together measure 0.1 (SB3's and
    CleanRL's clipping), and the critic's far larger gradient leaves the actor a tiny step."""
    from ppo.networks import parameter_groups
    from ppo.timing import PhaseTimer
    from ppo.update import Samples, ppo_update

    torch.manual_seed(0)
    net = NetworkConfig()
    actor, critic = CategoricalActor(4, 2, net), Critic(4, net)
    optimizer = torch.optim.SGD([{"params": group} for group in parameter_groups(actor, critic)], lr=1.0)
    obs, actions = torch.randn(16, 4), torch.randint(0, 2, (16,))
    with torch.no_grad():
        old_log_probs = actor.log_prob(actor(obs), actions)
    samples = Samples(obs, actions, old_log_probs, advantages=torch.randn(16), returns=torch.full((16,), 1000.0),
                      values=torch.zeros(16))
    before = [torch.nn.utils.parameters_to_vector(model.parameters()).clone() for model in (actor, critic)]
    agent = AgentConfig(n_epochs=1, batch_size=16, max_grad_norm=0.1, entropy_coef=0.01, clip_grad_jointly=jointly)
    ppo_update(actor, critic, optimizer, samples, agent, 0.2, torch.Generator(), PhaseTimer())
    with torch.no_grad():
        moves = torch.stack([(torch.nn.utils.parameters_to_vector(model.parameters()) - start).norm()
                             for model, start in zip((actor, critic), before)])
    if jointly:
        assert moves.norm().item() == pytest.approx(0.1, rel=1e-4)
        assert moves[0].item() < 0.01
    else:
        assert moves.tolist() == pytest.approx([0.1, 0.1], rel=1e-4)
