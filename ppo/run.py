"""``python -m ppo.run``: compose the config with Hydra, train, return the sweep metric.

A thin shim around :func:`ppo.train.train`, which knows nothing of Hydra.
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from ppo.config import ConfigError, register_configs, to_config

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
    from ppo.train import train  # torch and gymnasium load after Hydra has parsed the command line

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        config = to_config(cfg)
        metrics = train(config, run_dir)
    except ConfigError as err:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # the launcher reports the failed job with its overrides
        _remove_if_empty_run(run_dir)
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
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
