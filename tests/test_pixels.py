"""Image observations without Atari or MinAtar installed: CNN networks and the shared torso, uint8
storage, the network-type errors, true scores over lives with clipped rewards and lost lives for
learning, and a CNN policy through training, checkpoint, evaluation and resume (toy image envs)."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import TERMINATE_ID
from ppo.rollout import Rollout, storage_dtype
from ppo.checkpoint import check_spaces, load_checkpoint, load_policy
from ppo.config import AgentConfig, Config, EnvConfig, NetworkConfig, TrainConfig
from ppo.errors import ConfigError
from ppo.envs import ChannelsFirst, channels_first, make_envs
from ppo.rollout import LifeLoss
from ppo.evaluate import evaluate
from ppo.networks import (CategoricalActor, Critic, Policy, Torso, make_actor, make_critic, parameter_groups,
                          policy_and_values, reads_channels_last, shared_torso)
from ppo.normalize import Normalizer
from ppo.rollout import EnvState, collect_rollout, estimate_values
from ppo.train import train
from ppo.update import Samples

MINATAR_NET = NetworkConfig(type="minatar_cnn", hidden_sizes=[16], activation="relu")
NATURE_NET = NetworkConfig(type="nature_cnn", hidden_sizes=[32], activation="relu")


class ImageEnv(gym.Env):
    """(3, 10, 10) uint8 frames whose pixels all equal 10 * t; 3 actions; reward 1 per step; the episode
    terminates after 5 steps. Channels-last ((10, 10, 3)) with ``channels_last=True``."""

    metadata = {"render_modes": []}

    def __init__(self, channels_last=False):
        shape = (10, 10, 3) if channels_last else (3, 10, 10)
        self.observation_space = gym.spaces.Box(0, 255, shape, np.uint8)
        self.action_space = gym.spaces.Discrete(3)
        self.t = 0

    def _obs(self):
        return np.full(self.observation_space.shape, 10 * self.t, dtype=np.uint8)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), 1.0, self.t >= 5, False, {}


class LivesEnv(gym.Env):
    """A scripted game of 3 lives, 2 steps each: every step scores 5 points (the sign of which is 1);
    ``info["lives"]`` counts down as Atari's does, and the game terminates when the last life is lost.
    A whole game scores 30."""

    metadata = {"render_modes": []}

    def __init__(self):
        self.observation_space = gym.spaces.Box(0.0, 10.0, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {"lives": 3}

    def step(self, action):
        self.t += 1
        lives = 3 - self.t // 2
        return np.full(1, self.t, np.float32), 5.0, lives == 0, False, {"lives": lives}


IMAGE_ID, CHANNELS_LAST_ID, LIVES_ID = "TestImage-v0", "TestImageChannelsLast-v0", "TestLives-v0"
for _env_id, _kwargs, _entry in ((IMAGE_ID, {}, ImageEnv), (CHANNELS_LAST_ID, {"channels_last": True}, ImageEnv),
                                 (LIVES_ID, {}, LivesEnv)):
    if _env_id not in gym.registry:
        gym.register(_env_id, entry_point=_entry, kwargs=_kwargs)


# --------------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------------


def test_cnn_actor_and_critic_map_images_to_policies_and_values():
    """A CNN takes (..., C, H, W) images with any leading batch dims: log-probabilities over the
    actions that sum to 1, one value per image."""
    actor, critic = CategoricalActor((4, 84, 84), 6, NATURE_NET), Critic((3, 10, 10), MINATAR_NET)
    frames = torch.randint(0, 256, (5, 4, 84, 84), dtype=torch.uint8)
    assert actor(frames).shape == (5, 6)
    assert torch.allclose(actor(frames).exp().sum(-1), torch.ones(5))
    grids = torch.rand(7, 2, 3, 10, 10) < 0.5  # (T, N, C, H, W) bool, as a rollout holds them
    assert critic(grids).shape == (7, 2)


def test_uint8_pixels_are_scaled_by_255_inside_the_network():
    """A uint8 frame gives the same features as the same frame given as floats in [0, 1], and a bool
    grid the same as 0/1 floats: the rollout need not hold floats."""
    torso = Torso((3, 10, 10), MINATAR_NET)
    pixels = torch.randint(0, 256, (4, 3, 10, 10), dtype=torch.uint8)
    assert torch.allclose(torso(pixels), torso(pixels.float() / 255), atol=1e-6)
    grid = torch.rand(4, 3, 10, 10) < 0.5
    assert torch.allclose(torso(grid), torso(grid.float()))


def test_nature_cnn_has_the_dqn_papers_layers():
    """Nature CNN: convolutions 32 8x8/4, 64 4x4/2, 64 3x3/1 on (4, 84, 84) frames leave 64x7x7 = 3136
    features for the 512-unit layer."""
    torso = Torso((4, 84, 84), dataclasses.replace(NATURE_NET, hidden_sizes=[512]))
    convolutions = [layer for layer in torso.conv if isinstance(layer, torch.nn.Conv2d)]
    layers = [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in convolutions]
    assert layers == [(32, 8, 4), (64, 4, 2), (64, 3, 1)]
    assert torso.dense[0].in_features == 3136 and torso.out_dim == 512


@pytest.mark.parametrize("obs_shape, net, message", [
    ((4, 84, 84), NetworkConfig(), "network.type='mlp' is not allowed for image observations"),
    ((4,), MINATAR_NET, "network.type='minatar_cnn' is not allowed for flat observations"),
    ((4, 10, 10), NATURE_NET, "too small for its convolutions; use minatar_cnn"),
])
def test_a_network_type_that_cannot_read_the_observations_is_a_one_line_config_error(obs_shape, net, message):
    with pytest.raises(ConfigError, match=message) as err:
        make_actor(obs_shape, {"n": 2}, net)
    assert "\n" not in str(err.value)


def test_shared_torso_is_one_set_of_parameters_run_once():
    """With network.shared_torso the critic holds the actor's torso itself: one parameter group with
    every parameter once, and policy_and_values gives what actor and critic give on their own."""
    net = dataclasses.replace(MINATAR_NET, shared_torso=True)
    actor = make_actor((3, 10, 10), {"n": 3}, net)
    critic = make_critic((3, 10, 10), net, actor)
    assert shared_torso(actor, critic) is actor.body.torso
    (group,) = parameter_groups(actor, critic)
    every_parameter = {id(p) for p in [*actor.parameters(), *critic.parameters()]}
    assert len({id(p) for p in group}) == len(group) == len(every_parameter)
    obs = torch.rand(6, 3, 10, 10) < 0.5
    policy, values = policy_and_values(actor, critic, obs)
    assert torch.allclose(policy, actor(obs)) and torch.allclose(values, critic(obs))


def test_separate_networks_keep_two_parameter_groups():
    actor = make_actor((3, 10, 10), {"n": 3}, MINATAR_NET)
    critic = make_critic((3, 10, 10), MINATAR_NET, actor)
    assert shared_torso(actor, critic) is None
    assert [len(group) for group in parameter_groups(actor, critic)] == [len(list(actor.parameters())),
                                                                         len(list(critic.parameters()))]


def test_policy_acts_on_uint8_images_as_the_env_gives_them():
    actor = make_actor((3, 10, 10), {"n": 3}, MINATAR_NET)
    actions = Policy(actor)(np.zeros((2, 3, 10, 10), dtype=np.uint8))
    assert actions.shape == (2,) and set(actions.tolist()) <= {0, 1, 2}


# --------------------------------------------------------------------------------------------
# Envs and storage
# --------------------------------------------------------------------------------------------


def test_channels_last_images_reach_the_agent_channels_first():
    """A (10, 10, 3) image env is seen as (3, 10, 10), the same pixels with the channel axis first."""
    envs = make_envs(EnvConfig(id=CHANNELS_LAST_ID, num_envs=2, vectorization="sync"))
    try:
        assert envs.single_observation_space.shape == (3, 10, 10)
        obs, _ = envs.reset(seed=0)
        obs, *_ = envs.step(np.zeros(2, dtype=np.int64))
        assert obs.shape == (2, 3, 10, 10) and obs.dtype == np.uint8 and (obs == 10).all()
    finally:
        envs.close()
    channels_first_env = channels_first(gym.make(IMAGE_ID))
    assert not isinstance(channels_first_env, ChannelsFirst)  # already (C, H, W): left as it is


def test_observation_normalization_is_refused_for_images():
    with pytest.raises(ConfigError, match="env.normalize_observations=true is not allowed.*image"):
        make_envs(EnvConfig(id=IMAGE_ID, num_envs=1, vectorization="sync", normalize_observations=True))


def test_storage_dtype_keeps_pixels_and_grids_compact():
    assert storage_dtype(np.uint8) == torch.uint8
    assert storage_dtype(np.bool_) == torch.bool
    assert storage_dtype(np.float64) == torch.float32


def test_rollout_of_images_stays_uint8():
    """Collecting from a uint8 image env fills a uint8 (T, N, C, H, W) rollout with the env's own
    pixels: no float copy of the rollout exists."""
    envs = make_envs(EnvConfig(id=IMAGE_ID, num_envs=2, vectorization="sync"))
    actor = make_actor((3, 10, 10), {"n": 3}, MINATAR_NET)
    rollout = Rollout.allocate(6, 2, (3, 10, 10), obs_dtype=torch.uint8)
    try:
        state = EnvState.reset(envs, seed=0)
        collect_rollout(envs, actor, rollout, state, torch.Generator().manual_seed(0))
    finally:
        envs.close()
    assert rollout.obs.dtype == torch.uint8 and rollout.obs.shape == (6, 2, 3, 10, 10)
    # steps 0-4 of the first episode, then the next-step reset's observation (t=5, its frame 50)
    assert rollout.obs[:, 0, 0, 0, 0].tolist() == [0, 10, 20, 30, 40, 50]
    assert rollout.final_obs.dtype == torch.uint8


def test_a_channels_last_rollout_keeps_the_shape_and_frames_of_a_contiguous_one():
    """Images stored channels-last read back as written, under the (T, N, C, H, W) shape; the
    update's samples and minibatches of them equal a contiguous rollout's and stay channels-last."""
    frames = torch.randint(0, 256, (4, 3, 2, 6, 5), dtype=torch.uint8)  # (T, N, C, H, W)
    stored = {}
    for channels_last in (False, True):
        rollout = Rollout.allocate(4, 3, (2, 6, 5), obs_dtype=torch.uint8, channels_last=channels_last)
        obs = rollout.obs.numpy()  # how collect_rollout writes each step
        for t in range(4):
            obs[t] = frames[t].numpy()
        assert rollout.obs.shape == (4, 3, 2, 6, 5) and torch.equal(rollout.obs, frames)
        rollout.trainable.fill_(True)
        rollout.trainable[1, 2] = False
        stored[channels_last] = Samples.gather(rollout.trainable, rollout.obs, rollout.actions, rollout.log_probs,
                                               rollout.values, rollout.values, rollout.values)
    contiguous, channels_last = stored[False].obs, stored[True].obs
    assert channels_last.is_contiguous(memory_format=torch.channels_last) and not channels_last.is_contiguous()
    assert torch.equal(channels_last, contiguous) and len(contiguous) == 11
    index = torch.tensor([7, 0, 3])
    assert torch.equal(stored[True].rows(index).obs, contiguous[index])
    assert stored[True].rows(index).obs.is_contiguous(memory_format=torch.channels_last)


def test_the_nature_cnns_rollout_is_stored_channels_last_and_minatars_is_not():
    assert reads_channels_last(make_actor((4, 84, 84), {"n": 4}, NATURE_NET))
    assert not reads_channels_last(make_actor((3, 10, 10), {"n": 3}, MINATAR_NET))
    assert not reads_channels_last(make_actor(4, {"n": 2}, NetworkConfig()))


def test_a_shared_torso_gives_the_values_while_acting():
    """Given the critic that shares the actor's torso, collecting writes V(s_t) of every step from the
    acting pass, and estimate_values takes them instead of running the critic over the rollout."""
    net = dataclasses.replace(MINATAR_NET, shared_torso=True)
    actor = make_actor((3, 10, 10), {"n": 3}, net)
    critic = make_critic((3, 10, 10), net, actor)
    envs = make_envs(EnvConfig(id=IMAGE_ID, num_envs=2, vectorization="sync"))
    rollout = Rollout.allocate(6, 2, (3, 10, 10), obs_dtype=torch.uint8)
    try:
        state = EnvState.reset(envs, seed=0)
        collect_rollout(envs, actor, rollout, state, torch.Generator().manual_seed(0), critic=critic)
    finally:
        envs.close()
    with torch.no_grad():
        passed = critic(rollout.obs)
        next_obs = torch.from_numpy(state.obs)
        values, next_values = estimate_values(critic, rollout, next_obs, acted=True)
    assert rollout.values.abs().sum() > 0
    torch.testing.assert_close(rollout.values, passed)
    assert values is rollout.values
    torch.testing.assert_close(next_values[-1], critic(next_obs).detach())
    torch.testing.assert_close(next_values[:-1], passed[1:])


# --------------------------------------------------------------------------------------------
# Scores over lives, rewards for learning
# --------------------------------------------------------------------------------------------


def test_scores_are_the_whole_games_unclipped_while_learning_sees_signs_and_lives():
    """On a scripted game of 3 lives scoring 5 per step: the episode scores 30 (all lives, raw
    rewards), the rollout holds rewards of 1 (their sign) and marks each lost life as terminal for
    learning, and the step after a lost life is still a transition to learn from."""
    env_cfg = EnvConfig(id=LIVES_ID, num_envs=1, vectorization="sync", sign_rewards=True, terminal_on_life_loss=True)
    envs = make_envs(env_cfg)
    actor = make_actor(1, {"n": 2}, NetworkConfig(hidden_sizes=[8]))
    rollout = Rollout.allocate(8, 1, 1)
    normalizer = Normalizer.from_config(env_cfg, 1, 1, gamma=0.99)
    try:
        state = EnvState.reset(envs, seed=0, normalizer=normalizer, terminal_on_life_loss=True)
        episodes = collect_rollout(envs, actor, rollout, state, torch.Generator().manual_seed(0), normalizer)
    finally:
        envs.close()
    assert [(score, length) for _, score, length, _ in episodes] == [(30.0, 6)]
    # steps 0-5 are the game (lives lost at steps 1 and 3, game over at 5), step 6 the reset step
    assert rollout.rewards[:6, 0].tolist() == [1.0] * 6
    assert rollout.terminated[:7, 0].tolist() == [0, 1, 0, 1, 0, 1, 0]
    assert rollout.ended[:7, 0].tolist() == [0, 1, 0, 1, 0, 1, 0]
    assert rollout.trainable[:7, 0].tolist() == [True] * 6 + [False]


def test_life_loss_ignores_envs_without_lives_and_the_reset_that_restores_them():
    life_loss = LifeLoss(2)
    assert not life_loss.update({}, np.zeros(2, bool)).any()
    assert not life_loss.update({"lives": np.array([3, 3])}, np.zeros(2, bool)).any()
    assert life_loss.update({"lives": np.array([2, 3])}, np.zeros(2, bool)).tolist() == [True, False]
    assert not life_loss.update({"lives": np.array([0, 3])}, np.array([True, False])).any()  # game over: ended
    assert not life_loss.update({"lives": np.array([3, 3])}, np.zeros(2, bool)).any()  # the reset


# --------------------------------------------------------------------------------------------
# A CNN policy through training, checkpoint, evaluation and resume
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    """A short run on the toy image env with a shared-torso CNN: (config, run dir, metrics)."""
    config = Config(agent=AgentConfig(n_steps=8, batch_size=8, n_epochs=2),
                    network=dataclasses.replace(MINATAR_NET, shared_torso=True),
                    env=EnvConfig(id=IMAGE_ID, num_envs=2, vectorization="sync"),
                    train=TrainConfig(total_timesteps=32, eval_episodes=2, progress=False, checkpoint_every=0))
    run_dir = tmp_path_factory.mktemp("cnn_run")
    return config, run_dir, train(config, run_dir)


@pytest.mark.slow
def test_cnn_checkpoint_saves_the_observation_shape_and_reloads_the_policy(cnn_run):
    config, run_dir, metrics = cnn_run
    state = load_checkpoint(run_dir)
    assert state["obs_shape"] == [3, 10, 10]
    policy, _ = load_policy(run_dir)
    assert evaluate(policy, config.env, 2, seed=config.seed + 1_000_000).mean() == metrics["final_score"] == 5.0


@pytest.mark.slow
def test_checkpoint_of_other_images_does_not_fit(cnn_run):
    _, run_dir, _ = cnn_run
    state = load_checkpoint(run_dir)
    with pytest.raises(ConfigError, match=r"saved for \(3, 10, 10\) images .* has \(4, 84, 84\) images"):
        check_spaces(state, (4, 84, 84), {"n": 3}, "ALE/Breakout-v5", "ckpt")
    with pytest.raises(ConfigError, match=r"saved for \(3, 10, 10\) images .* has 4 and"):
        check_spaces(state, 4, {"n": 3}, TERMINATE_ID, "ckpt")


@pytest.mark.slow
def test_cnn_run_resumes_with_a_larger_budget(cnn_run, tmp_path):
    config, run_dir, _ = cnn_run
    import shutil

    resumed_dir = tmp_path / "resumed"
    shutil.copytree(run_dir, resumed_dir)
    longer = dataclasses.replace(config, train=dataclasses.replace(config.train, total_timesteps=64))
    metrics = train(longer, resumed_dir, resume=True)
    assert metrics["global_step"] == 64
    assert load_checkpoint(resumed_dir)["update"] == 4


def test_an_optional_envs_missing_package_is_one_line_naming_its_extra(monkeypatch):
    """ALE/ and MinAtar/ ids come from optional packages: without them, choosing one says which extra
    to install."""
    import importlib

    from ppo.env_ids import register_optional_envs

    real_import = importlib.import_module

    def without_extras(name, *args):
        if name in ("ale_py", "minatar"):
            raise ImportError(name)
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_extras)
    for env_id, module, extra in (("ALE/Breakout-v5", "ale_py", "atari"),
                                  ("MinAtar/Breakout-v1", "minatar", "minatar")):
        assert register_optional_envs(env_id) == (f"is not available here: it needs {module}; install it with "
                                                  f'pip install "ppo[{extra}]"')
    assert register_optional_envs("CartPole-v1") is None  # any other id: nothing to do

