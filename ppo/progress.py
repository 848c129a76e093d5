"""Progress of a training run: a tqdm bar on a terminal, and a line in the log at each tenth of the budget."""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

log = logging.getLogger("ppo.progress")


class Progress:
    """Env steps, steps/s and the recent mean score of a run, as it trains.

    At each tenth of ``total_steps``, and at :meth:`close` after an early stop, one plain line goes to
    the ``logging`` logger ``ppo.progress``: Hydra's job logging writes it to the console and to the
    run's ``run.log``, so logs, pipes and sweeps get it. ``name`` (a sweep's run name) begins every
    line, so the lines of runs in parallel tell which run they are. When stderr is a terminal, tqdm
    also draws a bar there, and console log records print above it while it is open.

    ``start_step``: the steps a resumed run had done already; the bar starts there, and steps/s
    counts only the steps of this process. ``bar=False`` draws none (a population's members log
    lines only); ``log_extra`` goes with each line's record (a member's run dir, for its run.log)."""

    def __init__(self, total_steps: int, enabled: bool = True, start_step: int = 0, name: str | None = None,
                 bar: bool = True, log_extra: dict | None = None):
        self.total_steps = total_steps
        self.start_step = start_step
        self.enabled = enabled
        self.prefix = f"{name}: " if name else ""
        self.start = time.perf_counter()
        self.next_tenth = start_step * 10 // total_steps + 1  # the first tenth this process reaches
        self.logged_step: int | None = None
        self.bar: tqdm | None = None
        self.console_above_bar = None
        self.log_extra = log_extra
        if enabled and bar and sys.stderr.isatty():
            self.console_above_bar = logging_redirect_tqdm()
            self.console_above_bar.__enter__()
            self.bar = tqdm(total=total_steps, initial=start_step, desc=name, unit="step", unit_scale=True,
                            dynamic_ncols=True, file=sys.stderr)

    def update(self, step: int, mean_score: float | None) -> None:
        """The run is at env step ``step``; ``mean_score``: the mean of its last 100 episodes, if any."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(f"mean score {_score(mean_score)}", refresh=False)
            self.bar.update(step - self.bar.n)
        if step * 10 >= self.next_tenth * self.total_steps:
            self.next_tenth = step * 10 // self.total_steps + 1
            self._log(step, mean_score)

    def close(self, step: int, mean_score: float | None) -> None:
        """The run ended at ``step``: the last line (after an early stop), and the bar closed."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.update(step, mean_score)
            self.bar.close()
            self.console_above_bar.__exit__(None, None, None)
            self.bar = None
        if self.logged_step != step:
            self._log(step, mean_score)

    def _log(self, step: int, mean_score: float | None) -> None:
        rate = (step - self.start_step) / max(time.perf_counter() - self.start, 1e-9)
        log.info("%s%3.0f%% %s/%s steps | %s steps/s | mean score (last 100) %s", self.prefix,
                 100 * min(step / self.total_steps, 1.0), f"{step:,}", f"{self.total_steps:,}", f"{rate:,.0f}",
                 _score(mean_score), extra=self.log_extra)
        self.logged_step = step


def _score(mean_score: float | None) -> str:
    return "n/a" if mean_score is None else f"{mean_score:.1f}"
