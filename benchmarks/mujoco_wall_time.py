"""Wall time of HalfCheetah-v5 at RL Zoo's PPO settings: ours (experiment=half_cheetah_tuned) against
Stable-Baselines3 (benchmarks.sb3_ppo --env HalfCheetah-v5, the same settings), for the same env
steps, run back to back and alternating so that both see the same machine load. Needs the mujoco and
bench extras (``pip install -e ".[mujoco,bench]"``).

    python -m benchmarks.mujoco_wall_time                       # 100k steps each, 2 rounds
    python -m benchmarks.mujoco_wall_time --steps 200000 --rounds 3

Each run is its own process with one torch thread; its seconds are those of training (ours: from the
first rollout, after the envs are made; SB3: ``learn()``), without evaluation. Prints a Markdown table
of steps/s per run and the ratio of ours to SB3's per round, and records it, with this command and
the machine, as the ``mujoco_wall_time`` section of ``docs/data/performance.json``, then renders
``docs/performance.md`` (:mod:`benchmarks.pages`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import pages
from ppo.rundir import METRICS_FILE

KEPT = ("global_step", "train_seconds", "steps_per_second")  # of each run's metrics, into the docs data


def run(command: list[str], metrics_file: Path) -> dict:
    # From the checkout's root, where python -m finds benchmarks/; the run dirs are absolute.
    result = subprocess.run(command, capture_output=True, text=True, cwd=pages.ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr}")
    metrics = json.loads(metrics_file.read_text())
    return {key: metrics[key] for key in KEPT}


def ours(steps: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as run_dir:
        return run([sys.executable, "-m", "ppo.run", "experiment=half_cheetah_tuned", f"seed={seed}",
                    f"train.total_timesteps={steps}", "train.eval_episodes=0", "train.progress=false",
                    "train.checkpoint_every=0", f"hydra.run.dir={run_dir}"], Path(run_dir) / METRICS_FILE)


def sb3(steps: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as run_dir:
        metrics_file = Path(run_dir) / METRICS_FILE
        return run([sys.executable, "-m", "benchmarks.sb3_ppo", "--env", "HalfCheetah-v5", f"--seed={seed}",
                    f"--total-timesteps={steps}", "--no-stop", f"--out={metrics_file}"], metrics_file)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mujoco_wall_time",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2, help="pairs of runs, ours first then SB3's")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    rounds = []
    for round_ in range(1, args.rounds + 1):
        rounds.append({"ours": ours(args.steps, args.seed), "sb3": sb3(args.steps, args.seed)})
        print(f"round {round_}: {json.dumps(rounds[-1])}", file=sys.stderr, flush=True)
    section = {"command": pages.command("benchmarks.mujoco_wall_time", argv), "machine": pages.machine(),
               "rounds": rounds}
    print(pages.record("performance", "mujoco_wall_time", section))
    return 0


if __name__ == "__main__":
    sys.exit(main())
