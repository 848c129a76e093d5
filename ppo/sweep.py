"""Sweeps that survive their failed runs, and being killed.

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

A sweep that was killed or preempted goes on with ``python -m ppo.run resume=<sweep dir>``, which
:func:`relaunch_arguments` turns into the command that launched it, into the same dir (re-running
that command with ``hydra.sweep.dir=<sweep dir>`` is the same). Each job then finds its run dir as
the killed sweep left it (``ppo.run`` decides): a finished run keeps its results and hands its
objective back to the sweeper, a stopped one resumes from its checkpoint, a failed one is tried
again, one never started starts. :class:`SweepSummary` holds :data:`~ppo.rundir.SWEEP_LOCK` for the
sweep's life, refuses a run dir whose checkpoint was trained with another config than the one its
job composes now, and says at the end what the sweep found and did.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import re
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

from ppo.config import RESUME_MAY_CHANGE, first_difference, to_config, to_dict
from ppo.errors import ConfigError
from ppo.rundir import CHECKPOINT_FILE, FAILED_FILE, METRICS_FILE, SEED_KEY, SWEEP_CONFIG, SWEEP_LOCK, read_metrics

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
    """Around a sweep, in the process that launches its jobs. At the start: the sweep's lock, the
    check that each run dir left by an earlier command fits its job, and ``multirun.yaml``. At the
    end: where the sweep is, how to look at it, what became of the runs an earlier command left, and
    which runs failed (exit status 1 if any did)."""

    def __init__(self) -> None:
        self.start_time = time.time()
        self.found: dict[str, list[str]] = {}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Lock the sweep dir and check the runs already in it, then save the sweep's config where
        :func:`swept_keys` reads it, before any job starts: Hydra's basic sweeper writes the same
        ``multirun.yaml`` (again) itself, the Optuna sweeper does not. A refusal writes nothing."""
        self.start_time = time.time()
        sweep_dir = Path(str(config.hydra.sweep.dir))
        try:
            lock_sweep(sweep_dir)
            self.found = runs_by_state(sweep_dir)
            check_trained_configs(sweep_dir, self.found)
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        if any(self.found.values()):
            log.info("Sweep %s goes on: %s", sweep_dir, describe_states(self.found))
        OmegaConf.save(config, sweep_dir / SWEEP_CONFIG)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir).resolve()
        log.info("Sweep done: %s\n  report:      python -m ppo.report %s\n  tensorboard: tensorboard --logdir %s",
                 sweep_dir, sweep_dir, sweep_dir)
        if any(self.found.values()):
            log.info("Of the runs an earlier command left: %s", describe_outcomes(sweep_dir, self.found,
                                                                                 self.start_time))
        failures = find_failures(sweep_dir, since=self.start_time)
        unlock_sweep(sweep_dir)
        if not failures:
            return
        lines = [f"  [{' '.join(record['overrides'])}] {record['error'].splitlines()[0]}  ({run_dir / FAILED_FILE})"
                 for run_dir, record in failures]
        log.error("%d run(s) failed; the others' results are kept:\n%s", len(failures), "\n".join(lines))
        sys.exit(1)


# --------------------------------------------------------------------------------------------
# Resuming a sweep
# --------------------------------------------------------------------------------------------

RUN_STATES = {"finished": "kept their results", "stopped": "resumed from their checkpoints",
              "failed": "tried again", "unstarted": "started again"}
"""What an earlier command left in a run dir, and what the sweep does with it."""


def relaunch_arguments(argv: Sequence[str]) -> list[str] | None:
    """The command line that continues the sweep that ``resume=<sweep dir>`` in ``argv`` names: the
    command that launched it, as Hydra recorded it in its ``multirun.yaml`` (sweeper, launcher and
    overrides), into the same dir, with ``train.total_timesteps`` or ``train.progress`` where given
    beside ``resume``. None where ``argv`` names no sweep dir (a run dir resumes as a single run).
    Reads the record only: writes nothing."""
    resumes = [arg for arg in argv if arg.startswith("resume=")]
    if len(resumes) != 1:
        return None
    given_dir = resumes[0].partition("=")[2]
    sweep_dir = Path(given_dir).expanduser().resolve()
    if not (sweep_dir / SWEEP_CONFIG).is_file():
        return None
    given = [arg for arg in argv if arg not in (resumes[0], "-m", "--multirun")]
    refused = [arg for arg in given if arg.partition("=")[0] not in RESUME_MAY_CHANGE]
    if refused:
        raise ConfigError(f"resume={given_dir!r} is not allowed with {' '.join(refused)}: a resumed sweep runs the "
                          f"command it was launched with; only {', '.join(RESUME_MAY_CHANGE)} may be given")
    record = OmegaConf.load(sweep_dir / SWEEP_CONFIG)
    if (OmegaConf.select(record, "hydra.runtime.choices.hydra/sweeper") == "optuna"
            and OmegaConf.select(record, "hydra.sweeper.storage") is None):
        raise ConfigError(f"resume={given_dir!r} is not allowed: its Optuna study was kept in memory and is gone; a "
                          "search resumes with hydra.sweeper.storage set when it starts (e.g. "
                          "hydra.sweeper.storage=sqlite:///study.db, which needs ppo[sweep-storage])")
    replaced = {arg.partition("=")[0] for arg in given} | {"hydra.mode", "hydra.sweep.dir"}
    recorded = [*record.hydra.overrides.hydra, *record.hydra.overrides.task]
    kept = [override for override in recorded if override.partition("=")[0].lstrip("+~") not in replaced]
    if OmegaConf.select(record, "hydra.sweeper._target_") == STOCK_OPTUNA_SWEEPER:
        kept.append(f"hydra.sweeper._target_={RESUMABLE_OPTUNA_SWEEPER}")
    return ["--multirun", *kept, f"hydra.sweep.dir={_quoted(str(sweep_dir))}", *given]


