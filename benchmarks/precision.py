"""bfloat16 beside float32 (``device.precision``): the networks' step times, training speed, and learning.

    python -m benchmarks.precision --minibatch      # ms per minibatch step and per acting pass, each network
    python -m benchmarks.precision --speed          # steps/s under fp32, bf16 and auto; SB3 on Atari beside
    python -m benchmarks.precision --learning       # MinAtar, 3 seeds: bf16's final scores beside fp32's
    python -m benchmarks.precision --atari --jobs 2 # Breakout and Pong, seeds 1 and 2, 1M steps: the same
    python -m benchmarks.precision --render         # docs/performance.md from its data

``--minibatch`` times this project's own networks and :func:`ppo.update.minibatch_loss` (forward, loss,
backward, fused Adam) at minibatch 256, and one acting forward pass of 16 observations, under each
precision and, for the CNNs, in both memory formats; it prints the table that :mod:`ppo.precision` and
:data:`ppo.networks.CHANNELS_LAST` cite. ``--speed`` runs ``python -m ppo.run`` (the real CLI) for
``experiment=atari`` (ALE/Breakout-v5), ``experiment=minatar`` (MinAtar/Breakout-v1) and the CartPole
default under each ``device.precision``, without evaluation, and Stable-Baselines3's PPO with the Atari
settings (:mod:`benchmarks.sb3_atari`), one process after another, ``--repeats`` times: steps/s from
each run's ``metrics.json`` (SB3: of ``learn()``) with the run's seconds by phase, and each process's
peak RSS. ``--learning`` trains
``experiment=minatar`` for each game, seed and precision in ``<out>/<game>/<precision>/seed_<S>``
(resumable: a finished run is not run again, a stopped one goes on from its checkpoint) and compares
the final greedy scores: bf16's IQM over seeds against float32's IQM and its bootstrap interval.
``--atari`` does the same for ``experiment=atari`` (``<out>/atari/<game>/<precision>/seed_<S>``,
``--jobs`` runs at a time) and compares each seed's final 100-episode training mean, bf16's against
float32's, as a fraction of float32's height above the game's lowest score (0 on Breakout, -21 on
Pong, where a plain ratio of negative means says nothing); the rows of games and seeds it did not run
this time stay in the page's data. ``--speed``, ``--learning`` and ``--atari``
record their section in ``docs/data/performance.json`` and render
``docs/performance.md`` (:mod:`benchmarks.pages`). Run them on a quiet core (``taskset -c 1``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks import pages
from benchmarks.suite import run_to_the_end
from ppo import networks
from ppo.config import AgentConfig, NetworkConfig
from ppo.networks import make_actor, make_critic, parameter_groups, reads_channels_last
from ppo.precision import Precision
from ppo.report.runs import read_curve
from ppo.report.stats import estimate, iqm
from ppo.rundir import METRICS_FILE
from ppo.update import Samples, minibatch_loss

SPEED_SETTINGS = {  # name -> (overrides, env steps per run)
    "atari": (["experiment=atari", "env.id=ALE/Breakout-v5"], 8192),
    "minatar": (["experiment=minatar", "env.id=MinAtar/Breakout-v1"], 65_536),
    "cartpole": ([], 150_000),
}
PRECISION_NAMES = ("fp32", "bf16", "auto")
MINATAR_GAMES = {"breakout": "MinAtar/Breakout-v1", "space_invaders": "MinAtar/SpaceInvaders-v1"}
ATARI_GAMES = {"breakout": ("ALE/Breakout-v5", 0.0), "pong": ("ALE/Pong-v5", -21.0)}  # env id, lowest score


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks.precision", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minibatch", action="store_true", help="time the networks' minibatch steps only")
    parser.add_argument("--speed", action="store_true", help="steps/s of training runs under each precision")
    parser.add_argument("--learning", action="store_true", help="MinAtar bf16 beside fp32 over seeds")
    parser.add_argument("--atari", action="store_true", help="Atari bf16 beside fp32, seed by seed")
    parser.add_argument("--jobs", type=int, default=1, help="--learning, --atari: training runs at a time")
    parser.add_argument("--render", action="store_true", help="only render docs/performance.md from its data")
    parser.add_argument("--settings", nargs="+", choices=list(SPEED_SETTINGS), default=list(SPEED_SETTINGS))
    parser.add_argument("--repeats", type=int, default=2, help="--speed: rounds of every run")
    parser.add_argument("--no-sb3", action="store_true", help="--speed: leave Stable-Baselines3 out")
    parser.add_argument("--games", nargs="+", choices=sorted({*MINATAR_GAMES, *ATARI_GAMES}),
                        help="--learning: MinAtar's (default both), --atari: ALE's (default both)")
    parser.add_argument("--seeds", nargs="+", type=int, help="default 1 2 3 (--learning), 1 2 (--atari)")
    parser.add_argument("--steps", type=int, help="train.total_timesteps of a run: 500,000 (--learning), "
                                                  "1,000,000 (--atari)")
    parser.add_argument("--out", type=Path, default=Path("outputs/precision"))
    args = parser.parse_args(argv)
    if args.render:
        print(pages.write_page("performance"))
    elif args.minibatch:
        time_minibatch_steps()
    elif args.speed:
        section = measure_speed(args.settings, args.repeats, not args.no_sb3, args.out / "speed")
        section["command"] = pages.command("benchmarks.precision", argv)
        pages.record("performance", "precision_speed", section)
        print(json.dumps(section, indent=2))
    elif args.learning or args.atari:
        games, known = (ATARI_GAMES, "ALE") if args.atari else (MINATAR_GAMES, "MinAtar")
        unknown = sorted(set(args.games or ()) - set(games))
        if unknown:
            parser.error(f"--games: {', '.join(unknown)} is not one of {known}'s: {', '.join(games)}")
        compare = compare_atari_learning if args.atari else compare_learning
        section = compare(args.games or list(games), args.seeds or ([1, 2] if args.atari else [1, 2, 3]),
                          args.steps or (1_000_000 if args.atari else 500_000), args.jobs,
                          args.out / ("atari" if args.atari else "learning"))
        section["command"] = pages.command("benchmarks.precision", argv)
        if args.atari:  # one game or seed at a time: the rows measured before stay
            section = with_earlier_rows(section, pages.load("performance").get("precision_atari"))
        pages.record("performance", "precision_atari" if args.atari else "precision_learning", section)
        print(json.dumps(section, indent=2))
    else:
        parser.print_help()
    return 0


# ---- MINIBATCH STEPS ----

MINIBATCH_NETWORKS = {  # name -> (network config, observations of a minibatch, actions)
    "mlp (64x64 tanh, CartPole)": (NetworkConfig(), lambda n: torch.randn(n, 4), 2),
    "minatar_cnn (Breakout)": (NetworkConfig(type="minatar_cnn", hidden_sizes=[128], activation="relu",
                                             shared_torso=True), lambda n: torch.rand(n, 4, 10, 10) > 0.5, 3),
    "nature_cnn (Atari)": (NetworkConfig(type="nature_cnn", hidden_sizes=[512], activation="relu", shared_torso=True),
                           lambda n: torch.randint(0, 256, (n, 4, 84, 84), dtype=torch.uint8), 4),
}


def time_minibatch_steps(batch_size: int = 256, seconds: float = 1.0, rounds: int = 5) -> None:
    """Print ms per minibatch step and per acting forward pass for each network, precision and (CNNs)
    memory format, one torch thread: the fastest of ``rounds`` rounds over all of them (so that other
    work on the machine slows each about equally)."""
    torch.set_num_threads(1)
    cases = {}
    for name, (net, observations, n_actions) in MINIBATCH_NETWORKS.items():
        for channels_last in ((False, True) if net.type != "mlp" else (False,)):
            networks.CHANNELS_LAST = {net.type} if channels_last else set()  # read when a network is built
            for precision in (Precision("fp32"), Precision("bf16")):
                cases[name, precision.name, channels_last] = step_and_act(net, observations, n_actions, precision,
                                                                          batch_size)
    best = {case: (math.inf, math.inf) for case in cases}
    for _ in range(rounds):
        for case, (step, act) in cases.items():
            timed = (per_call_ms(step, seconds), per_call_ms(act, seconds / 3))
            best[case] = tuple(map(min, best[case], timed))
    print(f"{pages.machine_text(pages.machine())}, one torch thread, minibatch {batch_size}, best of {rounds}")
    print("| network | precision | channels-last | ms per minibatch step | ms per acting pass (16 obs) |")
    print("| --- | --- | --- | --- | --- |")
    for (name, precision, channels_last), (step_ms, act_ms) in best.items():
        print(f"| {name} | {precision} | {channels_last} | {step_ms:.2f} | {act_ms:.3f} |")


def step_and_act(net: NetworkConfig, observations, n_actions: int, precision: Precision, batch_size: int):
    """A minibatch step (loss, backward, Adam) and an acting forward pass of a fresh actor and critic, on
    observations in the memory format the trainer's rollout keeps them in for that network."""
    torch.manual_seed(0)
    obs = observations(batch_size)
    actor = make_actor(tuple(obs.shape[1:]), {"n": n_actions}, net)
    critic = make_critic(tuple(obs.shape[1:]), net, actor)
    if reads_channels_last(actor):  # as the trainer's rollout stores them for this network
        obs = obs.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam([{"params": group} for group in parameter_groups(actor, critic)], lr=2.5e-4,
                                 eps=1e-5, fused=True)
    batch = Samples(obs, torch.randint(0, n_actions, (batch_size,)), -torch.rand(batch_size), torch.randn(batch_size),
                    torch.randn(batch_size), torch.randn(batch_size))
    loss_fn = precision.autocast_each_call(minibatch_loss)

    def step() -> None:
        total, _ = loss_fn(actor, critic, AgentConfig(), 0.1, batch)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()

    def act() -> None:
        with torch.inference_mode(), precision.autocast():
            actor(obs[:16])

    return step, act


