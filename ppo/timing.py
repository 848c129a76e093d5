"""Where a run's wall time goes: seconds per named phase, accumulated over the run."""

from __future__ import annotations

import time
from collections import defaultdict


class PhaseTimer:
    """``with timer("update"): ...`` adds the block's wall seconds to ``timer.seconds["update"]``.
    Phases may nest (each block is timed on its own). About a microsecond per block, so it stays on."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def __call__(self, phase: str) -> _Block:
        return _Block(self.seconds, phase)


class _Block:
    __slots__ = ("seconds", "phase", "start")

    def __init__(self, seconds: dict[str, float], phase: str):
        self.seconds, self.phase = seconds, phase

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc) -> None:
        self.seconds[self.phase] += time.perf_counter() - self.start
