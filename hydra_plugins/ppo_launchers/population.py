"""``hydra/launcher=population``: the jobs of a sweep that can share one batched update train together,
as one population per worker process (:mod:`ppo.population`).

The launcher composes every job's config, groups the jobs by :func:`ppo.population.population_key`,
cuts each group into near-equal populations of at most ``max_members`` (:func:`split_into_populations`),
and trains ``n_jobs`` populations at a time, each in a fresh worker process (spawned: torch after a
fork is unsafe). A job whose config is refused, or that an earlier command of the sweep finished, never
enters a population (``ppo.run``'s :func:`~ppo.run.start_sweep_job` decides, as it does for every sweep).

Hydra's ``run_job`` runs one task in the calling process and resets its logging, so this launcher does
for each member what ``run_job`` does for a job: sets ``hydra.job.id``/``num`` and the output dir,
writes Hydra's record (``.hydra/config.yaml``, ``hydra.yaml``, ``overrides.yaml``), calls the
callbacks' ``on_job_start``/``on_job_end``, logs to the member's own ``run.log``, and returns a
completed ``JobReturn`` per job in the order the jobs came (the Optuna sweeper zips them with its
trials): its value is the run's objective, or None for a failed member, as ``ppo.run`` returns in a sweep.
"""

# No ``from __future__ import annotations``: Hydra's plugin scan runs this module without entering it
# in sys.modules, where dataclasses cannot resolve annotations given as strings.
import concurrent.futures
import copy
import inspect
import logging
import math
import multiprocessing
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

# ppo's own modules are imported where they are used: Hydra imports every module under hydra_plugins
# in each app that looks for plugins, and this one must cost those apps nothing.

log = logging.getLogger(__name__)

HYDRA_LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"
"""Hydra's default job logging format, where the job's ``hydra.job_logging`` names none."""


@dataclass
class PopulationLauncherConf:
    """``hydra.launcher`` of ``hydra/launcher=population``."""

    _target_: str = "hydra_plugins.ppo_launchers.population.PopulationLauncher"
    n_jobs: int | None = None
    """Worker processes at a time, each training one population; None: one per core
    (:func:`ppo.run.local_cpu_count`)."""
    max_members: int = 32
    """At most this many jobs train in one population."""


ConfigStore.instance().store(group="hydra/launcher", name="population", node=PopulationLauncherConf, provider="ppo")


@dataclass
class Member:
    """One job of the sweep, from its composed config to its ``JobReturn``."""

    config: DictConfig
    """The composed config, ``hydra`` node included, with its job number and output dir set."""
    job_return: JobReturn
    log_format: str
    log_file: Path
    """Where Hydra's job logging would write this job's log (``<run dir>/run.log`` for ``ppo.run``)."""
    stopped: SystemExit | None = field(default=None)

    @property
    def task_config(self) -> DictConfig:
        """The config a task function is given (without ``hydra``), composed once, as its JobReturn holds it."""
        return self.job_return.cfg

    @property
    def run_dir(self) -> Path:
        return Path(self.config.hydra.runtime.output_dir)

    @property
    def overrides(self) -> list[str]:
        return list(self.config.hydra.overrides.task)

    @property
    def choices(self) -> dict[str, str | None]:
        return dict(self.config.hydra.runtime.choices)


