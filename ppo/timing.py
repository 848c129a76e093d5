"""Where a run's wall time goes: seconds per named phase, accumulated over the run."""

from __future__ import annotations

import time
from collections import defaultdict


class PhaseTimer:
    """``with timer("update"): ...`` adds the block's wall seconds to ``timer.seconds["update"]``.
    Costs about a microsecond per block, so it stays on in every run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._phase = ""
        self._start = 0.0

    def __call__(self, phase: str) -> PhaseTimer:
        self._phase = phase
        return self

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc) -> None:
        self.seconds[self._phase] += time.perf_counter() - self._start
