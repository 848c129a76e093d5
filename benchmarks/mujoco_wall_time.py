"""Wall time of HalfCheetah-v5 at RL Zoo's PPO settings: ours (experiment=half_cheetah_tuned) against
Stable-Baselines3 (benchmarks/sb3_ppo.py --env HalfCheetah-v5, the same settings), for the same env
steps, run back to back and alternating so that both see the same machine load. Needs the mujoco and
bench extras (``pip install -e ".[mujoco,bench]"``).

    python benchmarks/mujoco_wall_time.py                       # 100k steps each, 2 rounds
    python benchmarks/mujoco_wall_time.py --steps 200000 --rounds 3

Each run is its own process with one torch thread; its seconds are those of training (ours: from the
first rollout, after the envs are made; SB3: ``learn()``), without evaluation. Prints a Markdown table
of steps/s per run and the ratio of ours to SB3's per round.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def run(command: list[str], metrics_file: Path) -> dict:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr}")
    return json.loads(metrics_file.read_text())


def ours(steps: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as run_dir:
        return run([sys.executable, "-m", "ppo.run", "experiment=half_cheetah_tuned", f"seed={seed}",
                    f"train.total_timesteps={steps}", "train.eval_episodes=0", "train.progress=false",
                    "train.checkpoint_every=0", f"hydra.run.dir={run_dir}"], Path(run_dir) / "metrics.json")


def sb3(steps: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as run_dir:
        metrics_file = Path(run_dir) / "metrics.json"
        return run([sys.executable, str(Path(__file__).with_name("sb3_ppo.py")), "--env", "HalfCheetah-v5",
                    f"--seed={seed}", f"--total-timesteps={steps}", "--no-stop", f"--out={metrics_file}"],
                   metrics_file)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/mujoco_wall_time.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2, help="pairs of runs, ours first then SB3's")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    lines = ["| round | ours: env steps, seconds, steps/s | SB3: env steps, seconds, steps/s | ours / SB3 steps/s |",
             "| --- | --- | --- | --- |"]
    for round_ in range(1, args.rounds + 1):
        mine, theirs = ours(args.steps, args.seed), sb3(args.steps, args.seed)
        lines.append(f"| {round_} | {mine['global_step']:,}, {mine['train_seconds']:.0f} s, "
                     f"{mine['steps_per_second']:.0f} | {theirs['global_step']:,}, {theirs['train_seconds']:.0f} s, "
                     f"{theirs['steps_per_second']:.0f} | {mine['steps_per_second'] / theirs['steps_per_second']:.2f} |")
        print(lines[-1], file=sys.stderr, flush=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
