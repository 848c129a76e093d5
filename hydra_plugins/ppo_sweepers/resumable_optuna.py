"""Hydra's Optuna sweeper, resumable: a search whose study lives in a database
(``hydra.sweeper.storage``) goes on where a killed command left it.

``python -m ppo.run resume=<sweep dir>`` runs an Optuna search with this sweeper. It loads the study
and, before asking the sampler for anything new:

* counts the trials that ended (complete, failed or pruned) toward ``hydra.sweeper.n_trials``;
* runs the trials that the killed command left running again, with their own parameters and job
  numbers, so in their own run dirs, where they resume from their checkpoints (``ppo.run``);
* continues the job numbers after the study's last trial.

Then the Optuna sweeper asks for the trials still to go. A trial's number is its job number: one
study per sweep dir, as ``experiment=cartpole_search`` names it.
"""

from __future__ import annotations

import logging
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
from omegaconf import DictConfig

log = logging.getLogger(__name__)


class ResumableOptunaSweeper(OptunaSweeper):
    """:class:`OptunaSweeper` that resumes its study (see the module's docstring). ``self.sweeper``
    is the Optuna sweeper's implementation that :class:`OptunaSweeper` wraps: its ``n_trials``,
    ``job_idx`` and ``launcher`` say how many trials to ask, where job numbers start, and who runs them."""

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.study = self._existing_study()
        if self.study is not None:
            self.sweeper.job_idx = len(self.study.trials)

    def _existing_study(self) -> optuna.Study | None:
        if self.sweeper.storage is None or self.sweeper.study_name is None:
            return None
        try:
            return optuna.load_study(study_name=self.sweeper.study_name, storage=self.sweeper.storage)
        except KeyError:  # no study of that name yet: a new search
            return None

    def sweep(self, arguments: list[str]) -> Any:
        if self.study is not None:
            trials = self.study.trials
            ended = [trial for trial in trials if trial.state.is_finished()]
            left_running = [trial for trial in trials if trial.state == optuna.trial.TrialState.RUNNING]
            log.info("Study %s goes on: %d trials ended, %d left running are run again, %d to go",
                     self.study.study_name, len(ended), len(left_running),
                     max(0, self.sweeper.n_trials - len(ended) - len(left_running)))
            self._run_again(left_running, arguments)
            self.sweeper.n_trials = max(0, self.sweeper.n_trials - len(ended) - len(left_running))
        return super().sweep(arguments)

    def _run_again(self, trials: list[optuna.trial.FrozenTrial], arguments: list[str]) -> None:
        """Run each trial with its own parameters and job number, and tell the study its value (a run
        that returns None, or raises, is a failed trial, as in the Optuna sweeper)."""
        parser = OverridesParser.create()
        fixed = [override.input_line for override in parser.parse_overrides(arguments)
                 if not override.is_sweep_override()]
        for trial in trials:
            overrides = [*fixed, *(f"{name}={value!r}" if isinstance(value, str) else f"{name}={value}"
                                   for name, value in trial.params.items())]
            (job_return,) = self.sweeper.launcher.launch([overrides], initial_job_idx=trial.number)
            try:
                self.study.tell(trial.number, float(job_return.return_value))
            except Exception as err:  # noqa: BLE001 - a run's failure of any kind is a failed trial
                log.warning("Trial %d failed again: %s", trial.number, err)
                self.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
