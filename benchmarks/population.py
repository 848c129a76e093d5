"""What a population costs and whether it learns as its single runs do (docs/population.md).

    python -m benchmarks.population --scaling        # K members against per-member steps/s and peak RSS
    python -m benchmarks.population --sweep          # the 27-run CartPole sweep, joblib and population, 2 rounds
    python -m benchmarks.population --grid           # experiment=cartpole_grid (81 runs) through both launchers
    python -m benchmarks.population --equivalence    # seeds 1-10 of the default run: one population, 10 runs
    python -m benchmarks.population --render         # docs/population.md from its committed data

Each part records its section of ``docs/data/population.json`` and renders the page. Sweeps run
through the real CLI (``python -m ppo.run -m hydra/launcher=...``) into ``outputs/bench_population/``;
a part measures wall time, so it always trains afresh.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time

from benchmarks import pages

OUTPUTS = pages.ROOT / "outputs" / "bench_population"
SETTINGS = {  # name -> (overrides, members to measure, env steps per member)
    "CartPole, default agent": ([], [1, 3, 9, 27, 81], 20_480),
    "CartPole, cartpole_grid's agent (minibatch 64)": (["experiment=cartpole_grid", "agent.batch_size=64"],
                                                       [1, 3, 9, 27, 81], 20_480),
    "CartPole, RL Zoo's agent": (["experiment=rl_zoo"], [1, 3, 9, 27, 81], 20_480),
    "HalfCheetah-v5, RL Zoo's agent": (["experiment=half_cheetah_tuned"], [1, 4, 16], 4_096),
}
SWEEP_27 = ["agent.policy_clip=0.1,0.2,0.3", "agent.gae_lambda=0.9,0.95,0.99", "seed=1,2,3",
            "train.total_timesteps=50000", "train.objective=auc"]
GRID_81 = ["experiment=cartpole_grid"]
SEEDS_10 = ["seed=range(1,11)"]
WALL_FILE = "bench_wall_seconds.json"  # beside a finished sweep: its wall time, for --grid to resume


# ---------------------------------------------------------------------------------------------------
# ONE POPULATION, IN A PROCESS OF ITS OWN
# ---------------------------------------------------------------------------------------------------

def train_members(setting: str, members: int, steps: int) -> dict:
    """Train ``members`` members (seeds 1 to K) of ``setting`` as one population, in this process;
    their per-member env steps per second of training, and this process's peak resident memory."""
    import torch

    from ppo.config import to_config
    from ppo.population import PopulationJob
    from ppo.population_trainer import train_population
    from ppo.run import compose

    torch.set_num_threads(1)
    run_dir = OUTPUTS / "scaling" / f"{setting[:8].strip(', ')}-{members}"
    shutil.rmtree(run_dir, ignore_errors=True)
    jobs = []
    for seed in range(1, members + 1):
        config = to_config(compose([*SETTINGS[setting][0], f"seed={seed}", "train.progress=false",
                                    "train.eval_episodes=0", "train.checkpoint_every=0"]))
        config.train.total_timesteps = steps
        jobs.append(PopulationJob(config, run_dir / str(seed)))
    results = train_population(jobs)
    failed = [str(result) for result in results if not isinstance(result, dict)]
    if failed:
        raise RuntimeError(f"{setting}, {members} members: {failed[0]}")
    seconds = max(result["train_seconds"] for result in results)
    return {"members": members, "steps_per_second_per_member": results[0]["global_step"] / seconds,
            "train_seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def scaling() -> dict:
    rows = []
    for setting, (overrides, member_counts, steps) in SETTINGS.items():
        points = []
        for members in member_counts:
            output = subprocess.run([sys.executable, "-m", "benchmarks.population", "--members", setting,
                                     str(members), str(steps)], check=True, capture_output=True, text=True).stdout
            points.append(json.loads(output.strip().splitlines()[-1]))
            print(setting, points[-1], flush=True)
        rows.append({"setting": setting, "overrides": overrides, "steps_per_member": steps, "points": points})
    return {"command": pages.command("benchmarks.population", ["--scaling"]), "machine": pages.machine(), "rows": rows}


# ---------------------------------------------------------------------------------------------------
# SWEEPS THROUGH THE CLI
# ---------------------------------------------------------------------------------------------------

def run_sweep(launcher: str, name: str, overrides: list[str], reuse: bool = False) -> dict:
    """One sweep through the CLI into a fresh dir; its wall time and each run's metrics by run name.
    ``reuse``: a sweep that finished here before (its wall time recorded beside it) is read, not rerun."""
    from ppo.report.runs import find_sweep_runs

    sweep_dir = OUTPUTS / name
    record = sweep_dir / WALL_FILE
    if reuse and record.is_file():
        wall = json.loads(record.read_text())["wall_seconds"]
    else:
        shutil.rmtree(sweep_dir, ignore_errors=True)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ppo.run", "-m", f"hydra/launcher={launcher}", *overrides,
                        "train.progress=false", f"hydra.sweep.dir={sweep_dir}"], check=True, capture_output=True)
        wall = time.perf_counter() - start
        record.write_text(json.dumps({"wall_seconds": wall}))
    runs = {run.path.name: run.metrics for run in find_sweep_runs(sweep_dir)}
    print(f"{name}: {launcher} {wall:.0f} s, {len(runs)} runs", flush=True)
    return {"launcher": launcher, "wall_seconds": wall,
            "runs": {name: {key: metrics.get(key) for key in ("auc", "steps_to_solve", "train_seconds",
                                                                "final_score")} for name, metrics in runs.items()}}


