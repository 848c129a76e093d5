"""The environment suite benchmark: every env's tuned experiment over several seeds at RL Zoo's step
budget, its final greedy score beside the score RL Zoo publishes for PPO on the same env and budget.

    python benchmarks/suite.py                                   # every env, seeds 1 2 3, 2 runs at once
    python benchmarks/suite.py --seeds 1 2 3 4 5 --envs pendulum mountain_car_continuous
    python benchmarks/suite.py --out outputs/suite --report-only # table and plots of the runs so far

Each run is ``python -m ppo.run experiment=<env>_tuned seed=S`` in its own process (the real CLI),
in ``<out>/<env>/seed_<S>``; a run whose ``metrics.json`` exists is not run again, so a stopped
benchmark continues where it was. Writes into ``--out``:

* ``suite.md``: per env, the final greedy score (``train.eval_episodes`` episodes per seed, acting on
  the mean action or the most likely one) as mean ± std over seeds and over all episodes pooled, how
  many seeds reach the solved score, the best 100-episode training mean, the training seconds, and
  RL Zoo's published PPO score;
* ``suite.csv``: the same, one column per number;
* ``learning_curves.png``: per env, the 100-episode mean training score against env steps (mean ±
  std over seeds), with RL Zoo's score and the solved score as horizontal lines.

Box2D envs (the LunarLanders) need ``pip install -e ".[box2d]"``; without it they are left out.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import math
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ppo.report import mean_curve, pyplot, read_curve

RL_ZOO_BENCHMARK = ("rl-baselines3-zoo benchmark.md, commit 0088472b8cb622732bdbc4aa3d0d0abde86c67ed: "
                    "https://github.com/DLR-RM/rl-baselines3-zoo/blob/0088472b8cb622732bdbc4aa3d0d0abde86c67ed/"
                    "benchmark.md")


@dataclass(frozen=True)
class Published:
    """RL Zoo's PPO result for an env: one trained agent (one seed), its deterministic policy evaluated
    over about 150k env steps; mean ± std over those episodes, after ``budget`` training steps."""

    env_id: str
    mean: float
    std: float
    episodes: int
    budget: int


# From RL_ZOO_BENCHMARK. RL Zoo's LunarLanders are the v2 envs, which gymnasium 1.x replaced with v3
# (same task; v3 fixed determinism and the wind). Its Pendulum and MountainCarContinuous agents explore
# with gSDE, which this framework does not have.
PUBLISHED = {
    "cartpole": Published("CartPole-v1", 500.000, 0.000, 300, 100_000),
    "acrobot": Published("Acrobot-v1", -73.506, 18.201, 2013, 1_000_000),
    "mountain_car": Published("MountainCar-v0", -110.423, 19.473, 1358, 1_000_000),
    "lunar_lander": Published("LunarLander-v2", 242.119, 31.823, 369, 1_000_000),
    "pendulum": Published("Pendulum-v1", -172.225, 104.159, 750, 100_000),
    "mountain_car_continuous": Published("MountainCarContinuous-v0", 88.343, 2.572, 633, 20_000),
    "lunar_lander_continuous": Published("LunarLanderContinuous-v2", 270.863, 32.072, 526, 1_000_000),
}
BOX2D_ENVS = {"lunar_lander", "lunar_lander_continuous"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/suite.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=list(PUBLISHED), choices=list(PUBLISHED), metavar="ENV",
                        help=f"env presets to train (default: all of {', '.join(PUBLISHED)})")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (one torch thread each)")
    parser.add_argument("--eval-episodes", type=int, default=20, help="greedy episodes per seed after training")
    parser.add_argument("--out", type=Path, default=Path("outputs/suite"))
    parser.add_argument("--report-only", action="store_true", help="only write the table and plots")
    args = parser.parse_args(argv)

    envs = [env for env in args.envs if env not in BOX2D_ENVS or importlib.util.find_spec("Box2D")]
    if len(envs) < len(args.envs):
        print(f"left out {', '.join(sorted(set(args.envs) - set(envs)))}: Box2D is not installed "
              '(pip install -e ".[box2d]")', file=sys.stderr)
    if not args.report_only:
        # The longest runs first, so that the short ones fill the gaps at the end.
        runs = sorted(((env, seed) for env in envs for seed in args.seeds),
                      key=lambda run: -PUBLISHED[run[0]].budget)
        with ThreadPoolExecutor(args.jobs) as pool:
            failed = [run for run, ok in zip(runs, pool.map(lambda run: train(*run, args.out, args.eval_episodes),
                                                             runs)) if not ok]
        if failed:
            print(f"failed: {failed}", file=sys.stderr)
    table = write_report(args.out, envs, args.seeds)
    print(table)
    return 0


def train(env: str, seed: int, out: Path, eval_episodes: int) -> bool:
    """One run of the env's tuned experiment through the CLI; True when it finished (or had before)."""
    run_dir = out / env / f"seed_{seed}"
    if (run_dir / "metrics.json").is_file():
        return True
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "ppo.run", f"experiment={env}_tuned", f"seed={seed}", "train.progress=false",
         f"train.eval_episodes={eval_episodes}", f"hydra.run.dir={run_dir}"],
        capture_output=True, text=True)
    last_line = (result.stderr.strip().splitlines() or ["no message"])[-1]
    status = "done" if result.returncode == 0 else f"FAILED (exit {result.returncode}: {last_line})"
    print(f"{env} seed {seed}: {status} in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return result.returncode == 0


def write_report(out: Path, envs: list[str], seeds: list[int]) -> str:
    """Write suite.md, suite.csv and learning_curves.png from the finished runs; return the table."""
    out.mkdir(parents=True, exist_ok=True)
    rows, curves = [], {}
    for env in envs:
        run_dirs = [out / env / f"seed_{seed}" for seed in seeds]
        finished = [run_dir for run_dir in run_dirs if (run_dir / "metrics.json").is_file()]
        if not finished:
            continue
        metrics = [json.loads((run_dir / "metrics.json").read_text()) for run_dir in finished]
        configs = [_saved_config(run_dir) for run_dir in finished]
        if len({config["train"]["eval_episodes"] for config in configs}) > 1:
            print(f"{env}: the seeds played different numbers of evaluation episodes; the pooled std "
                  "assumes the same number", file=sys.stderr)
        rows.append(summarize(env, metrics, configs[0]))
        curves[env] = [read_curve(run_dir) for run_dir in finished]
    table = markdown(rows)
    (out / "suite.md").write_text(table + "\n")
    (out / "suite.csv").write_text(to_csv(rows))
    plot(curves, rows, out / "learning_curves.png")
    return table


def _saved_config(run_dir: Path) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "config.yaml"))