class PopulationLauncher(Launcher):
    """Trains a sweep's jobs in populations (see the module's docstring)."""

    def __init__(self, n_jobs: int | None = None, max_members: int = 32) -> None:
        self.n_jobs = n_jobs
        self.max_members = max_members
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.task_function = task_function
        self.hydra_context = hydra_context
        refusal = refusal_of(config, task_function)
        if refusal is not None:  # one line, before any job starts, as ppo.run refuses a bad value
            print(f"error: {refusal}", file=sys.stderr)
            sys.exit(2)
        if self.n_jobs is None:
            from ppo.run import local_cpu_count

            self.n_jobs = local_cpu_count()

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from ppo.population import PopulationJob, population_key
        from ppo.run import start_sweep_job
        from ppo.sweep import swept_keys

        assert self.config is not None and self.hydra_context is not None and self.n_jobs is not None
        setup_globals()
        # the workers start now and import torch while this process composes the jobs (seconds each)
        pool = concurrent.futures.ProcessPoolExecutor(max_workers=self.n_jobs,
                                                      mp_context=multiprocessing.get_context("spawn"))
        for _ in range(self.n_jobs):
            pool.submit(import_trainer)
        try:
            sweep_dir = Path(str(self.config.hydra.sweep.dir))
            sweep_dir.mkdir(parents=True, exist_ok=True)
            differing = swept_keys(sweep_dir)  # after SweepSummary wrote multirun.yaml
            members = [self.compose(overrides, initial_job_idx + index)
                       for index, overrides in enumerate(job_overrides)]

            to_train: dict[int, PopulationJob] = {}
            for index, member in enumerate(members):
                self.hydra_context.callbacks.on_job_start(config=member.config, task_function=self.task_function)
                with as_current(member):
                    job = start_sweep_job(member.task_config, member.run_dir, member.overrides, differing,
                                          member.choices)
                if isinstance(job, PopulationJob):
                    to_train[index] = job
                else:  # finished earlier, or refused: nothing to train
                    self.end_job(member, job)

            groups: dict[Any, list[int]] = {}
            for index, job in to_train.items():
                key = population_key(job.config)
                groups.setdefault(("alone", index) if key is None else key, []).append(index)
            populations = split_into_populations(list(groups.values()), self.n_jobs, self.max_members)
            log.info("Population launcher: %d jobs into %s, %d at a time, in %s", len(members),
                     describe_populations(populations, len(members) - len(to_train)), self.n_jobs, sweep_dir)
            for number, population in enumerate(populations):
                log.info("\tpopulation %d: %s", number, "; ".join(
                    f"#{members[index].config.hydra.job.num} {' '.join(filter_overrides(members[index].overrides))}"
                    for index in population))

        except BaseException:  # no population will train: the workers go
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        for population, results in train_populations(pool, populations, to_train, members):
            for index, result in zip(population, results):
                self.finish(members[index], result, differing)
        stopped = next((member.stopped for member in members if member.stopped is not None), None)
        if stopped is not None:  # a member stopped by a signal: the sweep stops as a run does, once all are saved
            raise stopped
        return [member.job_return for member in members]

    def compose(self, overrides: Sequence[str], job_num: int) -> Member:
        """The job's config as Hydra's basic launcher composes it, its output dir resolved and Hydra's
        record of it written there, as ``run_job`` does."""
        assert self.config is not None and self.hydra_context is not None
        config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(config):
            config.hydra.job.id = job_num
            config.hydra.job.num = job_num
        previous = HydraConfig.instance().cfg
        try:
            HydraConfig.instance().set_config(config)  # ${hydra:...} in the subdir resolves to this job
            output_dir = Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)
            with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
                config.hydra.runtime.output_dir = str(output_dir.absolute())
            HydraConfig.instance().set_config(config)
            job_return = JobReturn(overrides=list(config.hydra.overrides.task), cfg=task_config(config),
                                   hydra_cfg=copy.deepcopy(HydraConfig.instance().cfg), working_dir=os.getcwd(),
                                   task_name=config.hydra.job.name)
            output_dir.mkdir(parents=True, exist_ok=True)
            if config.hydra.output_subdir is not None:
                record_dir = output_dir / str(config.hydra.output_subdir)
                record_dir.mkdir(parents=True, exist_ok=True)
                OmegaConf.save(job_return.cfg, record_dir / "config.yaml")
                OmegaConf.save(job_return.hydra_cfg, record_dir / "hydra.yaml")
                OmegaConf.save(config.hydra.overrides.task, record_dir / "overrides.yaml")
            log_file = OmegaConf.select(config, "hydra.job_logging.handlers.file.filename",
                                        default=str(output_dir / f"{config.hydra.job.name}.log"))
            log_format = OmegaConf.select(config, "hydra.job_logging.formatters.simple.format",
                                          default=HYDRA_LOG_FORMAT)
        finally:
            HydraConfig.instance().cfg = previous
        return Member(config, job_return, log_format, Path(log_file))

    def finish(self, member: Member, result: dict | BaseException, differing: list[str]) -> None:
        from ppo.run import finish_sweep_job

        with as_current(member):
            try:
                value = finish_sweep_job(member.task_config, member.run_dir, member.overrides, differing,
                                         result)
            except SystemExit as stop:  # stopped by a signal, its checkpoint saved: the others still end
                member.stopped, value = stop, None
        self.end_job(member, value)

    def end_job(self, member: Member, value: float | None) -> None:
        assert self.hydra_context is not None
        member.job_return.return_value = value
        member.job_return.status = JobStatus.COMPLETED
        self.hydra_context.callbacks.on_job_end(config=member.config, job_return=member.job_return)


def refusal_of(config: DictConfig, task_function: TaskFunction) -> str | None:
    """What this launcher cannot honour in the sweep's ``config``, in one line; None where it can."""
    from ppo import run

    launcher = config.hydra.launcher
    if config.hydra.job.chdir:
        return ("hydra.job.chdir=true is not allowed with hydra/launcher=population: a population's members "
                "train in one process, which has one working directory; only false")
    if config.hydra.job.env_set:
        return (f"hydra.job.env_set={OmegaConf.to_container(config.hydra.job.env_set)} is not allowed with "
                "hydra/launcher=population: a population's members share one process environment; only {} "
                "(set the variables before the command)")
    for key in ("n_jobs", "max_members"):
        value = launcher.get(key)
        if value is not None and (not isinstance(value, int) or value < 1):
            return f"hydra.launcher.{key}={value!r} is not allowed: at least 1"
    task_file = inspect.getsourcefile(task_function) if inspect.isfunction(task_function) else None
    if (task_file is None or Path(task_file).resolve() != Path(run.__file__).resolve()
            or task_function.__name__ != "main"):
        name = getattr(task_function, "__qualname__", repr(task_function))
        return (f"hydra/launcher=population is not allowed for the task {task_function.__module__}.{name}: "
                "it trains ppo.run's jobs only (python -m ppo.run)")
    return None


