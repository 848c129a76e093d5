"""make_envs (vectorization and autoreset mode), space checks, solved scores and EpisodeTracker."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from conftest import IMAGE_ID, MULTI_DISCRETE_ID, TERMINATE_ID, TRUNCATE_ID, UNBOUNDED_ID, make_config
from ppo.config import EnvConfig
from ppo.errors import ConfigError
from ppo.envs import make_envs, make_render_env, solved_score
from ppo.rollout import EpisodeTracker


def test_auto_picks_the_native_cartpole_vector_env():
    """vectorization=auto with next_step gives gymnasium's native CartPoleVectorEnv for CartPole-v1."""
    envs = make_envs(EnvConfig(id="CartPole-v1", num_envs=3, vectorization="auto"))
    try:
        assert isinstance(envs.unwrapped, CartPoleVectorEnv)
        assert envs.num_envs == 3
        assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    finally:
        envs.close()


def test_auto_falls_back_to_sync_for_same_step_cartpole():
    """The native CartPole vector env only does next_step: auto with same_step falls back to sync."""
    envs = make_envs(EnvConfig(id="CartPole-v1", num_envs=2, vectorization="auto", autoreset_mode="same_step"))
    try:
        assert isinstance(envs, SyncVectorEnv)
        assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    finally:
        envs.close()


def test_auto_uses_sync_for_an_env_without_native_vector_env():
    """An env with no vector entry point (Acrobot-v1) is vectorized with sync under auto."""
    envs = make_envs(EnvConfig(id="Acrobot-v1", num_envs=2))
    try:
        assert isinstance(envs, SyncVectorEnv)
    finally:
        envs.close()


@pytest.mark.parametrize("mode, expected", [("next_step", AutoresetMode.NEXT_STEP),
                                            ("same_step", AutoresetMode.SAME_STEP)])
def test_sync_vector_env_reports_the_configured_autoreset_mode(mode, expected):
    """A sync vector env of the configured size whose metadata carries the configured autoreset mode."""
    envs = make_envs(EnvConfig(id=TERMINATE_ID, num_envs=3, vectorization="sync", autoreset_mode=mode))
    try:
        assert isinstance(envs, SyncVectorEnv)
        assert envs.num_envs == 3
        assert envs.metadata["autoreset_mode"] == expected
    finally:
        envs.close()


def test_num_envs_argument_overrides_the_config():
    """make_envs(env, num_envs=k) builds k sub-envs whatever env.num_envs says (used by evaluation)."""
    envs = make_envs(EnvConfig(id=TERMINATE_ID, num_envs=3, vectorization="sync"), num_envs=5)
    try:
        assert envs.num_envs == 5
    finally:
        envs.close()


def test_vector_entry_point_with_same_step_is_a_config_error():
    """The native CartPole vector env cannot reset in the same step: asking for both is a ConfigError
    naming env.autoreset_mode."""
    with pytest.raises(ConfigError, match="env.autoreset_mode"):
        make_envs(EnvConfig(id="CartPole-v1", vectorization="vector_entry_point", autoreset_mode="same_step"))


def test_vector_entry_point_without_native_env_is_a_config_error():
    """vectorization=vector_entry_point for an env that has none is a ConfigError naming env.vectorization."""
    with pytest.raises(ConfigError, match="env.vectorization"):
        make_envs(EnvConfig(id="Acrobot-v1", vectorization="vector_entry_point"))


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_discrete_and_bounded_box_actions_are_accepted(env_id):
    """Discrete actions get the categorical policy, bounded flat Box actions the Gaussian one."""
    make_envs(EnvConfig(id=env_id, num_envs=1)).close()


@pytest.mark.parametrize("env_id, reason", [(UNBOUNDED_ID, "finite bounds"), (MULTI_DISCRETE_ID, "Discrete and Box")])
def test_unsupported_action_space_is_a_config_error_naming_env_id(env_id, reason):
    """Box actions without finite bounds (nothing to clip to) and other action spaces are rejected
    before training with a ConfigError naming env.id and what is supported."""
    with pytest.raises(ConfigError, match="env.id") as err:
        make_envs(EnvConfig(id=env_id, num_envs=1, vectorization="sync"))
    assert reason in str(err.value)


def test_non_flat_observation_env_is_a_config_error_naming_env_id():
    """A 2-D Box observation is rejected with a ConfigError naming env.id."""
    with pytest.raises(ConfigError, match="env.id"):
        make_envs(EnvConfig(id=IMAGE_ID, num_envs=1, vectorization="sync"))


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_truncation_by_time_limit_reaches_the_vector_env(mode):
    """The toy env registered with max_episode_steps=4 reports truncated (not terminated) on its 4th step."""
    envs = make_envs(EnvConfig(id=TRUNCATE_ID, num_envs=1, vectorization="sync", autoreset_mode=mode))
    try:
        envs.reset(seed=0)
        flags = [envs.step(np.zeros(1, dtype=np.int64))[2:4] for _ in range(4)]
        assert [bool(term[0]) for term, _ in flags] == [False] * 4
        assert [bool(trunc[0]) for _, trunc in flags] == [False, False, False, True]
    finally:
        envs.close()


