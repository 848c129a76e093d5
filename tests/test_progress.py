"""The progress of a run (ppo/progress.py): lines in the log at each tenth of the budget, a tqdm bar
on a terminal."""

from __future__ import annotations

import io
import logging
import sys

import pytest

import ppo.progress
from ppo.progress import Progress


@pytest.fixture
def progress_lines(caplog):
    """The progress messages that pass through the ``ppo`` logger (Hydra's job logging writes them to
    the console and run.log)."""
    caplog.set_level(logging.INFO, logger="ppo")
    return lambda: [record.getMessage() for record in caplog.records if record.name == "ppo.progress"]


class FakeClock:
    """``time.perf_counter`` of ppo.progress, moved by hand."""

    def __init__(self, monkeypatch):
        self.now = 100.0
        monkeypatch.setattr(ppo.progress.time, "perf_counter", lambda: self.now)


def test_a_line_at_each_tenth_of_the_budget_names_the_run(progress_lines):
    progress = Progress(1000, name="policy_clip=0.1,seed=1")
    for step in range(64, 1025, 64):  # updates of 64 steps: tenths are crossed between updates
        progress.update(step, 20.0 + step / 100)
    progress.close(1024, 30.2)
    lines = progress_lines()
    assert [line.split("%")[0] for line in lines] == [
        f"policy_clip=0.1,seed=1: {percent:3d}" for percent in (13, 26, 32, 45, 51, 64, 70, 83, 96, 100)]
    assert lines[0].startswith("policy_clip=0.1,seed=1:  13% 128/1,000 steps | ")
    assert lines[-1].endswith("mean score (last 100) 30.2")


def test_an_early_stop_ends_with_a_line_at_its_step(progress_lines):
    progress = Progress(10_000)
    progress.update(1000, None)
    progress.update(1500, 195.04)
    progress.close(1500, 195.04)
    progress.close(1500, 195.04)  # closing twice adds nothing
    lines = progress_lines()
    assert [line.split(" | ")[0] for line in lines] == [" 10% 1,000/10,000 steps", " 15% 1,500/10,000 steps"]
    assert lines[0].endswith("mean score (last 100) n/a") and lines[1].endswith("mean score (last 100) 195.0")


def test_nothing_when_disabled(progress_lines, capsys):
    progress = Progress(100, enabled=False, name="run")
    for step in range(10, 101, 10):
        progress.update(step, 1.0)
    progress.close(100, 1.0)
    assert progress_lines() == []
    assert capsys.readouterr() == ("", "")


def test_a_resumed_run_counts_its_rate_from_its_start_step(progress_lines, monkeypatch):
    """Resumed at step 500 of 1000: the first line is at 600, and 100 steps in 2 s is 50 steps/s
    (not 600 / 2)."""
    clock = FakeClock(monkeypatch)
    progress = Progress(1000, start_step=500)
    clock.now += 2.0
    progress.update(600, 10.0)
    assert progress_lines() == [" 60% 600/1,000 steps | 50 steps/s | mean score (last 100) 10.0"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_with_log_records_above_it(progress_lines, monkeypatch):
    """tqdm draws the bar on stderr; while it is open, a console handler's records go through tqdm
    (so they do not break the bar); after close the handler is back as it was."""
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    console = logging.StreamHandler(terminal)
    root = logging.getLogger()
    root.addHandler(console)
    try:
        progress = Progress(1000, name="seed=3")
        assert console not in root.handlers, "console records go through tqdm while the bar is open"
        progress.update(500, 42.0)
        logging.getLogger("ppo.train").warning("a record during training")
        progress.close(1000, 43.5)
        assert console in root.handlers
    finally:
        root.removeHandler(console)
    drawn = terminal.getvalue()
    assert "\r" in drawn and "seed=3" in drawn and "mean score 43.5" in drawn
    assert "a record during training\n" in drawn
    assert "seed=3:  50% 500/1,000 steps" in drawn and "seed=3: 100% 1,000/1,000 steps" in drawn
    assert len(progress_lines()) == 2
