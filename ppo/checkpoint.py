"""Checkpoints: written atomically, read without executing code from the file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from torch import nn

from ppo.config import Config, to_config
from ppo.errors import ConfigError
from ppo.networks import Policy, describe_action_space, make_actor
from ppo.normalize import Normalizer
from ppo.precision import choose_precision
from ppo.rundir import CHECKPOINT_FILE



def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` through a temporary file and a rename, so that a crash while
    writing leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """The state saved by :func:`save_checkpoint`. ``path`` is a checkpoint file or a run dir
    (then its ``checkpoints/last.pt``). Tensors, numbers and strings only: no pickled code runs."""
    path = checkpoint_path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint={str(path)!r} is not allowed: no such file")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise ConfigError(f"checkpoint={str(path)!r} is not allowed: not a readable checkpoint "
                          f"({_load_error_reason(err)})") from None


def _load_error_reason(err: Exception) -> str:
    """torch's reason for refusing a file, in a few words: its weights-only errors run to a dozen lines
    that suggest loading the file unsafely, which this project never does."""
    if isinstance(err, EOFError):
        return "empty or cut short"
    text = str(err)
    found = re.search(r"WeightsUnpickler error:\s*(.*?)(?:\. Please|\n\n|$)", text, re.S)
    if found:
        text = "refused by the weights-only loader: " + found.group(1)
    return " ".join(text.split()) or type(err).__name__


def checkpoint_path(path: str | Path) -> Path:
    """The checkpoint file that ``path`` names: itself, or a run dir's ``checkpoints/last.pt``."""
    path = Path(path)
    return path / CHECKPOINT_FILE if path.is_dir() else path


def load_policy(path: str | Path, device: str | torch.device = "cpu",
                config: Config | None = None) -> tuple[Policy, Config]:
    """The trained policy of a checkpoint (or run dir): its actor in eval mode with the observation
    statistics and the precision (``device.precision``) it was trained with; and the run's config.

    ``config`` (default: the one saved in the checkpoint) is the run the actor must fit: a checkpoint
    of another env or network shape raises :class:`ConfigError` naming the mismatch."""
    return policy_from_checkpoint(load_checkpoint(path, device), str(checkpoint_path(path)), device, config)


def policy_from_checkpoint(state: dict, source: str, device: str | torch.device = "cpu",
                           config: Config | None = None) -> tuple[Policy, Config]:
    """:func:`load_policy` for a checkpoint already loaded from ``source``."""
    require_fields(state, POLICY_FIELDS, source, "loaded as a policy")
    config = config or to_config(state["config"])
    saved_env = state["config"]["env"]["id"]
    if saved_env != config.env.id:
        raise ConfigError(f"checkpoint={source!r} does not fit this run: it was trained on {saved_env}, "
                          f"the run's env.id is {config.env.id}")
    obs_shape = tuple(state["obs_shape"])
    actor = make_actor(obs_shape, state["action_space"], config.network).to(device)
    load_weights(actor, state["actor"], "actor", source)
    # The actor sees observations as it was trained to: normalized exactly when the checkpoint holds statistics.
    statistics = state["normalizer"]
    normalizer = Normalizer(obs_shape[0], num_envs=1, normalize_observations="observations" in statistics,
                            clip_observations=config.env.clip_observations)
    normalizer.load_state_dict(statistics)
    # the precision the run trained in: device.precision chosen again, on this machine, as the run chose it
    precision = choose_precision(config.device.precision, torch.device(device), config.network.type)
    return Policy(actor.eval(), normalizer, precision), config


def describe_obs_shape(shape: tuple[int, ...]) -> str:
    """``4 observations`` for a vector, ``(4, 84, 84) images`` for images: a shape in words, for messages."""
    return f"{shape[0]} observations" if len(shape) == 1 else f"{shape} images"


POLICY_FIELDS = ("actor", "config", "obs_shape", "action_space", "normalizer")
"""What a checkpoint must hold to be loaded as a policy."""


def require_fields(state: dict, fields, source: str, purpose: str) -> None:
    """Raise :class:`ConfigError` naming the fields ``state`` lacks (a file of another format)."""
    missing = [name for name in fields if name not in state]
    if missing:
        raise ConfigError(f"checkpoint={source!r} cannot be {purpose}: it lacks {', '.join(missing)} "
                          "(not a checkpoint of this version of ppo)")


def check_spaces(state: dict, obs_shape: int | tuple[int, ...], action_spec: dict, env_id: str, source: str) -> None:
    """Raise :class:`ConfigError` unless the checkpoint was saved for observations of ``obs_shape``
    (an int: a vector's length) and the action space ``action_spec``."""
    obs_shape = (obs_shape,) if isinstance(obs_shape, int) else tuple(obs_shape)
    saved_shape, saved_spec = tuple(state["obs_shape"]), state["action_space"]
    if (saved_shape, saved_spec) != (obs_shape, action_spec):
        raise ConfigError(
            f"checkpoint={source!r} does not fit this run: it was saved for {describe_obs_shape(saved_shape)} and "
            f"{describe_action_space(saved_spec)} actions ({state['config']['env']['id']}), env.id={env_id!r} "
            f"has {obs_shape[0] if len(obs_shape) == 1 else describe_obs_shape(obs_shape)} and "
            f"{describe_action_space(action_spec)}")


def load_weights(module: nn.Module, saved: dict, name: str, source: str) -> None:
    """``module.load_state_dict(saved)`` after checking that every tensor is there with its shape:
    a mismatch is a :class:`ConfigError` naming the tensor and both shapes, not a torch traceback."""
    expected = module.state_dict()
    if saved.keys() != expected.keys():
        raise ConfigError(f"checkpoint={source!r} does not fit this network: its {name} has the tensors "
                          f"{sorted(saved)}, this network (network.type, network.hidden_sizes) needs "
                          f"{sorted(expected)}")
    for key, tensor in expected.items():
        if saved[key].shape != tensor.shape:
            raise ConfigError(f"checkpoint={source!r} does not fit this network: {name} {key} has shape "
                              f"{tuple(saved[key].shape)} in the checkpoint, {tuple(tensor.shape)} here "
                              "(different network.hidden_sizes, network.type or env?)")
    module.load_state_dict(saved)