def task_config(config: DictConfig) -> DictConfig:
    """The job's config without its ``hydra`` node: what a task function is given."""
    task = copy.deepcopy(config)
    with read_write(task), open_dict(task):
        del task["hydra"]
    return task


@contextmanager
def as_current(member: Member) -> Iterator[None]:
    """While this process works on ``member``: Hydra's config is the member's (``${hydra:...}``
    resolves to it) and the log goes to its log file as well as to the console."""
    previous = HydraConfig.instance().cfg
    handler = logging.FileHandler(member.log_file)
    handler.setFormatter(logging.Formatter(member.log_format))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        HydraConfig.instance().set_config(member.config)
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
        HydraConfig.instance().cfg = previous


T = TypeVar("T")


def split_into_populations(groups: Sequence[Sequence[T]], n_jobs: int, max_members: int) -> list[list[T]]:
    """Each group (the jobs of one population key) cut into consecutive populations of near-equal size
    (they differ by one at most), of at most ``max_members`` each. A group also gets at least its share of
    the ``n_jobs`` processes, in proportion to its size (but never an empty population): a sweep whose jobs
    are all compatible still keeps every process busy."""
    total = sum(len(group) for group in groups)
    populations = []
    for group in groups:
        count = max(math.ceil(len(group) / max_members), min(len(group), math.ceil(n_jobs * len(group) / total)))
        size, larger = divmod(len(group), count)
        start = 0
        for number in range(count):
            end = start + size + (number < larger)
            populations.append(list(group[start:end]))
            start = end
    return populations


def describe_populations(populations: list[list[int]], without_training: int) -> str:
    """``3 population(s) of 2, 1, 1 members, 1 job(s) with nothing to train``."""
    words = f"{len(populations)} population(s)"
    if populations:
        words += f" of {', '.join(str(len(population)) for population in populations)} members"
    return words + (f", {without_training} job(s) with nothing to train" if without_training else "")


def train_populations(pool: concurrent.futures.ProcessPoolExecutor, populations: list[list[int]],
                      jobs: dict[int, Any], members: list[Member]
                      ) -> Iterator[tuple[list[int], list[dict | BaseException]]]:
    """Each population (job indices into ``jobs`` and ``members``) with its members' results, as the
    populations end; ``pool``'s worker processes train them, and are shut down after. A worker that
    dies fails its members."""
    try:
        futures = {pool.submit(train_in_worker, [jobs[index] for index in population],
                               [members[index].log_file for index in population], members[population[0]].log_format):
                   population for population in populations}
        for future in concurrent.futures.as_completed(futures):
            population = futures[future]
            try:
                results = future.result()
            except Exception as err:  # the worker died, or its results did not come back
                results = [err] * len(population)
            yield population, results
    except KeyboardInterrupt:  # the workers got the SIGINT too: they save their checkpoints and end
        pool.shutdown(wait=True, cancel_futures=True)
        print("error: interrupted", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    finally:
        pool.shutdown(wait=bool(populations), cancel_futures=True)


def import_trainer() -> None:
    """In a worker, as it starts: import what training needs, while the launcher composes the jobs."""
    import ppo.population_trainer  # noqa: F401  (torch, gymnasium, tensorboard)


def train_in_worker(jobs: list, log_files: list[Path], log_format: str) -> list[dict | BaseException]:
    """In a worker process: train one population, logging to the console, and to each member's log
    file its own lines (:data:`~ppo.population_trainer.MEMBER_LOG_KEY`) and the population's."""
    import torch

    from ppo.population_trainer import MEMBER_LOG_KEY, train_population

    threads = max(job.config.device.torch_threads for job in jobs)
    if threads > 0:  # 0: torch's default
        torch.set_num_threads(threads)
    handlers = [logging.StreamHandler(sys.stdout)]
    for job, path in zip(jobs, log_files):
        handler = logging.FileHandler(path)
        own_dir = str(job.out_dir)  # a member's lines to its own log; the population's to every member's
        handler.addFilter(lambda record, own_dir=own_dir: getattr(record, MEMBER_LOG_KEY, own_dir) == own_dir)
        handlers.append(handler)
    for handler in handlers:
        handler.setFormatter(logging.Formatter(log_format))
    root = logging.getLogger()
    root.handlers = handlers  # not those of the population this worker trained before
    root.setLevel(logging.INFO)
    try:
        results = train_population(jobs)
    finally:
        for handler in handlers[1:]:
            handler.close()
    return [sendable(result) for result in results]


def sendable(result: dict | BaseException) -> dict | BaseException:
    """``result`` as it can go back to the launcher: an exception keeps its traceback text as a note
    (a pickled exception loses its traceback), and one that does not pickle becomes a RuntimeError."""
    if not isinstance(result, BaseException):
        return result
    note = f"in the population's worker process:\n{''.join(traceback.format_exception(result)).rstrip()}"
    try:
        pickle.loads(pickle.dumps(result))
    except Exception:
        result = RuntimeError(f"{type(result).__name__}: {result}")
    result.__notes__ = [*getattr(result, "__notes__", []), note]  # add_note() from Python 3.11
    return result
