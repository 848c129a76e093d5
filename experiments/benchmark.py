"""Time to solve and throughput of PPO presets, each run in its own process through the real CLI.

    python experiments/benchmark.py                                   # the default preset, seeds 1 2 3
    python experiments/benchmark.py --seeds 1 2 3 4 5 -- agent=rl_zoo  # any overrides after --
    python experiments/benchmark.py --solve-only=false -- +experiment=tutorial train.total_timesteps=60000

Every run trains with ``train.stop_when_solved=true`` (unless ``--solve-only=false``) and reports,
from its ``metrics.json``: env steps and wall seconds until the mean score of 100 consecutive
training episodes first reached the env's solved score, steps/s, the best 100-episode mean, and the
process's peak resident memory. Start-up (imports, env creation) is outside the timed seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def run_ppo(overrides: list[str], seed: int, solve_only: bool) -> dict:
    """One training run of ``python -m ppo.run`` in a fresh process; its metrics and peak RSS (MB)."""
    with tempfile.TemporaryDirectory() as run_dir:
        command = [sys.executable, "-m", "ppo.run", *overrides, f"seed={seed}", "train.progress=false",
                   "train.eval_episodes=0", f"train.stop_when_solved={str(solve_only).lower()}",
                   f"hydra.run.dir={run_dir}", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]
        metrics = _run_measured(command, Path(run_dir) / "metrics.json")
    return metrics


def _run_measured(command: list[str], metrics_file: Path) -> dict:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{stderr}")
    metrics = json.loads(metrics_file.read_text())
    metrics["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return metrics


def summarize(rows: list[dict]) -> str:
    """A Markdown table of the runs, with the median over seeds."""
    lines = ["| seed | steps to solve | seconds to solve | steps/s | episodes | best score | best 100-ep mean "
             "| peak RSS MB |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]

    def fmt(value, spec):
        return "not solved" if value is None else format(value, spec)

    for row in rows:
        lines.append(f"| {row['seed']} | {fmt(row['steps_to_solve'], ',')} | {fmt(row['seconds_to_solve'], '.1f')} "
                     f"| {row['steps_per_second']:,.0f} | {row['episodes']} | {fmt(row['best_score'], '.0f')} "
                     f"| {fmt(row['best_mean_score_100'], '.1f')} "
                     f"| {row['peak_rss_mb']:.0f} |")
    solved = [row for row in rows if row["steps_to_solve"] is not None]
    if len(solved) < len(rows):
        lines.append(f"| median | {len(solved)}/{len(rows)} solved | "
                     f"| {statistics.median(r['steps_per_second'] for r in rows):,.0f} | | | "
                     f"| {statistics.median(r['peak_rss_mb'] for r in rows):.0f} |")
    else:
        lines.append(
            f"| median | {statistics.median(r['steps_to_solve'] for r in solved):,.0f} "
            f"| {statistics.median(r['seconds_to_solve'] for r in solved):.1f} "
            f"| {statistics.median(r['steps_per_second'] for r in rows):,.0f} | | | "
            f"| {statistics.median(r['peak_rss_mb'] for r in rows):.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--solve-only", type=lambda s: s.lower() == "true", default=True,
                        help="stop each run when it solves the env (default true)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run (after --)")
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        rows.append({"seed": seed, **run_ppo(args.overrides, seed, args.solve_only)})
        print(f"seed {seed}: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    print(f"overrides: {' '.join(args.overrides) or '(defaults)'}")
    print(summarize(rows))


if __name__ == "__main__":
    main()
