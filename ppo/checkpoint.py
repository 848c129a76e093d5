"""Checkpoints: written atomically, read without executing code from the file."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ppo.config import Config, ConfigError, to_config
from ppo.networks import Actor

CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"


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
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_DIR / LAST
    if not path.is_file():
        raise ConfigError(f"checkpoint={str(path)!r} is not allowed: no such file")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise ConfigError(f"checkpoint={str(path)!r} is not allowed: not a readable checkpoint ({err})") from None


def load_policy(path: str | Path, device: str | torch.device = "cpu") -> tuple[Actor, Config]:
    """The trained actor of a checkpoint (or run dir), in eval mode, and the run's config."""
    state = load_checkpoint(path, device)
    config = to_config(state["config"])
    actor = Actor(state["obs_dim"], state["n_actions"], config.network).to(device)
    actor.load_state_dict(state["actor"])
    return actor.eval(), config
