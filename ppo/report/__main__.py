"""The command line of :mod:`ppo.report`: ``python -m ppo.report SWEEP_DIR [--out DIR] [--metric NAME]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import ppo.report
from ppo.report.runs import DEFAULT_METRIC, RANKING_METRICS, NotASweepError, find_runs
from ppo.report.write import write_report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ppo.report", description=ppo.report.__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a sweep directory (e.g. outputs/multirun/<date>/<time>)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the report (default: the sweep dir)")
    parser.add_argument("--metric", choices=list(RANKING_METRICS), default=None,
                        help="the metric that ranks the settings (default: the runs' objective in metrics.json, "
                             f"else {DEFAULT_METRIC}); steps_to_solve is minimized, the others maximized")
    args = parser.parse_args(argv)
    try:
        paths = write_report(args.sweep_dir, args.out, args.metric)
    except NotASweepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    runs = find_runs(args.sweep_dir)
    counts = {status: sum(run.status == status for run in runs) for status in ("finished", "failed", "unfinished")}
    print(f"{len(runs)} runs: {counts['finished']} finished, {counts['failed']} failed, "
          f"{counts['unfinished']} without a result")
    for path in paths.values():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