def per_call_ms(function, seconds: float) -> float:
    """ms per call of ``function`` over about ``seconds``, after a warm-up of 2 calls."""
    for _ in range(2):
        function()
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        function()
        calls += 1
    return (time.perf_counter() - start) / calls * 1e3


# ---- SPEED ----

def run_process(command: list[str]) -> tuple[str, float]:
    """Run ``command``; its output and its peak RSS in MB (of this process alone, by ``wait4``)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} failed (exit {process.returncode}): {output[-2000:]}")
    return output, usage.ru_maxrss / 1024  # KB on Linux


def measure_speed(settings: list[str], repeats: int, with_sb3: bool, out: Path) -> dict:
    """Every setting under each precision, and SB3 on Atari, one process after another, ``repeats`` rounds."""
    rows = {(setting, precision): {"setting": setting, "precision": precision, "steps_per_second": [],
                                   "peak_rss_mb": [], "phase_seconds": [], "chosen": None}
            for setting in settings for precision in PRECISION_NAMES}
    sb3 = {"steps_per_second": [], "peak_rss_mb": []}
    for round_ in range(1, repeats + 1):
        for setting in settings:
            overrides, steps = SPEED_SETTINGS[setting]
            for precision in PRECISION_NAMES:
                run_dir = out / f"{setting}_{precision}_{round_}"
                output, rss = run_process([sys.executable, "-m", "ppo.run", *overrides, f"device.precision={precision}",
                                           f"train.total_timesteps={steps}", "train.eval_episodes=0",
                                           "train.progress=false", f"hydra.run.dir={run_dir}"])
                metrics = json.loads((run_dir / METRICS_FILE).read_text())
                row = rows[setting, precision]
                row["steps_per_second"].append(round(metrics["steps_per_second"]))
                row["peak_rss_mb"].append(round(rss))
                row["phase_seconds"].append({phase: round(seconds, 2)
                                             for phase, seconds in metrics["phase_seconds"].items()})
                row["chosen"] = re.search(r"\| precision (\w+) \(", output)[1]
                print(f"{setting} {precision} ({row['chosen']}): {row['steps_per_second'][-1]} steps/s, "
                      f"{row['peak_rss_mb'][-1]} MB", file=sys.stderr, flush=True)
            if setting == "atari" and with_sb3:
                output, rss = run_process([sys.executable, "-m", "benchmarks.sb3_atari", "--total-timesteps",
                                           str(steps)])
                sb3["steps_per_second"].append(int(re.search(r"(\d+) steps/s", output)[1]))
                sb3["peak_rss_mb"].append(round(rss))
                print(f"SB3 atari: {sb3['steps_per_second'][-1]} steps/s", file=sys.stderr, flush=True)
    section = {"machine": {**pages.machine(), "cpu_affinity": sorted(os.sched_getaffinity(0))},
               "steps": {setting: SPEED_SETTINGS[setting][1] for setting in settings}, "rows": list(rows.values())}
    if with_sb3 and "atari" in settings:
        section["sb3_atari"] = sb3
    return section


# ---- LEARNING ----

def train_all(runs: dict[str, tuple[Path, list[str]]], jobs: int) -> None:
    """Every run (label -> run dir, overrides) to the end through the CLI, ``jobs`` processes at a time."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(lambda label: run_to_the_end(label, *runs[label]), runs))


