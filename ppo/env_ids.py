"""Which env ids can be made here: gymnasium's registry, the ids that optional packages (ale-py,
MinAtar) register when imported, and gymnasium's ``module:Id``, an id that importing ``module``
registers (your own env). Imports nothing of ppo, so that the config's check of ``env.id`` needs no
module that imports the config."""

from __future__ import annotations

import difflib
import importlib
import sys

OPTIONAL_ENVS = {"ALE/": ("ale_py", "atari"), "MinAtar/": ("minatar", "minatar")}
"""The ids that an optional extra registers: id prefix -> (module, extra)."""

_REGISTERED_BY: dict[str, list[str]] = {}
"""The ids that importing each module of a ``module:Id`` registered, for the modules that
:func:`resolve_env_id` imported."""


def resolve_env_id(env_id: str) -> str:
    """The id under which gymnasium's registry holds ``env_id``: for ``module:Id``, ``Id``, after
    importing ``module``, which registers it; any other id as it is. ``gymnasium.make`` imports the
    module itself, but ``gymnasium.spec`` and the registry do not, and a fresh process (resuming,
    evaluating, a sweep's worker) has not imported it yet. Raises whatever importing the module raises."""
    import gymnasium as gym  # here, not at import: a config that is never built needs no gymnasium

    module, sep, name = env_id.partition(":")
    if not sep:
        return env_id
    if module not in sys.modules:
        before = set(gym.registry)
        importlib.import_module(module)
        _REGISTERED_BY[module] = sorted(set(gym.registry) - before)
    return name


def env_id_problem(env_id: str) -> str | None:
    """None where gymnasium can make ``env_id`` (after importing the module of a ``module:Id``, or
    registering the ids of the optional package that provides it); else why not, as the rest of a
    sentence that begins ``env.id='<id>'``."""
    import gymnasium as gym

    if ":" in env_id:
        return _module_env_id_problem(env_id)
    if env_id in gym.registry:
        return None
    missing = register_optional_envs(env_id)
    if missing or env_id in gym.registry:
        return missing
    close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see gymnasium.pprint_registry()"
    return f"is not a registered gymnasium environment{hint}"


def _module_env_id_problem(env_id: str) -> str | None:
    """:func:`env_id_problem` for a ``module:Id``: the module cannot be imported, or did not register ``Id``."""
    import gymnasium as gym

    module = env_id.partition(":")[0]
    try:
        name = resolve_env_id(env_id)
    except Exception as err:  # the module's own code runs: any error in it means it cannot be imported
        reason = str(err) if isinstance(err, ImportError) else f"{type(err).__name__}: {err}"
        return f"is not allowed: cannot import module {module!r} ({' '.join(reason.split())})"
    if name in gym.registry:
        return None
    registered = _REGISTERED_BY.get(module)
    if registered is None:  # imported before ppo looked at it: what it registered is unknown
        close = difflib.get_close_matches(name, list(gym.registry), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"is not allowed: module {module!r} is imported, but {name} is not registered{hint}"
    if not registered:
        return (f"is not allowed: module {module!r} registers no gymnasium environment; it should call "
                f"gymnasium.register({name!r}, entry_point=...) when imported")
    return f"is not allowed: module {module!r} registers {', '.join(registered)}, not {name}"


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
