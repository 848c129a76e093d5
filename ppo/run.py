"""``python -m ppo.run``: compose the config with Hydra, train, return the sweep objective.

A thin shim around :func:`ppo.train.train`, which knows nothing of Hydra. Around it, each run
records its hyperparameters and results for TensorBoard's HParams tab (:mod:`ppo.dashboard`), and
in a sweep a run that raises is recorded and the sweep goes on (:mod:`ppo.sweep`).

The exit status of a single run: 0 for a finished run, 1 for a command line Hydra cannot compose
(an unknown key or preset, a malformed override: Hydra's own message), 2 for a value of the wrong
type or out of range (one line on stderr), 3 for a run whose training diverged (its last good
checkpoint kept),
130 or 143 for a run stopped by SIGINT or SIGTERM (checkpoint saved; ``python -m ppo.run
resume=<run dir>`` continues it). A sweep exits 1 at its end if any of its runs failed.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import hydra
from hydra import initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from ppo.config import RESUME_MAY_CHANGE, Config, EnvConfig, register_configs, to_config, to_dict
from ppo.errors import ConfigError, TrainingDiverged
from ppo.population import PopulationJob
from ppo.rundir import CHECKPOINT_FILE, EVENT_FILES, METRICS_FILE, read_metrics
from ppo.sweep import (check_same_config, clear_failure, record_failure, relaunch_arguments, sweep_run_name,
                       swept_keys)

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


def resumed_run_dir(resume: str | None, new_run_dir: str) -> str:
    """``hydra.run.dir``: the directory of the run that ``resume`` names (the run dir itself, or its
    ``checkpoints/last.pt``), so that a resumed run goes on logging where it started; else
    ``new_run_dir``. A ``resume`` that names nothing gets ``new_run_dir`` too, and the run stops
    there with one line saying so."""
    if resume is None:
        return new_run_dir
    path = Path(resume).expanduser().resolve()
    if path.is_file() and path.parts[-2:] == CHECKPOINT_FILE.parts:
        return str(path.parent.parent)
    return str(path) if path.is_dir() else new_run_dir


def register_with_hydra() -> None:
    """What ``conf/config.yaml`` needs before Hydra composes it: the schema ``ppo_config`` and the
    ``${ppo.*:}`` resolvers. Called when this module is imported, so that a sweep's worker process,
    which imports :func:`main` to run a job, has them too."""
    register_configs()
    # ${ppo.cpu_count:} in configs, e.g. the Optuna sweeper's batch of parallel trials.
    OmegaConf.register_new_resolver("ppo.cpu_count", local_cpu_count, replace=True)
    OmegaConf.register_new_resolver("ppo.run_dir", resumed_run_dir, replace=True)
    # ${ppo.direction:${train.objective}}: the Optuna sweeper's direction for the run's objective.
    OmegaConf.register_new_resolver(
        "ppo.direction", lambda objective: "minimize" if objective == "steps_to_solve" else "maximize", replace=True)
    OmegaConf.register_new_resolver("ppo.hydra_subdir", lambda resume: ".hydra" if resume is None else ".hydra/resumed",
                                    replace=True)
    # ${ppo.sweep_run_name:${hydra.sweep.dir},${hydra.overrides.task},${hydra.job.num}} names a sweep's run dirs.
    OmegaConf.register_new_resolver("ppo.sweep_run_name", sweep_run_name, replace=True)


def compose(overrides: Sequence[str] = ()) -> DictConfig:
    """The config that ``python -m ppo.run <overrides>`` composes, without running anything: for
    tests, benchmarks and notebooks (``to_config(compose([...]))`` validates it)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra.compose(config_name="config", overrides=list(overrides))


