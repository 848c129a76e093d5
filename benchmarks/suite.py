"""The environment suite benchmark: every env's tuned experiment over several seeds at RL Zoo's step
budget, its final greedy score beside the score RL Zoo publishes for PPO on the same env and budget.

    python -m benchmarks.suite                                   # every env, seeds 1 2 3, 2 runs at once
    python -m benchmarks.suite --seeds 1 2 3 4 5 --envs pendulum mountain_car_continuous
    python -m benchmarks.suite --out outputs/suite --report-only # table and plots of the runs so far
    python -m benchmarks.suite --suite mujoco                    # the MuJoCo suite, into outputs/mujoco
    python -m benchmarks.suite --render                          # docs/classic_control.md from its data

``--suite classic`` (the default) is classic control and Box2D; ``--suite mujoco`` is HalfCheetah,
Hopper, Walker2d, Ant and Swimmer (v5), 1M steps each. Each run is ``python -m ppo.run
experiment=<env>_tuned seed=S`` in its own process (the real CLI), in ``<out>/<env>/seed_<S>``; a run
whose ``metrics.json`` exists is not run again, and one stopped on the way is resumed from its
checkpoint (``python -m ppo.run resume=<run dir>``), so a stopped benchmark continues where it was.
Writes into ``--out``:

* ``suite.md``: per env, the final greedy score (``train.eval_episodes`` episodes per seed, acting on
  the mean action or the most likely one) as mean ± std over seeds and over all episodes pooled, how
  many seeds reach the solved score, the best 100-episode training mean, the training seconds, and
  RL Zoo's published PPO score; below it, each unfinished run's last 100-episode training mean, as
  partial results that the table leaves out;
* ``suite.csv``: the same, one column per number;
* ``learning_curves.png``: per env, the 100-episode mean training score against env steps (mean ±
  std over seeds; unfinished runs included, as far as they got), with RL Zoo's score and the solved
  score as horizontal lines.

Then (unless ``--report-only``) it records the finished envs' rows, with this command and the
machine, in the suite's data file (``docs/data/classic_control.json`` or ``docs/data/mujoco.json``;
rows of envs it did not finish stay as they were) and renders the docs page from it
(:mod:`benchmarks.pages`).

Box2D envs (the LunarLanders) need ``pip install -e ".[box2d]"``, MuJoCo envs ``pip install -e
".[mujoco]"``; without them they are left out.
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

from benchmarks import pages
from ppo.report.plots import pyplot
from ppo.report.runs import read_curve
from ppo.report.stats import mean_curve
from ppo.rundir import CHECKPOINT_FILE, METRICS_FILE

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
    # RL Zoo's MuJoCo envs are the v3 ids of mujoco-py; gymnasium 1.x has v5 (docs/mujoco.md says what
    # changed). Its Swimmer agent was trained before RL Zoo retuned Swimmer (PR #335).
    "half_cheetah": Published("HalfCheetah-v3", 5819.099, 663.530, 150, 1_000_000),
    "hopper": Published("Hopper-v3", 2410.435, 10.026, 150, 1_000_000),
    "walker2d": Published("Walker2d-v3", 3478.798, 821.708, 171, 1_000_000),
    "ant": Published("Ant-v3", 1327.158, 451.577, 175, 1_000_000),
    "swimmer": Published("Swimmer-v3", 281.561, 9.671, 150, 1_000_000),
}
SUITES = {
    "classic": ["cartpole", "acrobot", "mountain_car", "lunar_lander", "pendulum", "mountain_car_continuous",
                "lunar_lander_continuous"],
    "mujoco": ["half_cheetah", "hopper", "walker2d", "ant", "swimmer"],
}
PAGES = {"classic": "classic_control", "mujoco": "mujoco"}  # suite -> its docs page
# env -> (the module it needs, the extra that installs it)
NEEDS = {"lunar_lander": ("Box2D", "box2d"), "lunar_lander_continuous": ("Box2D", "box2d"),
         **{env: ("mujoco", "mujoco") for env in SUITES["mujoco"]}}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks.suite", description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=list(SUITES), default="classic",
                        help="the envs to train when --envs is not given, the default --out, and the docs page")
    parser.add_argument("--envs", nargs="+", choices=list(PUBLISHED), metavar="ENV",
                        help=f"env presets to train (default: the suite's; any of {', '.join(PUBLISHED)})")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (one torch thread each)")
    parser.add_argument("--eval-episodes", type=int, default=20, help="greedy episodes per seed after training")
    parser.add_argument("--out", type=Path, help="default: outputs/suite (classic), outputs/mujoco (mujoco)")
    parser.add_argument("--report-only", action="store_true",
                        help="only write the table and plots of the runs so far; record nothing in docs/")
    parser.add_argument("--render", action="store_true",
                        help="only render the suite's docs page from its committed data file, run nothing")
    args = parser.parse_args(argv)
    if args.render:
        print(pages.write_page(PAGES[args.suite]))
        return 0
    args.envs = args.envs or SUITES[args.suite]
    args.out = args.out or Path("outputs/suite" if args.suite == "classic" else f"outputs/{args.suite}")

    envs = [env for env in args.envs if env not in NEEDS or importlib.util.find_spec(NEEDS[env][0])]
    for module, extra in sorted({NEEDS[env] for env in set(args.envs) - set(envs)}):
        left_out = [env for env in args.envs if NEEDS.get(env) == (module, extra)]
        print(f'left out {", ".join(left_out)}: {module} is not installed (pip install -e ".[{extra}]")',
              file=sys.stderr)
    if not args.report_only:
        # The longest runs first, so that the short ones fill the gaps at the end; among equals, one
        # seed of every env before the next seed, so that a stopped benchmark has every env.
        runs = sorted(((env, seed) for env in envs for seed in args.seeds),
                      key=lambda run: (-PUBLISHED[run[0]].budget, args.seeds.index(run[1])))
        with ThreadPoolExecutor(args.jobs) as pool:
            failed = [run for run, ok in zip(runs, pool.map(lambda run: train(*run, args.out, args.eval_episodes),
                                                             runs)) if not ok]
        if failed:
            print(f"failed: {failed}", file=sys.stderr)
    rows, table = write_report(args.out, envs, args.seeds)
    print(table)
    if rows and not args.report_only:
        print(f"recorded in {record(args.suite, rows, pages.command('benchmarks.suite', argv))}", file=sys.stderr)
    return 0


def record(suite: str, rows: list[dict], command: str) -> Path:
    """Put the finished envs' rows into the suite's docs data and render its page; the page's path.
    Rows of the whole suite make a new section; rows of some envs replace those envs' rows and keep
    their own command and machine, which the page names beside the section's."""
    page = PAGES[suite]
    if {row["env"] for row in rows} == set(SUITES[suite]):
        section = {"command": command, "machine": pages.machine(), "rl_zoo_source": RL_ZOO_BENCHMARK, "rows": rows}
    else:
        section = pages.load(page)["suite"]
        rows_by_env = {row["env"]: row for row in section["rows"]}
        rows_by_env.update({row["env"]: {**row, "command": command, "machine": pages.machine()} for row in rows})
        section["rows"] = [rows_by_env[env] for env in SUITES[suite] if env in rows_by_env]
    pages.record(page, "suite", section)
    return pages.DOCS / f"{page}.md"