def sweep() -> dict:
    rounds = [run_sweep(launcher, f"sweep27-{launcher}-{round_}", SWEEP_27)
              for round_ in (1, 2) for launcher in ("joblib", "population")]
    return {"command": pages.command("benchmarks.population", ["--sweep"]), "machine": pages.machine(),
            "overrides": SWEEP_27, "rounds": rounds}


def grid() -> dict:
    from ppo.report.runs import find_sweep_runs, group_settings, key_effects, varying_keys

    launches = []
    for launcher in ("joblib", "population"):
        launch = run_sweep(launcher, f"grid81-{launcher}", GRID_81, reuse=True)  # 15 minutes each: resumable
        runs = find_sweep_runs(OUTPUTS / f"grid81-{launcher}")
        keys = [key for key in varying_keys(runs)[0] if key != "seed"]
        effects, _ = key_effects(group_settings(runs, keys), keys, "steps_to_solve")
        launch["effects"] = [{"key": e.key, "value": e.value, "iqm": e.estimate.iqm, "low": e.estimate.low,
                              "high": e.estimate.high} for e in effects]
        launches.append(launch)
    return {"command": pages.command("benchmarks.population", ["--grid"]), "machine": pages.machine(),
            "overrides": GRID_81, "launches": launches}


def equivalence() -> dict:
    population = run_sweep("population", "seeds10-population", [*SEEDS_10, "hydra.launcher.n_jobs=1"])
    single = run_sweep("joblib", "seeds10-joblib", SEEDS_10)
    return {"command": pages.command("benchmarks.population", ["--equivalence"]), "machine": pages.machine(),
            "overrides": SEEDS_10, "launches": [population, single]}


SECTIONS = {"scaling": scaling, "sweep": sweep, "grid": grid, "equivalence": equivalence}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in SECTIONS:
        parser.add_argument(f"--{name}", action="store_true")
    parser.add_argument("--members", nargs=3, metavar=("SETTING", "K", "STEPS"), help=argparse.SUPPRESS)
    parser.add_argument("--render", action="store_true", help="only render docs/population.md from its data")
    args = parser.parse_args(argv)
    if args.members:
        setting, members, steps = args.members
        print(json.dumps(train_members(setting, int(members), int(steps))))
        return
    if args.render:
        pages.write_page("population")
        return
    for name, measure in SECTIONS.items():
        if getattr(args, name):
            print(pages.record("population", name, measure()))


if __name__ == "__main__":
    main()