register_with_hydra()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Train one run. Returns the value of its ``train.objective``, which a sweeper optimizes; in a
    sweep, a run that raises returns None instead and leaves ``failed.json`` (see :mod:`ppo.sweep`)."""
    hydra_config = HydraConfig.get()
    run_dir = Path(hydra_config.runtime.output_dir)
    overrides = list(hydra_config.overrides.task)
    choices = dict(hydra_config.runtime.choices)
    try:
        if hydra_config.mode != RunMode.MULTIRUN:
            return train_single_run(cfg, run_dir, overrides, choices)
        # the keys whose values differ between the runs that TensorBoard shows together
        differing = swept_keys(hydra_config.sweep.dir)
        job = start_sweep_job(cfg, run_dir, overrides, differing, choices)
        from ppo.train import train  # torch

        if not isinstance(job, PopulationJob):  # finished earlier, or refused
            return job

        try:
            result: dict | BaseException = train(job.config, job.out_dir, resume=job.resume, run_name=job.run_name)
        except Exception as err:
            result = err
        return finish_sweep_job(cfg, run_dir, overrides, differing, result)
    except KeyboardInterrupt:  # Ctrl-C before or after the training loop, which handles its own
        print("error: interrupted", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)


def train_single_run(cfg: DictConfig, run_dir: Path, overrides: list[str],
                     choices: dict[str, str | None]) -> float | None:
    """``python -m ppo.run`` without ``-m``: train, or exit with the status the module's docstring lists."""
    started = False
    try:
        config = validated_config(cfg, run_dir, overrides, choices)
        # torch, gymnasium and tensorboard load once the config is known to be valid
        from ppo.dashboard import hparams_of, record_run_end, record_run_start
        from ppo.train import train

        resume = cfg.resume is not None  # config is the saved one then, whose resume is its own
        if not resume:  # a resumed run recorded its start the first time
            record_run_start(run_dir, hparams_of(cfg), overridden_keys(overrides))
        started = True
        metrics = train(config, run_dir, resume=resume)
    except Exception as err:
        if started and not isinstance(err, ConfigError):
            record_run_end(run_dir, None)  # the HParams tab shows the run as failed
        if not isinstance(err, (ConfigError, TrainingDiverged)):
            raise
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2 if isinstance(err, ConfigError) else 3)
    if "interrupted" in metrics:  # stopped by a signal with a checkpoint saved: a failing status
        sys.exit(128 + getattr(signal, metrics["interrupted"]))
    return end_run(run_dir, metrics)


# --------------------------------------------------------------------------------------------
# One job of a sweep, in two halves around its training: ppo.run's main trains in between, the
# population launcher (hydra_plugins/ppo_launchers) trains many jobs' halves together.
# --------------------------------------------------------------------------------------------


def start_sweep_job(cfg: DictConfig, run_dir: Path, overrides: list[str], differing: list[str],
                    choices: dict[str, str | None]) -> PopulationJob | float | None:
    """Before training one job of a sweep: ``cfg`` is its composed config without the ``hydra`` node,
    ``overrides`` its ``hydra.overrides.task``, ``differing`` the sweep's :func:`~ppo.sweep.swept_keys`,
    ``choices`` its ``hydra.runtime.choices``. Returns the job to train, resuming where
    :func:`earlier_run` says; or, where there is nothing to train, the job's value for the sweeper:
    the objective of a run that an earlier command of this sweep finished, or None for a config that
    is refused (recorded as failed, as :func:`finish_sweep_job` records a run that raised)."""
    clear_failure(run_dir)
    try:
        config = validated_config(cfg, run_dir, overrides, choices)
        # torch, gymnasium and tensorboard load once the config is known to be valid
        from ppo.dashboard import hparams_of, record_run_start
        from ppo.state import objective_value

        earlier = earlier_run(config, run_dir)
        if isinstance(earlier, dict):  # finished by an earlier command of this sweep
            log.info("Kept: %s finished earlier (%s)", run_dir, final_score_words(earlier))
            return objective_value(earlier)
        if not earlier:  # a resumed run recorded its start the first time
            record_run_start(run_dir, hparams_of(cfg), differing)
    except Exception as err:
        return record_failed_sweep_job(cfg, run_dir, overrides, differing, err, started=False)
    return PopulationJob(config, run_dir, resume=earlier, run_name=run_dir.name)