def train(env: str, seed: int, out: Path, eval_episodes: int) -> bool:
    """One run of the env's tuned experiment through the CLI; True when it finished (or had before)."""
    return run_to_the_end(f"{env} seed {seed}", out / env / f"seed_{seed}",
                          [f"experiment={env}_tuned", f"seed={seed}", f"train.eval_episodes={eval_episodes}"])


def run_to_the_end(label: str, run_dir: Path, overrides: list[str]) -> bool:
    """Train ``run_dir`` through the CLI with ``overrides``, or resume it where a stopped run left its
    checkpoint; True when it finished (or had before). Prints one line per run, led by ``label``."""
    if (run_dir / METRICS_FILE).is_file():
        return True
    start = time.perf_counter()
    if (run_dir / CHECKPOINT_FILE).is_file():  # stopped on the way: go on from its checkpoint
        arguments = [f"resume={run_dir}", "train.progress=false"]
    else:
        arguments = [*overrides, "train.progress=false", f"hydra.run.dir={run_dir}"]
    result = subprocess.run([sys.executable, "-m", "ppo.run", *arguments], capture_output=True, text=True)
    last_line = (result.stderr.strip().splitlines() or ["no message"])[-1]
    status = "done" if result.returncode == 0 else f"FAILED (exit {result.returncode}: {last_line})"
    print(f"{label}: {status} in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return result.returncode == 0


def write_report(out: Path, envs: list[str], seeds: list[int]) -> tuple[list[dict], str]:
    """Write suite.md, suite.csv and learning_curves.png from the runs: the table of the finished
    ones, the unfinished ones' progress below it, and every run's curve; return the finished envs'
    rows (:func:`summarize`) and the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    rows, curves, unfinished = [], {}, []
    for env in envs:
        run_dirs = [out / env / f"seed_{seed}" for seed in seeds]
        finished = [run_dir for run_dir in run_dirs if (run_dir / METRICS_FILE).is_file()]
        started = [run_dir for run_dir in run_dirs
                   if run_dir not in finished and (run_dir / ".hydra" / "config.yaml").is_file()]
        unfinished += [progress_so_far(env, run_dir) for run_dir in started]
        if started:
            curves[env] = [read_curve(run_dir) for run_dir in started]
        if not finished:
            continue
        metrics = [json.loads((run_dir / METRICS_FILE).read_text()) for run_dir in finished]
        configs = [_saved_config(run_dir) for run_dir in finished]
        if len({config["train"]["eval_episodes"] for config in configs}) > 1:
            print(f"{env}: the seeds played different numbers of evaluation episodes; the pooled std "
                  "assumes the same number", file=sys.stderr)
        rows.append(summarize(env, metrics, configs[0]))
        curves[env] = [read_curve(run_dir) for run_dir in finished] + curves.get(env, [])
    table = markdown(rows, unfinished)
    (out / "suite.md").write_text(table + "\n")
    (out / "suite.csv").write_text(to_csv(rows))
    plot(curves, rows, unfinished, out / "learning_curves.png")
    return rows, table


def progress_so_far(env: str, run_dir: Path) -> dict:
    """An unfinished run's partial result: its last 100-episode training mean (``episode/mean_score_100``,
    the mean of fewer episodes before the 100th) and the env step it was logged at."""
    config = _saved_config(run_dir)
    steps, values = read_curve(run_dir)
    return {"env": env, "env_id": config["env"]["id"], "seed": config["seed"],
            "budget": config["train"]["total_timesteps"], "solved_score": _solved_score(config),
            "step": int(steps[-1]) if steps.size else 0, "mean_100": float(values[-1]) if values.size else None}


def _solved_score(config: dict) -> float | None:
    """The run's solved score, as training reads it from the run's saved env config."""
    from omegaconf import OmegaConf

    from ppo.envs import solved_score

    return solved_score(OmegaConf.create(config["env"]))


def _saved_config(run_dir: Path) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "config.yaml"))


def summarize(env: str, metrics: list[dict], config: dict) -> dict:
    """One env's row: our numbers over its seeds (and each seed's final score), and RL Zoo's."""
    means = np.array([m["final_score"] for m in metrics])
    stds = np.array([m.get("final_score_std", math.nan) for m in metrics])
    # All episodes pooled (each seed plays the same number): the mean of the seed means, and the
    # variance within seeds plus the variance of the seed means around it.
    pooled_std = math.sqrt(np.mean(stds**2 + (means - means.mean()) ** 2))
    threshold = _solved_score(config)
    published = PUBLISHED[env]
    return {
        "env": env, "env_id": config["env"]["id"], "budget": config["train"]["total_timesteps"],
        "seeds": len(metrics), "score_mean": means.mean(),
        "score_std_over_seeds": means.std(ddof=1) if len(means) > 1 else 0.0, "seed_scores": means.tolist(),
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


def markdown(rows: list[dict], unfinished: list[dict] = ()) -> str:
    lines = [*pages.suite_table(rows), ""]
    lines.append(f"RL Zoo's scores: {RL_ZOO_BENCHMARK} (PPO rows; one agent per env, deterministic evaluation "
                 "over about 150k steps; its Pendulum and MountainCarContinuous agents use gSDE).")
    if unfinished:
        lines += ["", "Unfinished runs, not in the table (partial: the last 100-episode training mean of the "
                      "sampling policy, not a greedy evaluation):", ""]
        for r in unfinished:
            mean = f"{r['mean_100']:,.1f}" if r["mean_100"] is not None else "no episode finished"
            lines.append(f"- {r['env_id']} seed {r['seed']}: {mean} at env step {r['step']:,} of {r['budget']:,}")
    return "\n".join(lines)


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def plot(curves: dict[str, list], rows: list[dict], unfinished: list[dict], path: Path) -> None:
    """Small multiples, one panel per env: mean ± std band over seeds of the 100-episode mean score,
    unfinished runs included as far as they got."""
    if not curves:
        return
    plt = pyplot()
    columns = min(4, len(curves))
    n_rows = math.ceil(len(curves) / columns)
    fig, axes = plt.subplots(n_rows, columns, figsize=(4.2 * columns, 3.3 * n_rows), squeeze=False)
    by_env = {row["env"]: row for row in rows}
    for ax, (env, env_curves) in zip(axes.flat, curves.items()):
        partial = [r for r in unfinished if r["env"] == env]
        row = by_env.get(env) or partial[0]  # the env's id and solved score
        if any(steps.size for steps, _ in env_curves):
            grid, mean, std = mean_curve(env_curves)
            seeds = f"{len(env_curves)} seed" + ("s" if len(env_curves) > 1 else "")
            label = f"ours, {seeds}" + (f" ({len(partial)} unfinished)" if partial else "")
            ax.plot(grid, mean, color="C0", label=label)
            ax.fill_between(grid, mean - std, mean + std, color="C0", alpha=0.25)
        ax.axhline(PUBLISHED[env].mean, color="C3", linestyle="--", label="RL Zoo PPO (final)")
        if row["solved_score"] is not None:
            ax.axhline(row["solved_score"], color="grey", linestyle=":", label="solved score")
        ax.set_title(row["env_id"], fontsize=10)
        ax.legend(fontsize=7, loc="best")
        ax.set_xlabel("env steps")
        ax.set_ylabel("100-episode mean score")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(curves):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
