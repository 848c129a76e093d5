"""Sweeps that survive their failed runs.

In a sweep (``python -m ppo.run -m ...``) a run that raises, from a value the config checks reject
to a crash mid-training, must not take the other runs down with it. ``ppo.run`` therefore catches
the error of a swept run, logs it with the run's overrides, writes ``failed.json`` into the run
directory and returns ``None`` to the sweeper: Hydra's basic sweeper ignores the value, and the
Optuna sweeper marks the trial failed and goes on sampling. Once every run is done,
:class:`SweepSummary` (a Hydra callback in ``conf/config.yaml``) lists the failed runs with their
overrides and ends the command with exit status 1; the finished runs' results stay where they are.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ppo.config import ConfigError

log = logging.getLogger("ppo.sweep")

FAILED = "failed.json"
"""Written into a run directory whose run raised: overrides, error, traceback."""


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
    (run_dir / FAILED).write_text(json.dumps(record, indent=2) + "\n")
    if isinstance(error, ConfigError):  # the message says it all
        log.error("Run failed [%s]: %s", " ".join(overrides), record["error"])
    else:
        log.error("Run failed [%s]: %s\n%s", " ".join(overrides), record["error"], record["traceback"])
    return record


def clear_failure(run_dir: str | Path) -> None:
    """Forget the failure of an earlier run in the same directory (a sweep run again)."""
    (Path(run_dir) / FAILED).unlink(missing_ok=True)


def find_failures(sweep_dir: str | Path, since: float = 0.0) -> list[tuple[Path, dict[str, Any]]]:
    """``(run dir, failed.json contents)`` of the runs under ``sweep_dir`` that failed at or after
    ``since`` (a ``time.time()``), in path order."""
    failures = []
    for path in sorted(Path(sweep_dir).rglob(FAILED)):
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
        self.start_time = time.time()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir).resolve()
        log.info("Sweep done: %s\n  report:      python -m ppo.report %s\n  tensorboard: tensorboard --logdir %s",
                 sweep_dir, sweep_dir, sweep_dir)
        failures = find_failures(sweep_dir, since=self.start_time)
        if not failures:
            return
        lines = [f"  [{' '.join(record['overrides'])}] {record['error'].splitlines()[0]}  ({run_dir / FAILED})"
                 for run_dir, record in failures]
        log.error("%d run(s) failed; the others' results are kept:\n%s", len(failures), "\n".join(lines))
        sys.exit(1)