def finish_sweep_job(cfg: DictConfig, run_dir: Path, overrides: list[str], differing: list[str],
                     result: dict | BaseException) -> float | None:
    """After training one job that :func:`start_sweep_job` handed out: ``result`` is its metrics, or
    the exception that stopped it. Returns its objective, or None for a run that raised (recorded in
    ``failed.json``, and the sweep goes on). A run stopped by a signal exits with 128 + its number
    (``SystemExit``), as a single run does."""
    if isinstance(result, BaseException):
        return record_failed_sweep_job(cfg, run_dir, overrides, differing, result, started=True)
    if "interrupted" in result:  # stopped by a signal with a checkpoint saved: a failing status
        sys.exit(128 + getattr(signal, result["interrupted"]))
    return end_run(run_dir, result)


def record_failed_sweep_job(cfg: DictConfig, run_dir: Path, overrides: list[str], differing: list[str],
                            error: BaseException, started: bool) -> None:
    """One failed run must not stop the sweep: record it (``failed.json``, a failed HParams session),
    let the sweeper go on. ``started``: whether its HParams session start is written already."""
    from ppo.dashboard import hparams_of, record_run_end, record_run_start

    record_failure(run_dir, overrides, error)
    if not started:
        record_run_start(run_dir, hparams_of(cfg), differing)
    record_run_end(run_dir, None)
    return None


def validated_config(cfg: DictConfig, run_dir: Path, overrides: list[str], choices: dict[str, str | None]) -> Config:
    """``cfg`` checked (:class:`ConfigError` names a bad key), or for ``resume=DIR`` the config saved
    there; warns of an ``env.id`` that leaves its env preset's other settings behind."""
    config = to_config(cfg)
    if config.resume is not None:
        return resumed_config(config, run_dir, overridden_keys(overrides))
    if choices.get("experiment") is None:  # an experiment sets its env keys itself
        warn_if_env_id_leaves_its_preset(config.env, choices.get("env"))
    return config


def end_run(run_dir: Path, metrics: dict) -> float | None:
    """A finished run: its HParams results, the closing log line, and its objective."""
    from ppo.dashboard import record_run_end
    from ppo.state import objective_value

    record_run_end(run_dir, metrics)
    log.info("Done: %s | %s | tensorboard --logdir %s | checkpoint %s", final_score_words(metrics),
             solved_words(metrics), run_dir, run_dir / CHECKPOINT_FILE)
    return objective_value(metrics)


def final_score_words(metrics: dict) -> str:
    if metrics["final_score"] is None:
        return "no greedy evaluation (train.eval_episodes=0)"
    return f"greedy score {metrics['final_score']:.1f} ± {metrics['final_score_std']:.1f}"


def solved_words(metrics: dict) -> str:
    """Whether the run reached its solved score, in words."""
    if metrics["solved_score"] is None:
        return "the env has no solved score (env.solved_score sets one)"
    if metrics["steps_to_solve"] is None:
        best = metrics["best_mean_score_100"]
        best = "fewer than 100 episodes" if best is None else f"best 100-episode mean {best:.1f}"
        return f"NOT solved: {best}, solved is {metrics['solved_score']:g}"
    return (f"solved: the 100-episode mean reached {metrics['solved_score']:g} at env step "
            f"{metrics['steps_to_solve']:,}")


def overridden_keys(overrides: Sequence[str]) -> list[str]:
    """The config keys that ``overrides`` (a command line's) set (``+agent.x=1`` and ``~agent.x`` give ``agent.x``)."""
    return [override.split("=", 1)[0].lstrip("+~") for override in overrides]


