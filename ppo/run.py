"""``python -m ppo.run``: compose the config with Hydra, train, return the sweep metric.

A thin shim around :func:`ppo.train.train`, which knows nothing of Hydra. Around it, each run
records its hyperparameters and results for TensorBoard's HParams tab (:mod:`ppo.dashboard`), and
in a sweep a run that raises is recorded and the sweep goes on (:mod:`ppo.sweep`).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from ppo.config import ConfigError, register_configs, to_config
from ppo.sweep import clear_failure, record_failure

log = logging.getLogger("ppo")


def _resource_dir(name: str) -> Path:
    """``conf/`` or ``experiments/``: beside the package in a source checkout, inside it when installed."""
    package_dir = Path(__file__).resolve().parent
    installed = package_dir / name
    return installed if installed.is_dir() else package_dir.parent / name


CONF_DIR = _resource_dir("conf")
EXPERIMENTS_DIR = _resource_dir("experiments")


def register_experiments() -> None:
    """Each ``experiments/<name>.yaml`` becomes ``+experiment=<name>``: a global override bundle."""
    store = ConfigStore.instance()
    for path in sorted(EXPERIMENTS_DIR.glob("*.yaml")):
        store.store(group="experiment", name=path.stem, node=OmegaConf.load(path), package="_global_")


def local_cpu_count() -> int:
    """CPU cores this process may run on (what joblib's ``n_jobs=-1`` uses, short of cgroup quotas)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


register_configs()
register_experiments()
# ${ppo.cpu_count:} in configs, e.g. the Optuna sweeper's batch of parallel trials.
OmegaConf.register_new_resolver("ppo.cpu_count", local_cpu_count, replace=True)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Train one run. Returns its final greedy score, the metric a sweeper optimizes; in a sweep,
    a run that raises returns None instead and leaves ``failed.json`` (see :mod:`ppo.sweep`)."""
    # torch, gymnasium and tensorboard load after Hydra has parsed the command line
    from ppo.dashboard import hparams_of, record_run_end, record_run_start
    from ppo.train import train

    hydra_config = HydraConfig.get()
    run_dir = Path(hydra_config.runtime.output_dir)
    in_sweep = hydra_config.mode == RunMode.MULTIRUN
    if in_sweep:
        clear_failure(run_dir)
    hparams = hparams_of(cfg)
    overridden = [override.split("=", 1)[0].lstrip("+~") for override in hydra_config.overrides.task]
    started = False
    try:
        config = to_config(cfg)
        record_run_start(run_dir, hparams, overridden)
        started = True
        metrics = train(config, run_dir)
    except Exception as err:
        if in_sweep:  # one failed run must not stop the sweep: record it, let the sweeper go on
            record_failure(run_dir, list(hydra_config.overrides.task), err)
            if not started:
                record_run_start(run_dir, hparams, overridden)
            record_run_end(run_dir, None)
            return None
        if isinstance(err, ConfigError):
            _remove_if_empty_run(run_dir)
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        if started:
            record_run_end(run_dir, None)  # the HParams tab shows the run as failed
        raise
    record_run_end(run_dir, metrics)
    log.info("Final greedy score %.1f | logs: tensorboard --logdir %s | checkpoint: %s",
             metrics["final_score"], run_dir, run_dir / "checkpoints" / "last.pt")
    return metrics["final_score"]


def _remove_if_empty_run(run_dir: Path) -> None:
    """A run stopped by a config error leaves no directory that looks like a real run: drop the
    dir Hydra made for it if it holds only Hydra's own files."""
    hydra_files = {".hydra", "run.log", f"{HydraConfig.get().job.name}.log"}
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= hydra_files:
        shutil.rmtree(run_dir)


if __name__ == "__main__":
    main()
