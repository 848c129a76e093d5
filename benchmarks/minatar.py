"""The MinAtar benchmark: ``experiment=minatar`` on the five games over several seeds, the final greedy
score of each beside the random policy's.

    python benchmarks/minatar.py                                # 5 games, seeds 1 2 3, 500k steps each
    python benchmarks/minatar.py --seeds 1 --steps 200000
    python benchmarks/minatar.py --report-only                  # the table and curves of the runs so far

Each run is ``python -m ppo.run experiment=minatar env.id=MinAtar/<Game>-v1 seed=S`` in its own process (the
real CLI), in ``<out>/<game>/seed_<S>``; one seed of every game runs before the next seed, a run whose
``metrics.json`` exists is not run again, and one stopped on the way is resumed from its checkpoint.
Writes ``minatar.md`` (final greedy score per game: mean ± std over seeds, each seed's, the random
policy's) and ``learning_curves.png`` (the 100-episode mean training score against env steps) into
``--out``. Needs ``pip install -e ".[minatar]"`` (and ``[sweep]`` for the plot).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from suite import run_to_the_end  # beside this script: python puts its folder first on the path

GAMES = {"breakout": "MinAtar/Breakout-v1", "space_invaders": "MinAtar/SpaceInvaders-v1",
         "asterix": "MinAtar/Asterix-v1", "freeway": "MinAtar/Freeway-v1", "seaquest": "MinAtar/Seaquest-v1"}
# Mean score of a uniformly random policy over 30 episodes, measured for issue 13 on MinAtar 1.0.15.
RANDOM_SCORES = {"breakout": 0.37, "space_invaders": 3.2, "asterix": 0.8, "freeway": 0.5, "seaquest": 0.1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/minatar.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", nargs="+", choices=list(GAMES), default=list(GAMES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=500_000, help="train.total_timesteps of each run")
    parser.add_argument("--eval-episodes", type=int, default=20, help="greedy episodes per run after training")
    parser.add_argument("--out", type=Path, default=Path("outputs/minatar"))
    parser.add_argument("--report-only", action="store_true", help="only write the table and curves")
    args = parser.parse_args(argv)
    if not args.report_only:
        for seed in args.seeds:
            for game in args.games:
                train(game, seed, args.out, args.steps, args.eval_episodes)
    table = write_report(args.out, args.games, args.seeds)
    print(table)
    return 0


def train(game: str, seed: int, out: Path, steps: int, eval_episodes: int) -> bool:
    """One run through the CLI; True when it finished (or had before)."""
    return run_to_the_end(f"{game} seed {seed}", out / game / f"seed_{seed}",
                          ["experiment=minatar", f"env.id={GAMES[game]}", f"seed={seed}",
                           f"train.total_timesteps={steps}", f"train.eval_episodes={eval_episodes}"])


def write_report(out: Path, games: list[str], seeds: list[int]) -> str:
    """Write minatar.md and learning_curves.png from the finished runs; return the Markdown table."""
    out.mkdir(parents=True, exist_ok=True)
    lines = ["| game | final greedy score (mean ± std over seeds) | per seed | random policy | steps | steps/s |",
             "| --- | --- | --- | --- | --- | --- |"]
    curves = {}
    for game in games:
        run_dirs = [out / game / f"seed_{seed}" for seed in seeds]
        run_dirs = [run_dir for run_dir in run_dirs if (run_dir / "metrics.json").is_file()]
        if not run_dirs:
            continue
        metrics = [json.loads((run_dir / "metrics.json").read_text()) for run_dir in run_dirs]
        finals = np.array([m["final_score"] for m in metrics if m["final_score"] is not None])  # null: no evaluation
        per_seed = ", ".join(f"{score:.1f}" for score in finals) or "no evaluation"
        mean_std = f"{finals.mean():.1f} ± {finals.std():.1f}" if finals.size else "n/a"
        lines.append(f"| {game} | {mean_std} | {per_seed} | {RANDOM_SCORES[game]} | "
                     f"{metrics[0]['budget']:,} | {np.mean([m['steps_per_second'] for m in metrics]):.0f} |")
        curves[game] = run_dirs
    table = "\n".join(lines)
    (out / "minatar.md").write_text(table + "\n")
    plot(curves, out / "learning_curves.png")
    return table


def plot(curves: dict[str, list[Path]], path: Path) -> None:
    """One panel per game: each seed's 100-episode mean training score against env steps."""
    try:
        from ppo.report import pyplot, read_curve
        plt = pyplot()
    except ImportError:  # matplotlib comes with the sweep extra
        return
    if not curves:
        return
    figure, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.2), squeeze=False)
    for axis, (game, run_dirs) in zip(axes[0], curves.items()):
        for run_dir in run_dirs:
            steps, values = read_curve(run_dir)
            axis.plot(steps, values, linewidth=1, label=run_dir.name)
        axis.axhline(RANDOM_SCORES[game], color="gray", linestyle=":", label="random")
        axis.set_title(f"MinAtar {game}")
        axis.set_xlabel("env steps")
    axes[0][0].set_ylabel("100-episode mean score")
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