def warn_if_env_id_leaves_its_preset(env: EnvConfig, preset: str | None) -> None:
    """``env.id=Acrobot-v1`` under ``env=cartpole`` keeps the cartpole preset's other settings: say
    which, and which preset is the id's own."""
    preset_path = CONF_DIR / "env" / f"{preset}.yaml"
    if preset is None or not preset_path.is_file():
        return
    preset_values = OmegaConf.to_container(OmegaConf.load(preset_path)) or {}
    if preset_values.get("id") in (None, env.id):
        return
    kept = ", ".join(f"{key}={getattr(env, key)}" for key in preset_values if key != "id"
                     and getattr(env, key) == preset_values[key])
    own = [path.stem for path in sorted((CONF_DIR / "env").glob("*.yaml"))
           if (OmegaConf.load(path).get("id") or None) == env.id]
    log.warning("env.id=%s replaces the id of the env preset %s (%s)%s; %s", env.id, preset, preset_values["id"],
                f" and keeps its {kept}" if kept else "",
                f"env={own[0]} is the preset made for {env.id}" if own else
                f"no preset is made for {env.id}: the other env keys are at their defaults")


def earlier_run(config: Config, run_dir: Path) -> dict | bool:
    """What a job of a sweep does with what an earlier command of the same sweep left in its run dir
    (see :mod:`ppo.sweep`): the metrics of a finished run, handed back without training; True to
    resume from the checkpoint (a stopped or failed run, or a finished one given a larger budget);
    False to start (nothing there, or a run killed before its first checkpoint, whose event files
    go: it starts over on a clean step axis). A checkpoint trained with another config than the
    job's is refused (:class:`ConfigError`)."""
    if not (run_dir / CHECKPOINT_FILE).is_file():
        for path in run_dir.glob(EVENT_FILES):
            path.unlink()
        return False
    from ppo.checkpoint import load_checkpoint  # torch

    saved = load_checkpoint(run_dir / CHECKPOINT_FILE)
    check_same_config(saved["config"], to_dict(config), run_dir)
    metrics = read_metrics(run_dir)
    if saved["finished"] and config.train.total_timesteps <= saved["config"]["train"]["total_timesteps"]:
        return metrics if metrics is not None else True  # True: killed while evaluating, which resuming ends
    if metrics is not None:  # a larger budget: the run is unfinished until it reaches it
        (run_dir / METRICS_FILE).unlink()
    return True


RESUME_OVERRIDES = ("resume", *RESUME_MAY_CHANGE)


def resumed_config(config: Config, run_dir: Path, given: list[str]) -> Config:
    """``resume=DIR`` (or ``DIR/checkpoints/last.pt``): the config saved in DIR's checkpoint, which
    goes on in DIR (``hydra.run.dir`` follows ``resume``, see :func:`resumed_run_dir`). Only the keys
    in :data:`RESUME_OVERRIDES` may be given with ``resume`` (``given``: the keys the command line
    sets), and the budget may only grow."""
    given_path = Path(config.resume).expanduser().resolve()
    if run_dir.resolve() not in (given_path, given_path.parent.parent):
        raise ConfigError(f"resume={config.resume!r} is not allowed: it names neither a run directory nor its "
                          f"{CHECKPOINT_FILE}")
    from ppo.checkpoint import load_checkpoint  # torch

    try:
        saved = to_config(load_checkpoint(run_dir / CHECKPOINT_FILE)["config"])
    except ConfigError as err:  # "checkpoint='DIR/checkpoints/last.pt' is not allowed: no such file", say
        reason = str(err).split(" is not allowed: ", 1)[-1]
        raise ConfigError(f"resume={config.resume!r} is not allowed: {CHECKPOINT_FILE}: {reason}") from None
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
    return saved


if __name__ == "__main__":
    try:  # resume=<sweep dir> is the command that launched the sweep, recognized before Hydra writes anything
        relaunch = relaunch_arguments(sys.argv[1:])
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    if relaunch is not None:
        sys.argv[1:] = relaunch
    main()
