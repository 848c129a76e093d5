"""Vector env construction, the autoreset mode it reports, and episode statistics."""

from __future__ import annotations

import signal

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.async_vector_env import _async_worker

from ppo.config import ConfigError, EnvConfig

AUTORESET = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}


def make_envs(env: EnvConfig, num_envs: int | None = None) -> gym.vector.VectorEnv:
    """A vector env of ``env.num_envs`` (or ``num_envs``) copies of ``env.id``, not yet reset.

    Its ``metadata["autoreset_mode"]`` says how finished sub-envs restart; the trainer reads that
    rather than trusting the config, since a native vector env may support one mode only.
    """
    try:
        envs = _make_vector_env(env, num_envs or env.num_envs)
    except gym.error.DependencyNotInstalled as err:
        raise ConfigError(f"env.id={env.id!r} is not available here: {missing_dependency(err)}") from None
    _check_spaces(envs, env.id)
    return envs


def missing_dependency(err: gym.error.DependencyNotInstalled) -> str:
    """Gymnasium's missing-dependency message in one line, with this project's extra for Box2D."""
    text = " ".join(str(err).split())
    if "box2d" in text.lower():
        return 'it needs Box2D; install it with pip install "ppo[box2d]" (or "gymnasium[box2d]")'
    return text


def _make_vector_env(env: EnvConfig, num_envs: int) -> gym.vector.VectorEnv:
    spec = gym.spec(env.id)
    autoreset_mode = AUTORESET[env.autoreset_mode]
    vectorization = env.vectorization
    if vectorization == "auto":
        native = spec.vector_entry_point is not None and autoreset_mode == AutoresetMode.NEXT_STEP
        vectorization = "vector_entry_point" if native else "sync"
    if vectorization == "vector_entry_point":
        if spec.vector_entry_point is None:
            raise ConfigError(f"env.vectorization='vector_entry_point' is not allowed: {env.id} has no native "
                              "vector env; use sync, async or auto")
        envs = gym.make_vec(env.id, num_envs=num_envs, vectorization_mode="vector_entry_point")
        if envs.metadata.get("autoreset_mode") != autoreset_mode:
            envs.close()
            raise ConfigError(f"env.autoreset_mode={env.autoreset_mode!r} is not allowed with the native "
                              f"vector env of {env.id}: it supports next_step only; use env.vectorization=sync")
    else:
        vector_kwargs = {"autoreset_mode": autoreset_mode}
        if vectorization == "async":
            vector_kwargs["worker"] = _signal_immune_worker
        envs = gym.make_vec(env.id, num_envs=num_envs, vectorization_mode=vectorization,
                            vector_kwargs=vector_kwargs)
    return envs


def _signal_immune_worker(*args, **kwargs) -> None:
    """Gymnasium's async env worker, deaf to SIGINT and SIGTERM: Ctrl-C reaches every process of the
    terminal's group and a cluster's SIGTERM every process of the job, and a worker that died of it
    would break the step in progress. The trainer stops between updates and closes its workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _async_worker(*args, **kwargs)


def _check_spaces(envs: gym.vector.VectorEnv, env_id: str) -> None:
    obs_space, action_space = envs.single_observation_space, envs.single_action_space
    problem = None
    if isinstance(action_space, gym.spaces.Box):
        if len(action_space.shape) != 1:
            problem = f"its action space is {action_space}; the agent handles flat (1-D) Box actions only"
        elif not (np.isfinite(action_space.low).all() and np.isfinite(action_space.high).all()):
            problem = f"its action space is {action_space}; Box actions need finite bounds to clip to"
    elif not isinstance(action_space, gym.spaces.Discrete):
        problem = f"its action space is {action_space}; the agent handles Discrete and Box actions only"
    if problem is None and not (isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) == 1):
        problem = f"its observation space is {obs_space}; the agent handles flat Box observations only"
    if problem:
        envs.close()
        raise ConfigError(f"env.id={env_id!r} is not supported: {problem}")


def solved_score(env: EnvConfig) -> float | None:
    """The 100-episode mean score that counts as solving ``env.id``: the config's, else gymnasium's."""
    if env.solved_score is not None:
        return env.solved_score
    return gym.spec(env.id).reward_threshold


class EpisodeTracker:
    """Running score and length of the episode in progress in each sub-env, vectorized.

    ``update`` takes one vector step's rewards and flags and returns the scores and lengths of the
    episodes that ended in it. ``counted`` is False for a sub-env's reset step in next-step
    autoreset mode: that step is no transition of any episode (its reward is 0).
    """

    def __init__(self, num_envs: int):
        self.scores = np.zeros(num_envs, dtype=np.float64)
        self.lengths = np.zeros(num_envs, dtype=np.int64)

    def update(self, rewards: np.ndarray, ended: np.ndarray, counted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.scores += rewards
        self.lengths += counted
        if not ended.any():
            return _EMPTY_F, _EMPTY_I
        scores, lengths = self.scores[ended], self.lengths[ended]
        self.scores[ended] = 0.0
        self.lengths[ended] = 0
        return scores, lengths


_EMPTY_F = np.zeros(0, dtype=np.float64)
_EMPTY_I = np.zeros(0, dtype=np.int64)
