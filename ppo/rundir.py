"""What a run directory holds, by name: the one place that the trainer, ``ppo.run``, the sweep
tools, ``ppo.evaluate``, ``ppo.report`` and the benchmarks read these names from.

    <run dir>/
      .hydra/overrides.yaml   the command line's overrides (Hydra's record of the run)
      checkpoints/last.pt     the newest checkpoint (CHECKPOINT_FILE)
      metrics.json            written when the run finishes (METRICS_FILE)
      failed.json             written when a run of a sweep raised (FAILED_FILE)
      events.out.tfevents.*   TensorBoard (EVENT_FILES)
    <sweep dir>/multirun.yaml the sweep's composed config, with its command's overrides (SWEEP_CONFIG)
    <sweep dir>/.sweep.lock   held by the command that runs the sweep (SWEEP_LOCK)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.pt"
CHECKPOINT_FILE = Path(CHECKPOINT_DIR) / LAST_CHECKPOINT
METRICS_FILE = "metrics.json"
FAILED_FILE = "failed.json"
SWEEP_CONFIG = "multirun.yaml"
SWEEP_LOCK = ".sweep.lock"
"""Locked (``flock``) by the command that runs the sweep, for the sweep's life: a second command on
the same sweep dir is refused, and the operating system releases the lock when its holder dies."""
EVENT_FILES = "events.out.tfevents.*"
SEED_KEY = "seed"
"""The override that names a run's seed (``seed=3``): the sweep's name puts it last, the report pools over it."""


def write_json(path: str | Path, data: dict) -> None:
    """``data`` as strict JSON (no NaN) into ``path``, atomically: a reader sees the old file or the
    whole new one, never a part (written beside it, then renamed over it)."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    os.replace(partial, path)


def read_metrics(run_dir: str | Path) -> dict | None:
    """A run's ``metrics.json``; None where there is none, or where it cannot be read as JSON (a run
    that did not finish)."""
    try:
        return json.loads((Path(run_dir) / METRICS_FILE).read_text())
    except (OSError, ValueError):
        return None
