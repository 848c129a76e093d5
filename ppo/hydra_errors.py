"""One-line messages for the config errors that Hydra finds while it composes ``python -m ppo.run``.

Hydra reports a wrong type, a misspelt key or an unknown preset in five to ten lines (the OmegaConf
node's ``reference_type``, the config search path, a hint about ``HYDRA_FULL_ERROR``) and exits 1.
:func:`install` makes those errors print like the range checks of :mod:`ppo.config`::

    error: agent.n_epochs=abc is not allowed: an integer
    error: agent.polcy_clip is not a config key; did you mean agent.policy_clip?
    error: env=nope is not allowed: no such preset; the presets of env are acrobot, cartpole

and exit 2. Every other error (a bug in the task, say) keeps Hydra's own report, and
``HYDRA_FULL_ERROR=1`` still gives the full stack trace.

Hydra has no public hook for this: :func:`install` wraps ``hydra._internal.utils.run_and_report``,
the function through which Hydra 1.3 runs composition and reports its errors. If a later Hydra
moves it, nothing is wrapped and Hydra's own (multi-line, traceback-free) messages remain.
"""

from __future__ import annotations

import os
import re
import sys

from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

from ppo.config import expected_type, unknown_key_message

CONFIG_ERROR_STATUS = 2  # the exit status of every config error, as ppo.run's range checks


def install() -> None:
    """Route the config errors of Hydra's composition through :func:`one_line`."""
    try:
        import hydra._internal.utils as hydra_utils

        report = hydra_utils.run_and_report
    except (ImportError, AttributeError):
        return
    if getattr(report, "one_line_config_errors", False):
        return

    def run_and_report(func):
        def composed():
            try:
                return func()
            except (ConfigCompositionException, OverrideParseException) as err:
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                print(f"error: {one_line(err)}", file=sys.stderr)
                sys.exit(CONFIG_ERROR_STATUS)

        return report(composed)

    run_and_report.one_line_config_errors = True
    hydra_utils.run_and_report = run_and_report


def one_line(err: Exception) -> str:
    """Hydra's composition error as one line that names the key (or the override) and what is allowed."""
    cause = err.__cause__
    if isinstance(err, MissingConfigException) and err.options is not None and err.missing_cfg_file:
        group, _, option = err.missing_cfg_file.rpartition("/")
        return (f"{group}={option} is not allowed: no such preset; "
                f"the presets of {group} are {', '.join(sorted(err.options))}")
    if isinstance(err, OverrideParseException):
        return f"{err.override} is not a valid override: {_lines(err.message)}"
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and cause.full_key:
        return unknown_key_message(cause.full_key)
    merging = re.match(r"Error merging override (\+{0,2})([^=]+)=(.*)", str(err))
    if merging and isinstance(cause, ValidationError):
        _, key, value = merging.groups()
        allowed = expected_type(key) or _lines(str(cause).splitlines()[0])
        return f"{key}={value} is not allowed: {allowed}"
    return _lines(str(err)) + (f" ({_lines(str(cause).splitlines()[0])})" if cause else "")


def _lines(text: str) -> str:
    """Hydra's message lines joined into one."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
