"""``python -m ppo.run``: compose the config with Hydra, train, return the sweep metric.

A thin shim around :func:`ppo.train.train`, which knows nothing of Hydra. Around it, each run
records its hyperparameters and results for TensorBoard's HParams tab (:mod:`ppo.dashboard`), and
in a sweep a run that raises is recorded and the sweep goes on (:mod:`ppo.sweep`).

The exit status of a single run: 0 for a finished run, 2 for a config error (one line on stderr,
no run dir left), 3 for a run whose training diverged (its last good checkpoint kept), 130 or 143
for a run stopped by SIGINT or SIGTERM (checkpoint saved; ``python -m ppo.run resume=<run dir>``
continues it). A sweep exits 1 at its end if any of its runs failed.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from ppo import hydra_errors
from ppo.config import Config, ConfigError, TrainingDiverged, register_configs, to_config
from ppo.sweep import clear_failure, record_failure

log = logging.getLogger("ppo")


def _conf_dir() -> Path:
    """``conf/``: beside the package in a source checkout, inside it when installed."""
    package_dir = Path(__file__).resolve().parent
    installed = package_dir / "conf"
    return installed if installed.is_dir() else package_dir.parent / "conf"


CONF_DIR = _conf_dir()


def local_cpu_count() -> int:
    """CPU cores this process may run on (what joblib's ``n_jobs=-1`` uses, short of cgroup quotas)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


register_configs()
# ${ppo.cpu_count:} in configs, e.g. the Optuna sweeper's batch of parallel trials.
OmegaConf.register_new_resolver("ppo.cpu_count", local_cpu_count, replace=True)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Train one run. Returns its final greedy score, the metric a sweeper optimizes; in a sweep,
    a run that raises returns None instead and leaves ``failed.json`` (see :mod:`ppo.sweep`)."""
    hydra_config = HydraConfig.get()
    hydra_dir = run_dir = Path(hydra_config.runtime.output_dir)
    in_sweep = hydra_config.mode == RunMode.MULTIRUN
    if in_sweep:
        clear_failure(run_dir)
    overridden = overridden_keys()
    started = False
    try:
        config = to_config(cfg)
        resume = config.resume is not None
        if resume:
            config, run_dir = resumed_run(config, hydra_dir)
        # torch, gymnasium and tensorboard load once the config is known to be valid
        from ppo.dashboard import hparams_of, record_run_end, record_run_start
        from ppo.train import train

        if not resume:  # a resumed run recorded its start the first time
            record_run_start(run_dir, hparams_of(cfg), overridden)
        started = True
        metrics = train(config, run_dir, resume=resume)
    except Exception as err:
        if in_sweep:  # one failed run must not stop the sweep: record it, let the sweeper go on
            from ppo.dashboard import hparams_of, record_run_end, record_run_start

            record_failure(run_dir, list(hydra_config.overrides.task), err)
            if not started:
                record_run_start(run_dir, hparams_of(cfg), overridden)
            record_run_end(run_dir, None)
            return None
        if started and not isinstance(err, ConfigError):
            record_run_end(run_dir, None)  # the HParams tab shows the run as failed
        if not isinstance(err, (ConfigError, TrainingDiverged)):
            raise
        if isinstance(err, ConfigError):
            _remove_if_empty_run(hydra_dir)
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2 if isinstance(err, ConfigError) else 3)
    except KeyboardInterrupt:  # Ctrl-C before or after the training loop, which handles its own
        _remove_if_empty_run(hydra_dir)
        print("error: interrupted", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    if "interrupted" in metrics:  # stopped by a signal with a checkpoint saved: a failing status
        sys.exit(128 + getattr(signal, metrics["interrupted"]))
    record_run_end(run_dir, metrics)
    log.info("Final greedy score %.1f | logs: tensorboard --logdir %s | checkpoint: %s",
             metrics["final_score"], run_dir, run_dir / "checkpoints" / "last.pt")
    return metrics["final_score"]


def overridden_keys() -> list[str]:
    """The config keys this command line overrides (``+agent.x=1`` and ``~agent.x`` give ``agent.x``)."""
    return [override.split("=", 1)[0].lstrip("+~") for override in HydraConfig.get().overrides.task]


RESUME_OVERRIDES = ("resume", "train.total_timesteps", "train.progress")


def resumed_run(config: Config, hydra_dir: Path) -> tuple[Config, Path]:
    """``resume=DIR``: the config saved in DIR's checkpoint and DIR itself, where the run goes on.

    Hydra has already made a fresh run dir for this command; it would hold nothing but a copy of
    Hydra's files, so it is removed and the log goes on in DIR's ``run.log``. Only the keys in
    :data:`RESUME_OVERRIDES` may be given with ``resume``, and the budget may only grow."""
    run_dir = Path(config.resume).expanduser().resolve()
    if not run_dir.is_dir():
        raise ConfigError(f"resume={config.resume!r} is not allowed: no such run directory")
    from ppo.checkpoint import load_checkpoint  # torch

    try:
        saved = to_config(load_checkpoint(run_dir)["config"])
    except ConfigError as err:  # "checkpoint='DIR/checkpoints/last.pt' is not allowed: no such file", say
        reason = str(err).split(" is not allowed: ", 1)[-1]
        raise ConfigError(f"resume={config.resume!r} is not allowed: checkpoints/last.pt: {reason}") from None
    given = overridden_keys()
    refused = [key for key in given if key not in RESUME_OVERRIDES]
    if refused:
        raise ConfigError(f"resume={config.resume!r} is not allowed with {', '.join(refused)}: a resumed run keeps "
                          f"its saved config; only {', '.join(RESUME_OVERRIDES[1:])} may be given")
    if "train.total_timesteps" in given:
        if config.train.total_timesteps < saved.train.total_timesteps:
            raise ConfigError(f"train.total_timesteps={config.train.total_timesteps} is not allowed with resume: "
                              f"at least the run's {saved.train.total_timesteps}")
        saved.train.total_timesteps = config.train.total_timesteps
    if "train.progress" in given:
        saved.train.progress = config.train.progress
    if run_dir != hydra_dir.resolve():
        _move_log_files(hydra_dir, run_dir)
        _remove_if_empty_run(hydra_dir)
    (run_dir / ".hydra").mkdir(exist_ok=True)
    OmegaConf.save(OmegaConf.structured(saved), run_dir / ".hydra" / "config.yaml")  # the budget, if it grew
    return saved, run_dir


def _move_log_files(old_dir: Path, new_dir: Path) -> None:
    """Point the file handlers of Hydra's job logging from ``old_dir`` to the same files in ``new_dir``
    (appended to)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == old_dir.resolve():
            handler.close()
            handler.baseFilename = str(new_dir / Path(handler.baseFilename).name)
            handler.mode = "a"


def _remove_if_empty_run(run_dir: Path) -> None:
    """A run stopped by a config error leaves no directory that looks like a real run: drop the
    dir Hydra made for it if it holds only Hydra's own files and the HParams record of its start
    (an env found unfit only when built is a config error found after that record)."""
    hydra_files = {".hydra", "run.log", f"{HydraConfig.get().job.name}.log"}
    if run_dir.is_dir() and all(p.name in hydra_files or p.name.startswith("events.out.tfevents.")
                                for p in run_dir.iterdir()):
        shutil.rmtree(run_dir)
        cwd = Path(HydraConfig.get().runtime.cwd)
        for parent in run_dir.parents:  # and outputs/<date>/, outputs/ if this run was all they held
            if cwd not in parent.parents or any(parent.iterdir()):
                break
            parent.rmdir()


if __name__ == "__main__":
    hydra_errors.install()  # Hydra's composition errors in one line, like the range checks
    main()