STOCK_OPTUNA_SWEEPER = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
RESUMABLE_OPTUNA_SWEEPER = "hydra_plugins.ppo_sweepers.resumable_optuna.ResumableOptunaSweeper"
"""The Optuna sweeper that resumes its study: a search launched with the stock one resumes with it."""


def _quoted(value: str) -> str:
    """``value`` as one override value: quoted where Hydra's grammar would read it otherwise."""
    return value if re.fullmatch(r"[\w/.~+-]+", value) else "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


_held_locks: dict[Path, Any] = {}
"""The open lock files of the sweeps this process runs. Here, not on the callback: a launcher pickles
the callbacks to its workers, and an open file does not pickle."""


def lock_sweep(sweep_dir: Path) -> None:
    """``flock`` the :data:`~ppo.rundir.SWEEP_LOCK` of ``sweep_dir`` (made if need be), held until
    :func:`unlock_sweep` or the end of this process; :class:`ConfigError` while another command holds it."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    lock = open(sweep_dir / SWEEP_LOCK, "a")  # noqa: SIM115 - held until the sweep ends or its process dies
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise ConfigError(f"hydra.sweep.dir={str(sweep_dir)!r} is not allowed: another command is running this "
                          "sweep; wait for it to end, or stop it, then resume") from None
    _held_locks[sweep_dir.resolve()] = lock


def unlock_sweep(sweep_dir: Path) -> None:
    lock = _held_locks.pop(sweep_dir.resolve(), None)
    if lock is not None:
        lock.close()  # releases the flock


def run_state(run_dir: Path) -> str:
    """What an earlier command left in a sweep's run dir: one of :data:`RUN_STATES`."""
    if read_metrics(run_dir) is not None:
        return "finished"
    if (run_dir / FAILED_FILE).is_file():
        return "failed"
    return "stopped" if (run_dir / CHECKPOINT_FILE).is_file() else "unstarted"


def runs_by_state(sweep_dir: Path) -> dict[str, list[str]]:
    """The names of the run dirs in ``sweep_dir`` (those with Hydra's ``.hydra/``) by :func:`run_state`."""
    found: dict[str, list[str]] = {state: [] for state in RUN_STATES}
    for hydra_dir in sorted(sweep_dir.glob("*/.hydra")):
        found[run_state(hydra_dir.parent)].append(hydra_dir.parent.name)
    return found


def describe_states(found: dict[str, list[str]]) -> str:
    """``2 finished (seed=1, seed=2); 1 stopped (seed=3)``."""
    return "; ".join(f"{len(names)} {state} ({', '.join(names)})" for state, names in found.items() if names)


def describe_outcomes(sweep_dir: Path, found: dict[str, list[str]], since: float) -> str:
    """What this command did with the runs :func:`runs_by_state` ``found`` before it started at
    ``since``: ``2 kept their results (seed=1, seed=2); 1 resumed from their checkpoints (seed=3)``.
    A finished run whose metrics.json is newer was trained on to a larger budget."""
    outcomes: dict[str, list[str]] = {}
    for state, names in found.items():
        for name in names:
            metrics = sweep_dir / name / METRICS_FILE
            extended = state == "finished" and metrics.is_file() and metrics.stat().st_mtime >= since
            outcomes.setdefault("trained on to the new budget" if extended else RUN_STATES[state], []).append(name)
    return "; ".join(f"{len(names)} {outcome} ({', '.join(names)})" for outcome, names in outcomes.items())


def check_trained_configs(sweep_dir: Path, found: dict[str, list[str]]) -> None:
    """:class:`ConfigError` naming the first key in which a run's checkpoint was trained with another
    value than its job's overrides compose to now (after a change of code or of ``conf/``, a stale
    result must not come back as if it were new). Keys of
    :data:`~ppo.config.RESUME_MAY_CHANGE` may differ."""
    names = [name for state in ("finished", "stopped", "failed") for name in found[state]
             if (sweep_dir / name / CHECKPOINT_FILE).is_file()]
    if not names:
        return
    from hydra import compose

    from ppo.checkpoint import load_checkpoint  # torch: only when there are runs to check

    for name in names:
        run_dir = sweep_dir / name
        overrides = [str(line) for line in OmegaConf.load(run_dir / ".hydra" / "overrides.yaml")]
        current = to_dict(to_config(compose(config_name="config", overrides=overrides)))
        check_same_config(load_checkpoint(run_dir / CHECKPOINT_FILE)["config"], current, run_dir)


def check_same_config(trained: dict, current: dict, run_dir: Path) -> None:
    """:class:`ConfigError` unless ``run_dir``'s checkpoint config ``trained`` and the job's config
    ``current`` agree (:func:`~ppo.config.first_difference`)."""
    difference = first_difference(trained, current)
    if difference:
        key, before, now = difference
        raise ConfigError(f"{key}={now!r} is not allowed in {run_dir}: its checkpoint was trained with "
                          f"{key}={before!r}; "
                          "a run resumes only with the config it was trained with (move the run dir away to "
                          "train it anew)")


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
    values = {override.key_or_group: override for override in parse_overrides(job_overrides)
              if not override.is_delete()}
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