def summarize(env: str, metrics: list[dict], config: dict) -> dict:
    """One env's row: our numbers over its seeds, and RL Zoo's."""
    means = np.array([m["final_score"] for m in metrics])
    stds = np.array([m.get("final_score_std", math.nan) for m in metrics])
    # All episodes pooled (each seed plays the same number): the mean of the seed means, and the
    # variance within seeds plus the variance of the seed means around it.
    pooled_std = math.sqrt(np.mean(stds**2 + (means - means.mean()) ** 2))
    threshold = config["env"]["solved_score"]
    published = PUBLISHED[env]
    return {
        "env": env, "env_id": config["env"]["id"], "budget": config["train"]["total_timesteps"],
        "seeds": len(metrics), "score_mean": means.mean(), "score_std_over_seeds": means.std(ddof=1) if len(means) > 1 else 0.0,
        "score_std_pooled": pooled_std, "eval_episodes": config["train"]["eval_episodes"],
        "solved_score": threshold, "seeds_solved": int(np.sum(means >= threshold)) if threshold is not None else None,
        # None where no seed finished 100 training episodes (MountainCarContinuous in 20k steps)
        "best_mean_100": _mean_or_none([m["best_mean_score_100"] for m in metrics]),
        "train_seconds": np.mean([m["train_seconds"] for m in metrics]),
        "rl_zoo_env": published.env_id, "rl_zoo_mean": published.mean, "rl_zoo_std": published.std,
        "rl_zoo_budget": published.budget,
    }


def _mean_or_none(values: list) -> float | None:
    values = [value for value in values if value is not None]
    return float(np.mean(values)) if values else None


def markdown(rows: list[dict]) -> str:
    lines = [
        "| env | budget (steps) | ours: final score, mean ± std over seeds | ours: all eval episodes | "
        "seeds with final score ≥ solved score | best 100-ep training mean | train s per run | RL Zoo PPO (1 seed) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        solved = f"{r['seeds_solved']}/{r['seeds']} (≥ {r['solved_score']:g})" if r["solved_score"] is not None else "—"
        best_mean = f"{r['best_mean_100']:.1f}" if r["best_mean_100"] is not None else "— (< 100 episodes)"
        lines.append(
            f"| {r['env_id']} | {r['budget']:,} | {r['score_mean']:.1f} ± {r['score_std_over_seeds']:.1f} "
            f"({r['seeds']} seeds) | {r['score_mean']:.1f} ± {r['score_std_pooled']:.1f} "
            f"({r['seeds'] * r['eval_episodes']} episodes) | {solved} | {best_mean} "
            f"| {r['train_seconds']:.0f} | {r['rl_zoo_mean']:.1f} ± {r['rl_zoo_std']:.1f} "
            f"({r['rl_zoo_env']}, {r['rl_zoo_budget']:,} steps) |")
    lines.append("")
    lines.append(f"RL Zoo's scores: {RL_ZOO_BENCHMARK} (PPO rows; one agent per env, deterministic evaluation "
                 "over about 150k steps; its Pendulum and MountainCarContinuous agents use gSDE).")
    return "\n".join(lines)


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def plot(curves: dict[str, list], rows: list[dict], path: Path) -> None:
    """Small multiples, one panel per env: mean ± std band over seeds of the 100-episode mean score."""
    if not curves:
        return
    plt = pyplot()
    columns = min(4, len(curves))
    n_rows = math.ceil(len(curves) / columns)
    fig, axes = plt.subplots(n_rows, columns, figsize=(4.2 * columns, 3.3 * n_rows), squeeze=False)
    by_env = {row["env"]: row for row in rows}
    for ax, (env, env_curves) in zip(axes.flat, curves.items()):
        row = by_env[env]
        if any(steps.size for steps, _ in env_curves):
            grid, mean, std = mean_curve(env_curves)
            ax.plot(grid, mean, color="C0", label=f"ours, {row['seeds']} seeds")
            ax.fill_between(grid, mean - std, mean + std, color="C0", alpha=0.25)
        ax.axhline(row["rl_zoo_mean"], color="C3", linestyle="--", label="RL Zoo PPO (final)")
        if row["solved_score"] is not None:
            ax.axhline(row["solved_score"], color="grey", linestyle=":", label="solved score")
        ax.set_title(row["env_id"], fontsize=10)
        ax.set_xlabel("env steps")
        ax.set_ylabel("100-episode mean score")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(curves):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
