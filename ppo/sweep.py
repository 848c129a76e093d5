"""Sweeps that survive their failed runs.

In a sweep (``python -m ppo.run -m ...``) a run that raises, from a value the config checks reject
to a crash mid-training, must not take the other runs down with it. ``ppo.run`` therefore catches
the error of a swept run, logs it with the run's overrides, writes ``failed.json`` into the run
directory and returns ``None`` to the sweeper: Hydra's basic sweeper ignores the value, and the
Optuna sweeper marks the trial failed and goes on sampling. Once every run is done,
:class:`SweepSummary` (a Hydra callback in ``conf/config.yaml``) lists the failed runs with their
overrides and ends the command with exit status 1; the finished runs' results stay where they are.

Each run of a sweep is named by the values of the keys that this sweep sweeps, and only those:
``policy_clip=0.1,gae_lambda=0.9,batch_size=32,seed=1`` (``hydra.sweep.subdir`` in ``conf/config.yaml``
resolves through :func:`sweep_run_name`), so TensorBoard lists runs by what differs between them.
:func:`swept_keys` tells a run which keys those are, e.g. to mark them in the HParams tab.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from ppo.errors import ConfigError
from ppo.rundir import FAILED_FILE, SEED_KEY, SWEEP_CONFIG

log = logging.getLogger("ppo.sweep")

def record_failure(run_dir: str | Path, overrides: list[str], error: BaseException) -> dict[str, Any]:
    """Write ``failed.json`` for a run that raised ``error``, and log it with its overrides."""
    record = {
        "overrides": list(overrides),
        "error": f"{type(error).__name__}: {error}",
        "traceback": "".join(traceback.format_exception(error)),
        "time": time.time(),
    }
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / FAILED_FILE).write_text(json.dumps(record, indent=2) + "\n")
    if isinstance(error, ConfigError):  # the message says it all
        log.error("Run failed [%s]: %s", " ".join(overrides), record["error"])
    else:
        log.error("Run failed [%s]: %s\n%s", " ".join(overrides), record["error"], record["traceback"])
    return record


def clear_failure(run_dir: str | Path) -> None:
    """Forget the failure of an earlier run in the same directory (a sweep run again)."""
    (Path(run_dir) / FAILED_FILE).unlink(missing_ok=True)


def find_failures(sweep_dir: str | Path, since: float = 0.0) -> list[tuple[Path, dict[str, Any]]]:
    """``(run dir, failed.json contents)`` of the runs under ``sweep_dir`` that failed at or after
    ``since`` (a ``time.time()``), in path order."""
    failures = []
    for path in sorted(Path(sweep_dir).rglob(FAILED_FILE)):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if record.get("time", 0.0) >= since:
            failures.append((path.parent, record))
    return failures


class SweepSummary(Callback):
    """At the end of a sweep: where it is, how to look at it, and which runs failed (exit status 1
    if any did)."""

    def __init__(self) -> None:
        self.start_time = time.time()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Save the sweep's config where :func:`swept_keys` reads it, before any job starts: Hydra's
        basic sweeper writes the same ``multirun.yaml`` (again) itself, the Optuna sweeper does not."""
        self.start_time = time.time()
        sweep_dir = Path(str(config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(config, sweep_dir / SWEEP_CONFIG)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir).resolve()
        log.info("Sweep done: %s\n  report:      python -m ppo.report %s\n  tensorboard: tensorboard --logdir %s",
                 sweep_dir, sweep_dir, sweep_dir)
        failures = find_failures(sweep_dir, since=self.start_time)
        if not failures:
            return
        lines = [f"  [{' '.join(record['overrides'])}] {record['error'].splitlines()[0]}  ({run_dir / FAILED_FILE})"
                 for run_dir, record in failures]
        log.error("%d run(s) failed; the others' results are kept:\n%s", len(failures), "\n".join(lines))
        sys.exit(1)


# --------------------------------------------------------------------------------------------
# Run names
# --------------------------------------------------------------------------------------------

SAMPLED_DIGITS = 3
"""Significant digits of a value drawn from an interval (``interval(0.05, 0.4)``) in a run name."""


def swept_keys(sweep_dir: str | Path) -> list[str]:
    """The keys that the sweep in ``sweep_dir`` gives more than one value, as full keys or group names
    (``agent.policy_clip``, ``env``) in the order of the sweep's definition, ``seed`` last: first
    ``hydra.sweeper.params``, then the command line. Keys that are the same in every run of the sweep
    (``train.total_timesteps=1024``, ``seed=1,1``) are not among them. Empty where ``sweep_dir`` holds
    no ``multirun.yaml``."""
    return list(_read_sweep(sweep_dir)[0])


def sweep_run_name(sweep_dir: str | Path, job_overrides: Sequence[str], job_num: int) -> str:
    """The directory name of one run of a sweep: ``policy_clip=0.1,gae_lambda=0.9,batch_size=32,seed=1``.

    The values are this run's (``job_overrides``: its ``hydra.overrides.task``) of the keys that
    :func:`swept_keys` lists, each under its leaf name (``policy_clip``) where no other swept key
    shares it, else under its full key. Names stay
    unique where the sweeper draws values instead of listing them (Optuna), or a list repeats a value:
    there a value drawn from an interval is rounded to 3 significant digits and the name ends with
    Hydra's job number, ``job=N``. A sweep without swept keys names its runs ``job=N``."""
    swept, listed_once = _read_sweep(sweep_dir)
    values = {override.key_or_group: override for override in parse_overrides(job_overrides) if not override.is_delete()}
    leaves = [key.rpartition(".")[2] for key in swept]
    parts = []
    for (key, sweep), leaf in zip(swept.items(), leaves):
        if key not in values:
            continue
        value = values[key].value()
        if isinstance(sweep.value(), IntervalSweep) and isinstance(value, float):
            text = f"{value:.{SAMPLED_DIGITS}g}"
        else:
            text = value if isinstance(value, str) else values[key].get_value_element_as_str()
        parts.append(f"{leaf if leaves.count(leaf) == 1 else key}={text}".replace("/", "_"))
    if not parts or not listed_once:
        parts.append(f"job={job_num}")
    return ",".join(parts)


def _read_sweep(sweep_dir: str | Path) -> tuple[dict[str, Override], bool]:
    """From the sweep's ``multirun.yaml``: its sweep overrides that give more than one value, by key in
    :func:`swept_keys`' order, and whether those values alone tell its runs apart (the sweeper runs each
    combination of listed values once, as Hydra's basic sweeper does, and no list repeats a value)."""
    path = Path(sweep_dir) / SWEEP_CONFIG
    if not path.is_file():
        return {}, False
    config = OmegaConf.load(path)
    params = OmegaConf.select(config, "hydra.sweeper.params")
    params = {} if params is None else OmegaConf.to_container(params, resolve=False)  # as written
    defined = [f"{key}={value}" for key, value in params.items()]
    defined += list(OmegaConf.select(config, "hydra.overrides.task") or [])
    overrides = parse_overrides(defined)
    swept = {}
    for override in overrides:
        swept.pop(override.key_or_group, None)  # a key defined twice: the last definition counts, as in Hydra
        if override.is_sweep_override() and _value_count(override) > 1:
            swept[override.key_or_group] = override
    if SEED_KEY in swept:
        swept[SEED_KEY] = swept.pop(SEED_KEY)
    keys = [override.key_or_group for override in overrides]
    sweeps = [override for override in overrides if override.is_sweep_override()]
    listed_once = (OmegaConf.select(config, "hydra.runtime.choices.hydra/sweeper") == "basic"
                   and all(keys.count(sweep.key_or_group) == 1 for sweep in sweeps)
                   and all(not isinstance(sweep.value(), ChoiceSweep) or len(sweep.value().list) == _value_count(sweep)
                           for sweep in sweeps))
    return swept, listed_once


def parse_overrides(overrides: Sequence[str]) -> list[Override]:
    """Hydra's overrides (``agent.lr=1e-3``, ``seed=1,2``) parsed by Hydra's own parser, skipping any
    that do not parse (the sweeper has refused those already)."""
    parser = OverridesParser.create()
    parsed = []
    for override in overrides:
        try:
            parsed += parser.parse_overrides([str(override)])
        except HydraException:
            continue
    return parsed


def _value_count(sweep: Override) -> float:
    """How many distinct values a sweep override gives: ``inf`` for an interval; 2 for a glob over a
    group's presets, which cannot be listed without the config search path."""
    value = sweep.value()
    if isinstance(value, ChoiceSweep):
        return len({str(element) for element in value.list})
    if isinstance(value, RangeSweep):
        return max(0, math.ceil((value.stop - value.start) / value.step)) if value.step else 0
    if isinstance(value, IntervalSweep):
        return math.inf
    return 2