def learning_run_dir(out: Path, game: str, precision: str, seed: int) -> Path:
    return out / game / precision / f"seed_{seed}"


def train_both_precisions(experiment: str, env_ids: dict[str, str], seeds: list[int], steps: int,
                          eval_episodes: int, jobs: int, out: Path) -> None:
    """Every game (``env_ids``: game -> env id), seed and precision (fp32, bf16) trained with
    ``experiment=<experiment>`` to the end in :func:`learning_run_dir`, ``jobs`` at a time."""
    train_all({f"{game} {precision} seed {seed}": (learning_run_dir(out, game, precision, seed), [
        f"experiment={experiment}", f"env.id={env_id}", f"seed={seed}", f"device.precision={precision}",
        f"train.total_timesteps={steps}", f"train.eval_episodes={eval_episodes}", "train.checkpoint_every=25"])
        for seed in seeds for game, env_id in env_ids.items() for precision in ("fp32", "bf16")}, jobs)


def compare_learning(games: list[str], seeds: list[int], steps: int, jobs: int, out: Path) -> dict:
    """Train every game, seed and precision (fp32, bf16) to the end; per game, each precision's final
    scores, IQM and bootstrap interval."""
    train_both_precisions("minatar", {game: MINATAR_GAMES[game] for game in games}, seeds, steps, 20, jobs, out)
    rows = []
    for game in games:
        row = {"game": game, "env_id": MINATAR_GAMES[game], "seeds": seeds, "budget": steps}
        for precision in ("fp32", "bf16"):
            finished = [json.loads((learning_run_dir(out, game, precision, seed) / METRICS_FILE).read_text())
                        for seed in seeds if (learning_run_dir(out, game, precision, seed) / METRICS_FILE).is_file()]
            scores = [metrics["final_score"] for metrics in finished]
            found = estimate([scores]) if scores else None
            row[precision] = {"final_scores": scores, "iqm": None if found is None else float(iqm(scores)),
                              "ci": None if found is None or found.low != found.low else [found.low, found.high],
                              "steps_per_second": [round(metrics["steps_per_second"]) for metrics in finished]}
        rows.append(row)
    return {"machine": pages.machine(), "rows": rows}


