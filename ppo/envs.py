"""Vector env construction, the autoreset mode it reports, and episode statistics.

Observations reach the agent as flat vectors or as (C, H, W) images: Atari frames through ale-py's
preprocessing, and channels-last images such as MinAtar's (10, 10, C) grids moved to channels-first.
"""

from __future__ import annotations

import inspect
import os
import signal

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.async_vector_env import _async_worker

from ppo.config import EnvConfig
from ppo.env_ids import resolve_env_id
from ppo.errors import ConfigError

AUTORESET = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}

# Atari preprocessing of the DQN paper (Mnih et al. 2015) as CleanRL and SB3 apply it: up to 30 no-op
# actions at reset, each action repeated for 4 frames with the last two max-pooled (sprites flicker),
# 84x84 grayscale frames. env.frame_stack of them make an observation.
ATARI_NOOP_MAX = 30
ATARI_FRAME_SKIP = 4
ATARI_SCREEN_SIZE = 84


def make_envs(env: EnvConfig, num_envs: int | None = None) -> gym.vector.VectorEnv:
    """A vector env of ``env.num_envs`` (or ``num_envs``) copies of ``env.id``, not yet reset.

    Its ``metadata["autoreset_mode"]`` says how finished sub-envs restart; the trainer reads that
    rather than trusting the config, since a native vector env may support one mode only.
    """
    try:
        envs = _make_vector_env(env, num_envs or env.num_envs)
    except gym.error.DependencyNotInstalled as err:
        raise ConfigError(f"env.id={env.id!r} is not available here: {missing_dependency(err)}") from None
    except TypeError as err:
        if env.kwargs and "unexpected keyword argument" in str(err):
            allowed = _constructor_arguments(env.id)
            raise ConfigError(f"env.kwargs={env.kwargs} is not allowed: {str(err).split(' was raised')[0]}"
                              + (f"; {env.id} takes {', '.join(allowed)}" if allowed else "")) from None
        raise
    _check_spaces(envs, env)
    return envs


def _env_creator(env_id: str):
    """The class (or function) that gymnasium calls to make one ``env_id``."""
    entry_point = gym.spec(resolve_env_id(env_id)).entry_point
    return gym.envs.registration.load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point


def _constructor_arguments(env_id: str) -> list[str]:
    """The keyword arguments that ``env_id``'s constructor names (empty where it cannot be read)."""
    parameters = inspect.signature(_env_creator(env_id)).parameters.values()
    return [p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _render_modes(env_id: str) -> list[str] | None:
    """The render modes that ``env_id``'s class lists in its metadata, read as ``gymnasium.make`` reads
    them; None where there are none to read (a function, or a wrapper class's metadata property)."""
    metadata = getattr(_env_creator(env_id), "metadata", None)
    return metadata.get("render_modes") if isinstance(metadata, dict) else None


def missing_dependency(err: gym.error.DependencyNotInstalled) -> str:
    """Gymnasium's missing-dependency message in one line, with this project's extra for Box2D and MuJoCo."""
    text = " ".join(str(err).split())
    if "box2d" in text.lower():
        return 'it needs Box2D; install it with pip install "ppo[box2d]" (or "gymnasium[box2d]")'
    if "mujoco" in text.lower():
        return 'it needs MuJoCo; install it with pip install "ppo[mujoco]" (or "gymnasium[mujoco]")'
    return text


def is_atari(env_id: str) -> bool:
    """Whether ``env_id`` is one of ale-py's ``ALE/<Game>-v5`` ids, which get the Atari preprocessing."""
    return resolve_env_id(env_id).startswith("ALE/")


def _make_vector_env(env: EnvConfig, num_envs: int, render_mode: str | None = None) -> gym.vector.VectorEnv:
    env_id = resolve_env_id(env.id)
    spec = gym.spec(env_id)
    autoreset_mode = AUTORESET[env.autoreset_mode]
    vectorization = "sync" if render_mode else env.vectorization
    if vectorization == "auto":
        native = spec.vector_entry_point is not None and autoreset_mode == AutoresetMode.NEXT_STEP
        vectorization = "vector_entry_point" if native else "sync"
    if vectorization == "vector_entry_point":
        if spec.vector_entry_point is None:
            raise ConfigError(f"env.vectorization='vector_entry_point' is not allowed: {env.id} has no native "
                              "vector env; use sync, async or auto")
        kwargs = {**(_atari_vector_kwargs(env) if is_atari(env.id) else {}), **_episode_limit(env),
                  **(env.kwargs or {})}
        envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
        if envs.metadata.get("autoreset_mode") != autoreset_mode:
            envs.close()
            raise ConfigError(f"env.autoreset_mode={env.autoreset_mode!r} is not allowed with the native "
                              f"vector env of {env.id}: it supports next_step only; use env.vectorization=sync")
    else:
        vector_kwargs = {"autoreset_mode": autoreset_mode}
        if vectorization == "async":
            vector_kwargs["worker"] = _signal_immune_worker
        kwargs, wrappers = _atari_wrappers(env) if is_atari(env.id) else ({}, [])
        kwargs.update(_episode_limit(env), **(env.kwargs or {}))
        if render_mode:
            kwargs["render_mode"] = render_mode
        wrappers.append(channels_first)
        envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=vectorization,
                            vector_kwargs=vector_kwargs, wrappers=wrappers, **kwargs)
    return envs


