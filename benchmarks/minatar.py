"""The MinAtar benchmark: ``experiment=minatar`` on the five games over several seeds, the final greedy
score of each beside the random policy's.

    python -m benchmarks.minatar                                # 5 games, seeds 1 2 3, 500k steps each
    python -m benchmarks.minatar --seeds 1 --steps 200000
    python -m benchmarks.minatar --report-only                  # the table and curves of the runs so far
    python -m benchmarks.minatar --render                       # docs/pixels.md from its data

Each run is ``python -m ppo.run experiment=minatar env.id=MinAtar/<Game>-v1 seed=S`` in its own process (the
real CLI), in ``<out>/<game>/seed_<S>``; one seed of every game runs before the next seed, a run whose
``metrics.json`` exists is not run again, and one stopped on the way is resumed from its checkpoint.
Writes ``minatar.md`` (final greedy score per game: mean ± std over seeds, each seed's, the random
policy's) and ``learning_curves.png`` (the 100-episode mean training score against env steps) into
``--out``, then (unless ``--report-only``) records the table, this command and the machine in
``docs/data/pixels.json`` and renders ``docs/pixels.md`` (:mod:`benchmarks.pages`). Needs
``pip install -e ".[minatar]"`` (and ``[sweep]`` for the plot).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from benchmarks import pages
from benchmarks.suite import run_to_the_end
from ppo.report.plots import pyplot
from ppo.report.runs import read_curve
from ppo.rundir import METRICS_FILE

GAMES = {"breakout": "MinAtar/Breakout-v1", "space_invaders": "MinAtar/SpaceInvaders-v1",
         "asterix": "MinAtar/Asterix-v1", "freeway": "MinAtar/Freeway-v1", "seaquest": "MinAtar/Seaquest-v1"}
RANDOM_SOURCE = "the mean score of a uniformly random policy over 30 episodes, MinAtar 1.0.15"
RANDOM_SCORES = {"breakout": 0.37, "space_invaders": 3.2, "asterix": 0.8, "freeway": 0.5, "seaquest": 0.1}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks.minatar", description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", nargs="+", choices=list(GAMES), default=list(GAMES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=500_000, help="train.total_timesteps of each run")
    parser.add_argument("--eval-episodes", type=int, default=20, help="greedy episodes per run after training")
    parser.add_argument("--out", type=Path, default=Path("outputs/minatar"))
    parser.add_argument("--report-only", action="store_true",
                        help="only write the table and curves of the runs so far; record nothing in docs/")
    parser.add_argument("--render", action="store_true",
                        help="only render docs/pixels.md from its committed data file, run nothing")
    args = parser.parse_args(argv)
    if args.render:
        print(pages.write_page("pixels"))
        return 0
    if not args.report_only:
        for seed in args.seeds:
            for game in args.games:
                train(game, seed, args.out, args.steps, args.eval_episodes)
    rows = write_report(args.out, args.games, args.seeds)
    print("\n".join(pages.minatar_table(rows)))
    if rows and not args.report_only:
        section = {"command": pages.command("benchmarks.minatar", argv), "machine": pages.machine(),
                   "random_source": RANDOM_SOURCE, "rows": rows}
        pages.record("pixels", "minatar", section)
    return 0


def train(game: str, seed: int, out: Path, steps: int, eval_episodes: int) -> bool:
    """One run through the CLI; True when it finished (or had before)."""
    return run_to_the_end(f"{game} seed {seed}", out / game / f"seed_{seed}",
                          ["experiment=minatar", f"env.id={GAMES[game]}", f"seed={seed}",
                           f"train.total_timesteps={steps}", f"train.eval_episodes={eval_episodes}"])


def write_report(out: Path, games: list[str], seeds: list[int]) -> list[dict]:
    """Write minatar.md and learning_curves.png from the finished runs; return the table's rows, a game
    each: its seeds' final greedy scores (population std over seeds), the random policy's, steps/s."""
    out.mkdir(parents=True, exist_ok=True)
    rows, curves = [], {}
    for game in games:
        run_dirs = [out / game / f"seed_{seed}" for seed in seeds]
        run_dirs = [run_dir for run_dir in run_dirs if (run_dir / METRICS_FILE).is_file()]
        if not run_dirs:
            continue
        metrics = [json.loads((run_dir / METRICS_FILE).read_text()) for run_dir in run_dirs]
        evaluated = [m for m in metrics if m["final_score"] is not None]  # null: no evaluation
        finals = np.array([m["final_score"] for m in evaluated])
        rows.append({
            "game": game, "env_id": GAMES[game], "budget": metrics[0]["budget"],
            "seeds": [int(run_dir.name.removeprefix("seed_")) for run_dir in run_dirs],
            "seed_scores": finals.tolist(), "score_mean": float(finals.mean()) if finals.size else None,
            "score_std": float(finals.std()) if finals.size else None, "random_score": RANDOM_SCORES[game],
            "steps_per_second": float(np.mean([m["steps_per_second"] for m in metrics])),
            "eval_episodes": OmegaConf.load(run_dirs[0] / ".hydra" / "config.yaml").train.eval_episodes,
        })
        curves[game] = run_dirs
    (out / "minatar.md").write_text("\n".join(pages.minatar_table(rows)) + "\n")
    plot(curves, out / "learning_curves.png")
    return rows


def plot(curves: dict[str, list[Path]], path: Path) -> None:
    """One panel per game: each seed's 100-episode mean training score against env steps."""
    if not curves:
        return
    plt = pyplot()
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