def test_env_kwargs_reach_the_constructor_of_a_sync_env():
    """``env.kwargs={length:5}`` from the command line overrides the toy env's registered length 3."""
    config = make_config([f"env.id={TERMINATE_ID}", "env.num_envs=8", "env.kwargs={length:5}"])
    assert config.env.kwargs == {"length": 5}
    envs = make_envs(config.env)
    try:
        envs.reset(seed=0)
        terminated = [envs.step(np.zeros(8, dtype=np.int64))[2].tolist() for _ in range(5)]
        assert terminated == [[False] * 8] * 4 + [[True] * 8]
    finally:
        envs.close()


def test_env_kwargs_reach_the_native_vector_env():
    """CartPole's native vector env takes them too: Sutton and Barto's reward is 0 on a step that
    does not end the episode, where the default gives 1."""
    for kwargs, reward in [(None, 1.0), ({"sutton_barto_reward": True}, 0.0)]:
        envs = make_envs(EnvConfig(id="CartPole-v1", num_envs=2, kwargs=kwargs))
        try:
            assert isinstance(envs, CartPoleVectorEnv)
            envs.reset(seed=0)
            assert envs.step(np.zeros(2, dtype=np.int64))[1].tolist() == [reward, reward]
        finally:
            envs.close()


def test_unknown_env_kwarg_is_a_config_error_naming_env_kwargs_and_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"^env.kwargs=\{'lenght': 5\} is not allowed: .*unexpected keyword "
                                          r"argument 'lenght'; TestCounterTerminate-v0 takes length, lengths, "):
        make_envs(EnvConfig(id=TERMINATE_ID, num_envs=1, kwargs={"lenght": 5}))


def test_env_kwargs_that_are_not_a_mapping_are_a_config_error():
    with pytest.raises(ConfigError, match=r"^env.kwargs=5 is not allowed: a mapping of names to values"):
        make_config(["env.kwargs=5"])


def test_solved_score_prefers_the_config_then_gymnasium():
    """env.solved_score wins; null falls back to gymnasium's reward_threshold (475 for CartPole-v1),
    and to None for an env without one."""
    assert solved_score(EnvConfig(id="CartPole-v1", solved_score=100.0)) == 100.0
    assert solved_score(EnvConfig(id="CartPole-v1")) == 475.0
    assert solved_score(EnvConfig(id=TERMINATE_ID)) is None


def test_episode_tracker_accumulates_and_reports_finished_episodes():
    """EpisodeTracker sums rewards and counts counted steps per sub-env, returns (scores, lengths) of
    the sub-envs that ended in the step, and restarts them at 0."""
    tracker = EpisodeTracker(3)
    yes, no = np.ones(3, dtype=bool), np.zeros(3, dtype=bool)

    scores, lengths = tracker.update(np.array([1.0, 2.0, 0.5]), no, yes)
    assert scores.size == 0 and lengths.size == 0

    scores, lengths = tracker.update(np.array([1.0, 2.0, 0.5]), np.array([False, True, False]), yes)
    assert scores.tolist() == [4.0] and lengths.tolist() == [2]

    # sub-env 1's reset step (next_step mode): not counted, reward 0
    scores, lengths = tracker.update(np.array([1.0, 0.0, 0.5]), np.array([True, False, True]),
                                     np.array([True, False, True]))
    assert scores.tolist() == [3.0, 1.5] and lengths.tolist() == [3, 3]

    scores, lengths = tracker.update(np.array([1.0, 5.0, 1.0]), yes, yes)
    assert scores.tolist() == [1.0, 5.0, 1.0]
    assert lengths.tolist() == [1, 1, 1]  # sub-env 1's uncounted reset step is not part of its episode


def test_box2d_env_without_box2d_names_the_extra_to_install(monkeypatch):
    """Without Box2D installed, a LunarLander env is a ConfigError naming env.id and the extra."""
    import sys

    for module in [name for name in sys.modules if name.startswith("gymnasium.envs.box2d")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "Box2D", None)  # import Box2D now raises ImportError
    with pytest.raises(ConfigError, match=r"env.id='LunarLander-v3' is not available here: .*ppo\[box2d\]"):
        make_envs(EnvConfig(id="LunarLander-v3", num_envs=1))


def test_render_env_of_an_env_without_rgb_array_is_a_config_error():
    """An env whose metadata lists no rgb_array render mode (many of your own) cannot be recorded: one
    line, not gymnasium's warning and a TypeError for the render_mode its constructor does not take."""
    with pytest.raises(ConfigError, match=rf"^video=true is not allowed for env.id='{TERMINATE_ID}': it renders no "
                                          r"rgb_array frames \(its metadata's render_modes are \[\]\)$"):
        make_render_env(EnvConfig(id=TERMINATE_ID, num_envs=1))
