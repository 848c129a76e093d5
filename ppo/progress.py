"""A one-line progress display on stderr: env steps, steps/s and the recent mean score."""

from __future__ import annotations

import sys
import time


class Progress:
    """Redraws one line in a terminal (at most every ``interval`` s); elsewhere (logs, CI, sweeps)
    prints a plain line at each tenth of the budget."""

    def __init__(self, total_steps: int, enabled: bool = True, interval: float = 0.25, start_step: int = 0,
                 name: str | None = None):
        self.total_steps = total_steps
        self.start_step = start_step  # a resumed run's steps so far: the rate counts only this process's
        self.enabled = enabled
        self.interval = interval
        self.interactive = sys.stderr.isatty()
        self.start = self.last_draw = time.perf_counter()
        self.next_tenth = 1

    def update(self, step: int, mean_score: float | None) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.interactive:
            if now - self.last_draw < self.interval and step < self.total_steps:
                return
            end = "\n" if step >= self.total_steps else ""
            sys.stderr.write("\r" + self._line(step, mean_score, now) + end)
        else:
            if step * 10 < self.next_tenth * self.total_steps:
                return
            self.next_tenth = step * 10 // self.total_steps + 1
            sys.stderr.write(self._line(step, mean_score, now) + "\n")
        sys.stderr.flush()
        self.last_draw = now

    def close(self, step: int, mean_score: float | None) -> None:
        """Finish the line (e.g. after an early stop)."""
        if self.enabled and self.interactive and step < self.total_steps:
            sys.stderr.write("\r" + self._line(step, mean_score, time.perf_counter()) + "\n")

    def _line(self, step: int, mean_score: float | None, now: float) -> str:
        fraction = min(step / self.total_steps, 1.0)
        filled = int(24 * fraction)
        rate = (step - self.start_step) / max(now - self.start, 1e-9)
        score = "   n/a" if mean_score is None else f"{mean_score:6.1f}"
        return (f"[{'#' * filled}{'.' * (24 - filled)}] {fraction:4.0%} {step:>9,}/{self.total_steps:,} steps"
                f" | {rate:7,.0f} steps/s | mean score (last 100) {score}")
