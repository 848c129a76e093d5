"""``python -m ppo.run``: compose the config with Hydra, train, return the sweep metric.

A thin shim around :func:`ppo.train.train`, which knows nothing of Hydra. Its exit status: 0 for a
finished run, 2 for a config error (one line on stderr, no run dir left), 3 for a run whose
training diverged (its last good checkpoint kept), 130 or 143 for a run stopped by SIGINT or SIGTERM
(checkpoint saved; ``python -m ppo.run resume=<run dir>`` continues it).
"""

from __future__ import annotations

import logging
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


register_configs()
register_experiments()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> float:
    hydra_dir = run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        config = to_config(cfg)
        resume = config.resume is not None
        if resume:
            config, run_dir = resumed_run(config, hydra_dir)
        from ppo.train import train  # torch loads once the config is known to be valid

        metrics = train(config, run_dir, resume=resume)
    except (ConfigError, TrainingDiverged) as err:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # the launcher reports the failed job with its overrides
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
    log.info("Final greedy score %.1f | logs: tensorboard --logdir %s | checkpoint: %s",
             metrics["final_score"], run_dir, run_dir / "checkpoints" / "last.pt")
    return metrics["final_score"]


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
    given = [override.split("=", 1)[0].lstrip("+~") for override in HydraConfig.get().overrides.task]
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
    dir Hydra made for it if it holds only Hydra's own files."""
    hydra_files = {".hydra", "run.log", f"{HydraConfig.get().job.name}.log"}
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= hydra_files:
        shutil.rmtree(run_dir)
        cwd = Path(HydraConfig.get().runtime.cwd)
        for parent in run_dir.parents:  # and outputs/<date>/, outputs/ if this run was all they held
            if cwd not in parent.parents or any(parent.iterdir()):
                break
            parent.rmdir()


if __name__ == "__main__":
    hydra_errors.install()  # Hydra's composition errors in one line, like the range checks
    main()