def _episode_limit(env: EnvConfig) -> dict:
    """The env kwargs for ``env.max_episode_steps``: Atari counts emulator frames, 4 to an agent step."""
    if env.max_episode_steps is None:
        return {}
    if is_atari(env.id):
        return {"max_num_frames_per_episode": env.max_episode_steps * ATARI_FRAME_SKIP}
    return {"max_episode_steps": env.max_episode_steps}


def _atari_vector_kwargs(env: EnvConfig) -> dict:
    """ale-py's C++ vector env (``AtariVectorEnv``) set to the standard preprocessing, with rewards and
    episodes as the game gives them: the trainer takes signs (``env.sign_rewards``) and lives
    (``env.terminal_on_life_loss``) into account for learning only, so scores stay the game's."""
    kwargs = dict(noop_max=ATARI_NOOP_MAX, frameskip=ATARI_FRAME_SKIP, img_height=ATARI_SCREEN_SIZE,
                  img_width=ATARI_SCREEN_SIZE, grayscale=True, maxpool=True, stack_num=env.frame_stack,
                  reward_clipping=False, episodic_life=False, use_fire_reset=True,
                  autoreset_mode=AUTORESET[env.autoreset_mode])
    if env.repeat_action_probability is not None:
        kwargs["repeat_action_probability"] = env.repeat_action_probability
    return kwargs


def _atari_wrappers(env: EnvConfig) -> tuple[dict, list]:
    """The same preprocessing as gymnasium wrappers around one ``AtariEnv`` each (for sync and async
    vector envs, and for rendering videos): the env's kwargs and its wrappers."""
    kwargs = {"frameskip": 1}  # AtariPreprocessing skips frames itself, max-pooling the last two
    if env.repeat_action_probability is not None:
        kwargs["repeat_action_probability"] = env.repeat_action_probability
    wrappers = [
        lambda e: gym.wrappers.AtariPreprocessing(e, noop_max=ATARI_NOOP_MAX, frame_skip=ATARI_FRAME_SKIP,
                                                  screen_size=ATARI_SCREEN_SIZE, terminal_on_life_loss=False,
                                                  grayscale_obs=True, scale_obs=False),
        FireReset,
        lambda e: gym.wrappers.FrameStackObservation(e, env.frame_stack),
    ]
    return kwargs, wrappers


class FireReset(gym.Wrapper):
    """Press FIRE once after each reset (and its no-ops) in games that have it, as ale-py's vector env
    (``use_fire_reset``) and CleanRL's FireResetEnv do: Breakout, for one, waits for it to serve."""

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        meanings = self.env.unwrapped.get_action_meanings()
        if "FIRE" in meanings:
            obs, _, terminated, truncated, info = self.env.step(meanings.index("FIRE"))
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        return obs, info


