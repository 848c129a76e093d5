"""Shared fixtures: Hydra composition, tiny deterministic toy envs, the CLI, and TensorBoard readers."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from ppo.config import Config, to_config
from ppo.run import compose

# --------------------------------------------------------------------------------------------
# Toy environments
# --------------------------------------------------------------------------------------------


class CounterEnv(gym.Env):
    """A deterministic env whose observation is the number of steps taken in the episode.

    * observation: ``[t]`` as a float Box of shape ``obs_shape`` (default ``(1,)``), t = 0 after reset;
    * actions: ``action_space`` (default Discrete(2)), ignored, but ``step`` asserts that the action
      is inside it (a Box action outside its bounds fails the test);
    * reward: 1.0 on every step, so an episode's score equals its length;
    * termination: after ``length`` steps (``None``: never; a TimeLimit from ``max_episode_steps``
      then truncates it).

    ``lengths`` gives one length per seed residue: at a seeded reset the env takes
    ``lengths[seed % len(lengths)]``. Sub-env i of a vector env reset with ``seed=s`` gets seed s+i,
    so ``lengths=(3, None)`` makes sub-env 0 terminate after 3 steps and sub-env 1 run until its
    time limit (for seed 0).
    """

    metadata = {"render_modes": []}

    def __init__(self, length=None, lengths=None, dtype=np.float32, obs_shape=(1,), action_space=None):
        self.observation_space = gym.spaces.Box(0.0, 1000.0, shape=obs_shape, dtype=dtype)
        self.action_space = action_space if action_space is not None else gym.spaces.Discrete(2)
        self.lengths = tuple(lengths) if lengths is not None else (length,)
        self.length = self.lengths[0]
        self.t = 0

    def _obs(self):
        return np.full(self.observation_space.shape, float(self.t), dtype=self.observation_space.dtype)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self.length = self.lengths[seed % len(self.lengths)]
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        assert self.action_space.contains(action)
        self.t += 1
        terminated = self.length is not None and self.t >= self.length
        return self._obs(), 1.0, terminated, False, {}


TERMINATE_ID = "TestCounterTerminate-v0"  # terminates after 3 steps, no time limit
TRUNCATE_ID = "TestCounterTruncate-v0"  # never terminates, truncated after 4 steps
MIXED_ID = "TestCounterMixed-v0"  # seed 0: sub-env 0 terminates after 3 steps, sub-env 1 truncated after 4
BOTH_ID = "TestCounterBoth-v0"  # terminates after 4 steps, and is truncated at that same step
FLOAT64_ID = "TestCounterFloat64-v0"  # like TERMINATE_ID, with a float64 observation space
IMAGE_ID = "TestCounterImage-v0"  # a (2, 2) observation: not a flat Box
LONG_ID = "TestCounterLong-v0"  # terminates after 100 steps
BOX_ID = "TestCounterBox-v0"  # like MIXED_ID, with Box(-1, 1, (2,)) actions
UNBOUNDED_ID = "TestCounterUnbounded-v0"  # Box actions without bounds: not supported
MULTI_DISCRETE_ID = "TestCounterMultiDiscrete-v0"  # MultiDiscrete actions: not supported

_TOY_ENVS = {
    TERMINATE_ID: (dict(length=3), None),
    TRUNCATE_ID: (dict(length=None), 4),
    MIXED_ID: (dict(lengths=(3, None)), 4),
    BOTH_ID: (dict(length=4), 4),
    FLOAT64_ID: (dict(length=3, dtype=np.float64), None),
    IMAGE_ID: (dict(length=3, obs_shape=(2, 2)), None),
    LONG_ID: (dict(length=100), None),
    BOX_ID: (dict(lengths=(3, None), action_space=gym.spaces.Box(-1.0, 1.0, (2,), np.float32)), 4),
    UNBOUNDED_ID: (dict(length=3, action_space=gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)), None),
    MULTI_DISCRETE_ID: (dict(length=3, action_space=gym.spaces.MultiDiscrete([2, 3])), None),
}

for _env_id, (_kwargs, _max_steps) in _TOY_ENVS.items():
    if _env_id not in gym.registry:
        gym.register(_env_id, entry_point=CounterEnv, kwargs=_kwargs, max_episode_steps=_max_steps)


# --------------------------------------------------------------------------------------------
# Hydra
# --------------------------------------------------------------------------------------------


def make_config(overrides=()) -> Config:
    """The validated :class:`Config` for these command-line overrides."""
    return to_config(compose(overrides))


@pytest.fixture
def tiny_cartpole_config() -> Config:
    """The default CartPole config with a budget small enough for a unit test (~1 s)."""
    return make_config(["train.total_timesteps=512", "train.eval_episodes=2", "train.progress=false",
                        "train.checkpoint_every=0"])


# --------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------


def run_cli(cwd, *args, module="ppo.run", timeout=120):
    """Run ``python -m <module> <args>`` in ``cwd`` (not the checkout) and return the CompletedProcess."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def require_modules(*modules: str, extras: str = "sweep,cluster") -> None:
    """Skip the calling test module when an optional extra (``extras``, which installs ``modules``) is
    not installed, except in CI (which installs ``.[dev]`` and with it every extra), where a missing
    module is a failure."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing and not os.environ.get("CI"):
        pytest.skip(f"needs {', '.join(missing)}: pip install -e '.[{extras}]'", allow_module_level=True)
    assert not missing, f"CI installs the {extras} extras, but {missing} are missing"


# --------------------------------------------------------------------------------------------
# TensorBoard
# --------------------------------------------------------------------------------------------


def read_scalars(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the TensorBoard event files in ``run_dir``: tag -> [(step, value), ...]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})  # 0: keep every event
    accumulator.Reload()
    return {tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"]}


def read_hparams(run_dir: str | Path) -> dict:
    """The HParams plugin data in ``run_dir``'s event files: tag -> ``HParamsPluginData``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    accumulator = EventAccumulator(str(run_dir))
    accumulator.Reload()
    return {tag: plugin_data_pb2.HParamsPluginData.FromString(content)
            for tag, content in accumulator.PluginTagToContent("hparams").items()}


def read_custom_scalars_layout(run_dir: str | Path):
    """The custom-scalars ``Layout`` proto written into ``run_dir``, or None."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.custom_scalar import layout_pb2, metadata

    accumulator = EventAccumulator(str(run_dir), size_guidance={"tensors": 0})
    accumulator.Reload()
    if metadata.CONFIG_SUMMARY_TAG not in accumulator.Tags()["tensors"]:
        return None
    tensor = accumulator.Tensors(metadata.CONFIG_SUMMARY_TAG)[0].tensor_proto
    return layout_pb2.Layout.FromString(tensor.string_val[0])
