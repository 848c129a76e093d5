"""The Atari benchmark: ``experiment=atari`` on Breakout and Pong, the learning curve beside CleanRL's
published PPO curve at the same env step.

    python -m benchmarks.atari                                  # Breakout and Pong, seed 1, 1M steps each
    python -m benchmarks.atari --games pong --steps 2000000
    python -m benchmarks.atari --report-only                    # the table and curves of the runs so far
    python -m benchmarks.atari --render                         # docs/pixels.md from its data

Each run is ``python -m ppo.run experiment=atari env.id=ALE/<Game>-v5 seed=S`` in its own process (the
real CLI), in ``<out>/<game>/seed_<S>``, with a checkpoint every 25 updates: a run whose
``metrics.json`` exists is not run again, and one stopped on the way is resumed from its checkpoint.
Writes ``atari.md`` (per run: the 100-episode mean training score at 0.25M, 0.5M and 1M env steps
beside CleanRL's, the final greedy score) and ``learning_curves.png`` into ``--out``, then (unless
``--report-only``) records the runs, this command and the machine in ``docs/data/pixels.json`` and
renders ``docs/pixels.md`` (:mod:`benchmarks.pages`). Needs ``pip install -e ".[atari]"`` (and
``[sweep]`` for the plot).

CleanRL's numbers are ``ppo_atari.py`` on ``<Game>NoFrameskip-v4`` (3 seeds; the settings of
``experiment=atari``, which also clips the value loss): the 10M-step score is its published table, the
curve its published figure, read at these steps by pixel (the figure's own 10M-step point reads 416.3
against the table's 414.7, so a reading is good to about ±1 on Breakout's scale, ±0.3 on Pong's).
An env step is 4 frames in both.
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

GAMES = {"breakout": "ALE/Breakout-v5", "pong": "ALE/Pong-v5"}
CLEANRL_SOURCE = ("CleanRL docs/rl-algorithms/ppo.md (ppo_atari.py table) and docs/rl-algorithms/ppo/"
                  "<Game>NoFrameskip-v4.png, github.com/vwxyzjn/cleanrl at commit fe8d8a03")
# Mean episodic return of CleanRL's ppo_atari.py at these env steps, read off its published figure.
CLEANRL_CURVE = {
    "breakout": {250_000: 6.5, 500_000: 10.9, 750_000: 14.5, 1_000_000: 19.5, 1_500_000: 32.5, 2_000_000: 49.8},
    "pong": {250_000: -20.4, 500_000: -19.3, 750_000: -14.4, 1_000_000: -8.5, 1_500_000: 5.5, 2_000_000: 12.9},
}
# Its published score after 10M env steps: mean ± std over 3 seeds of each run's last 100 episodes.
CLEANRL_10M = {"breakout": (414.66, 28.09), "pong": (20.36, 0.20)}
REPORT_STEPS = (250_000, 500_000, 1_000_000)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks.atari", description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", nargs="+", choices=list(GAMES), default=list(GAMES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--steps", type=int, default=1_000_000, help="train.total_timesteps of each run")
    parser.add_argument("--eval-episodes", type=int, default=10, help="greedy episodes per run after training")
    parser.add_argument("--out", type=Path, default=Path("outputs/atari"))
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
                run_to_the_end(f"{game} seed {seed}", args.out / game / f"seed_{seed}",
                               ["experiment=atari", f"env.id={GAMES[game]}", f"seed={seed}",
                                f"train.total_timesteps={args.steps}", "train.checkpoint_every=25",
                                f"train.eval_episodes={args.eval_episodes}"])
    section = write_report(args.out, args.games, args.seeds, pages.command("benchmarks.atari", argv))
    print("\n".join(pages.atari_table(section)))
    if section["runs"] and not args.report_only:
        pages.record("pixels", "atari", section)
    return 0


def score_at(curve: tuple[np.ndarray, np.ndarray], step: int) -> float | None:
    """The 100-episode mean training score at env ``step`` (interpolated), None before the curve or
    past its end."""
    steps, values = curve
    if not steps.size or step < steps[0] or step > steps[-1]:
        return None
    return float(np.interp(step, steps, values))


def write_report(out: Path, games: list[str], seeds: list[int], command: str) -> dict:
    """Write atari.md and learning_curves.png from the runs so far; return them as the section of
    docs/data/pixels.json that ``command`` makes, with CleanRL's numbers they stand beside."""
    out.mkdir(parents=True, exist_ok=True)
    runs, curves = [], {}
    for game in games:
        for seed in seeds:
            run_dir = out / game / f"seed_{seed}"
            curve = read_curve(run_dir)
            if not curve[0].size:
                continue
            curves.setdefault(game, []).append(curve)
            metrics_path = run_dir / METRICS_FILE
            metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
            runs.append({
                "game": game, "env_id": GAMES[game], "seed": seed, "env_steps": int(curve[0][-1]),
                "scores_at": [score_at(curve, step) for step in REPORT_STEPS],
                "final_score": metrics.get("final_score"), "final_score_std": metrics.get("final_score_std"),
                "eval_episodes": OmegaConf.load(run_dir / ".hydra" / "config.yaml").train.eval_episodes,
                "steps_per_second": metrics.get("steps_per_second"), "train_seconds": metrics.get("train_seconds"),
            })
    section = {
        "command": command, "machine": pages.machine(), "report_steps": list(REPORT_STEPS),
        "cleanrl": {"source": CLEANRL_SOURCE,
                    "curve": {game: {str(step): score for step, score in curve.items()}
                              for game, curve in CLEANRL_CURVE.items()},
                    "score_10m": {game: list(score) for game, score in CLEANRL_10M.items()}},
        "runs": runs,
    }
    (out / "atari.md").write_text("\n".join(pages.atari_table(section)) + f"\n\nCleanRL: {CLEANRL_SOURCE}.\n")
    if curves:
        plot(curves, out / "learning_curves.png")
    return section


def plot(curves: dict[str, list[tuple[np.ndarray, np.ndarray]]], path: Path) -> None:
    """One panel per game: our seeds' 100-episode mean training score against env steps, and CleanRL's
    curve as read at its points."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(5.5 * len(curves), 4), squeeze=False)
    for ax, (game, runs) in zip(axes[0], curves.items()):
        for i, (steps, values) in enumerate(runs):
            ax.plot(steps, values, color="C0", label="ours (100-episode mean)" if i == 0 else None)
        last = max(steps[-1] for steps, _ in runs)
        points = sorted((step, value) for step, value in CLEANRL_CURVE[game].items() if step <= last * 1.05)
        ax.plot(*zip(*points), "o--", color="C3", label="CleanRL ppo_atari.py (3 seeds, read off its figure)")
        ax.set(title=GAMES[game], xlabel="env steps (x4 frames)", ylabel="episode score")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