def channels_first(env: gym.Env) -> gym.Env:
    """``env`` with its observations as (C, H, W) where they are channels-last images: a 3-D Box whose
    last axis is its shortest, such as MinAtar's (10, 10, C) grids or (H, W, 3) RGB frames."""
    shape = env.observation_space.shape
    if isinstance(env.observation_space, gym.spaces.Box) and len(shape) == 3 and shape[-1] < min(shape[:2]):
        return ChannelsFirst(env)
    return env


class ChannelsFirst(gym.ObservationWrapper):
    """(H, W, C) image observations as (C, H, W), the layout of torch's convolutions."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        self.observation_space = gym.spaces.Box(np.moveaxis(space.low, -1, 0), np.moveaxis(space.high, -1, 0),
                                                dtype=space.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.moveaxis(observation, -1, 0)


def _signal_immune_worker(*args, **kwargs) -> None:
    """Gymnasium's async env worker, deaf to SIGINT and SIGTERM: Ctrl-C reaches every process of the
    terminal's group and a cluster's SIGTERM every process of the job, and a worker that died of it
    would break the step in progress. The trainer stops between updates and closes its workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _async_worker(*args, **kwargs)


def is_image(shape: tuple[int, ...]) -> bool:
    """Whether observations of ``shape`` are (C, H, W) images (else flat vectors)."""
    return len(shape) == 3


def _check_spaces(envs: gym.vector.VectorEnv, env: EnvConfig) -> None:
    env_id = env.id
    obs_space, action_space = envs.single_observation_space, envs.single_action_space
    problem = None
    if isinstance(action_space, gym.spaces.Box):
        if len(action_space.shape) != 1:
            problem = f"its action space is {action_space}; the agent handles flat (1-D) Box actions only"
        elif not (np.isfinite(action_space.low).all() and np.isfinite(action_space.high).all()):
            problem = f"its action space is {action_space}; Box actions need finite bounds to clip to"
    elif not isinstance(action_space, gym.spaces.Discrete):
        problem = f"its action space is {action_space}; the agent handles Discrete and Box actions only"
    if problem is None and not (isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) in (1, 3)):
        problem = (f"its observation space is {obs_space}; the agent handles flat Box observations and "
                   "3-D images only")
    if problem:
        envs.close()
        raise ConfigError(f"env.id={env_id!r} is not supported: {problem}")
    if env.normalize_observations and is_image(obs_space.shape):
        envs.close()
        raise ConfigError(f"env.normalize_observations=true is not allowed: env.id={env_id!r} has image "
                          f"observations {obs_space.shape}, which the network scales itself; set it to false")


def solved_score(env: EnvConfig) -> float | None:
    """The 100-episode mean score that counts as solving ``env.id``: the config's, else gymnasium's."""
    if env.solved_score is not None:
        return env.solved_score
    return gym.spec(resolve_env_id(env.id)).reward_threshold


def make_render_env(env: EnvConfig) -> gym.vector.VectorEnv:
    """One copy of ``env.id`` that renders RGB frames (``envs.render()``), with the observations the
    agent trained on: a sync vector env, so that Atari gets its preprocessing as gymnasium wrappers."""
    # pygame (classic control, Box2D) initializes SDL's audio too, and on a machine without a sound card
    # ALSA prints a dozen lines of errors; rgb_array frames need no sound. A user's own choice stays.
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    try:
        # gymnasium would warn, then fail on the render_mode that an env of your own may not take
        render_modes = _render_modes(env.id)
        if render_modes is not None and "rgb_array" not in render_modes:
            raise ConfigError(f"video=true is not allowed for env.id={env.id!r}: it renders no rgb_array frames "
                              f"(its metadata's render_modes are {render_modes})")
        envs = _make_vector_env(env, 1, render_mode="rgb_array")
    except gym.error.DependencyNotInstalled as err:
        raise ConfigError(f"env.id={env.id!r} is not available here: {missing_dependency(err)}") from None
    _check_spaces(envs, env)
    return envs