def compare_atari_learning(games: list[str], seeds: list[int], steps: int, jobs: int, out: Path) -> dict:
    """Train every game, seed and precision (fp32, bf16) with ``experiment=atari`` to the end (runs
    already finished are kept); per game and seed, each precision's last 100-episode training mean and
    final greedy score, and bf16's height above the game's lowest score as a fraction of fp32's."""
    train_both_precisions("atari", {game: ATARI_GAMES[game][0] for game in games}, seeds, steps, 10, jobs, out)
    rows = []
    for game in games:
        env_id, lowest = ATARI_GAMES[game]
        for seed in seeds:
            row = {"game": game, "env_id": env_id, "seed": seed, "budget": steps, "lowest_score": lowest}
            for precision in ("fp32", "bf16"):
                run = learning_run_dir(out, game, precision, seed)
                metrics = json.loads((run / METRICS_FILE).read_text()) if (run / METRICS_FILE).is_file() else None
                _, means = read_curve(run)
                row[precision] = None if metrics is None else {
                    "mean_score_100": float(means[-1]) if means.size else None, "env_steps": metrics["global_step"],
                    "final_score": metrics["final_score"], "steps_per_second": round(metrics["steps_per_second"])}
            fp32, bf16 = row["fp32"], row["bf16"]
            row["bf16_of_fp32"] = None
            if fp32 and bf16 and fp32["mean_score_100"] is not None and bf16["mean_score_100"] is not None \
                    and fp32["mean_score_100"] > lowest:
                row["bf16_of_fp32"] = (bf16["mean_score_100"] - lowest) / (fp32["mean_score_100"] - lowest)
            rows.append(row)
    return {"machine": pages.machine(), "rows": rows}


def with_earlier_rows(section: dict, earlier: dict | None) -> dict:
    """``section`` (``--atari``'s) with the rows of ``earlier`` for the games and seeds it did not run, in
    game and seed order, and the commands that measured them, one per line."""
    if earlier is None:
        return section
    ran = {(row["game"], row["seed"]) for row in section["rows"]}
    kept = [row for row in earlier["rows"] if (row["game"], row["seed"]) not in ran]
    rows = sorted(section["rows"] + kept, key=lambda row: (list(ATARI_GAMES).index(row["game"]), row["seed"]))
    commands = [*(earlier["command"].splitlines() if kept else []), section["command"]]
    return {**section, "rows": rows, "command": "\n".join(dict.fromkeys(commands))}


if __name__ == "__main__":
    sys.exit(main())
