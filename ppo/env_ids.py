"""Which env ids can be made here: gymnasium's registry, and the ids that optional packages
(ale-py, MinAtar) register when imported. Imports nothing of ppo, so that the config's check of
``env.id`` needs no module that imports the config."""

from __future__ import annotations

import difflib
import importlib

OPTIONAL_ENVS = {"ALE/": ("ale_py", "atari"), "MinAtar/": ("minatar", "minatar")}
"""The ids that an optional extra registers: id prefix -> (module, extra)."""


def env_id_problem(env_id: str) -> str | None:
    """None where gymnasium can make ``env_id`` (after registering the ids of the optional package
    that provides it); else why not, as the rest of a sentence that begins ``env.id='<id>'``."""
    import gymnasium as gym  # here, not at import: a config that is never built needs no gymnasium

    if env_id in gym.registry:
        return None
    missing = register_optional_envs(env_id)
    if missing or env_id in gym.registry:
        return missing
    close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see gymnasium.pprint_registry()"
    return f"is not a registered gymnasium environment{hint}"


def register_optional_envs(env_id: str) -> str | None:
    """Register the ids of the optional package that provides ``env_id`` (``ALE/...``: ale-py,
    ``MinAtar/...``: minatar), which gymnasium does not know until that package registers them.
    Returns None, or, when the package is missing, which extra to install (the rest of a sentence
    that begins ``env.id='<id>'``). Other ids: nothing to do."""
    import gymnasium as gym

    for prefix, (module, extra) in OPTIONAL_ENVS.items():
        if not env_id.startswith(prefix):
            continue
        try:
            package = importlib.import_module(module)
        except ImportError:
            return f'is not available here: it needs {module}; install it with pip install "ppo[{extra}]"'
        if module == "ale_py":
            gym.register_envs(package)  # importing ale_py registers the ALE/ ids; this keeps the import used
        elif not any(name.startswith(prefix) for name in gym.registry):
            importlib.import_module("minatar.gym").register_envs()
    return None
