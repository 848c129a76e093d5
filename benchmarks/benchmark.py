"""Time to solve and throughput of PPO presets, each run in its own process through the real CLI.

    python -m benchmarks.benchmark                                   # the default preset, seeds 1 2 3
    python -m benchmarks.benchmark --seeds 1 2 3 4 5 -- experiment=rl_zoo   # any overrides after --
    python -m benchmarks.benchmark --solve-only=false -- experiment=tutorial train.total_timesteps=60000
    python -m benchmarks.benchmark --compare                         # against SB3 and the tutorial (bench extra)
    python -m benchmarks.benchmark --crossover                       # when device.compile pays
    python -m benchmarks.benchmark --render                          # docs/performance.md from its data

Every run trains with ``train.stop_when_solved=true`` (unless ``--solve-only=false``) and reports,
from its ``metrics.json``: env steps and wall seconds until the mean score of 100 consecutive
training episodes first reached the env's solved score, steps/s, the best 100-episode mean, and the
process's peak resident memory. Start-up (imports, env creation) is outside the timed seconds;
compiling the update (``device.compile``) is inside them. ``--record NAME`` records the runs as that
section of ``docs/data/performance.json``.

``--compare`` measures four speeds against their peers (Stable-Baselines3 with RL Zoo's settings, the
tutorial's code) and prints them as a Markdown table: ours as configured by default
(``device.compile=auto``), and compiled with a cold and with a warm inductor cache. ``--crossover``
measures when compiling the update pays for itself. Both record their section of
``docs/data/performance.json`` with the command and the machine, and render ``docs/performance.md``
(:mod:`benchmarks.pages`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import pages
from ppo.rundir import METRICS_FILE

TUTORIAL_STEPS_PER_SECOND = 235  # the tutorial's own code on this kind of machine (measured once, not run here)
TUTORIAL_CODE_SOURCE = ("235 steps/s, measured once on this kind of machine (Phil Tabor's PyTorch PPO, the same "
                        "setup), not run by the benchmark")
MUJOCO_PRESET = pages.ROOT / "conf" / "experiment" / "half_cheetah_tuned.yaml"
RECORDED_RUNS = ("default_preset", "tutorial_300_games")  # sections of docs/data/performance.json: runs of main()


def run_ppo(overrides: list[str], seed: int, solve_only: bool, inductor_cache: str | None = None) -> dict:
    """One training run of ``python -m ppo.run`` in a fresh process; its metrics and peak RSS (MB).
    ``inductor_cache``: the compiled-code cache dir the run uses (else the user's)."""
    with tempfile.TemporaryDirectory() as run_dir:
        # The caller's overrides come last, so that they win (train.eval_episodes=10 evaluates).
        command = [sys.executable, "-m", "ppo.run", f"seed={seed}", "train.progress=false",
                   "train.eval_episodes=0", f"train.stop_when_solved={str(solve_only).lower()}",
                   f"hydra.run.dir={run_dir}", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled",
                   *overrides]
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": inductor_cache} if inductor_cache else None
        metrics = _run_measured(command, Path(run_dir) / METRICS_FILE, env)
    return metrics


def run_sb3(seed: int, solve_only: bool, total_timesteps: int = 100_000, env_id: str = "CartPole-v1") -> dict:
    """Stable-Baselines3's PPO with RL Zoo's settings for ``env_id`` (benchmarks.sb3_ppo), measured alike."""
    with tempfile.TemporaryDirectory() as run_dir:
        metrics_file = Path(run_dir) / METRICS_FILE
        command = [sys.executable, "-m", "benchmarks.sb3_ppo", f"--env={env_id}", f"--seed={seed}",
                   f"--total-timesteps={total_timesteps}", f"--out={metrics_file}"]
        return _run_measured(command + ([] if solve_only else ["--no-stop"]), metrics_file)


def _run_measured(command: list[str], metrics_file: Path, env: dict | None = None) -> dict:
    # From the checkout's root, where python -m finds benchmarks/; the run dirs are absolute.
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                               cwd=pages.ROOT)
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


def _median(rows: list[dict], key: str) -> float | None:
    values = [row[key] for row in rows]
    return None if None in values else statistics.median(values)


def ours_and_peer(overrides: list[str], seeds: list[int], solve_only: bool, peer) -> dict[str, list[dict]]:
    """One row's runs. Ours with ``device.compile=auto`` (what a user gets) and compiled
    (``device.compile=on``) with a warm inductor cache, each beside the peer's run of the same seed so
    that both see the same machine load; first, compiled with a cold cache (an empty cache dir, the
    first seed only: a one-time cost), which leaves that dir warm for the others. ``peer(seed)``
    runs the peer, or is None where the peer is a fixed figure."""
    compiled = [*overrides, "device.compile=on"]
    runs: dict[str, list[dict]] = {"auto": [], "warm": [], "peer": []}
    with tempfile.TemporaryDirectory() as cache:
        runs["cold"] = [run_ppo(compiled, seeds[0], solve_only, inductor_cache=cache)]
        for seed in seeds:
            runs["auto"].append(run_ppo(overrides, seed, solve_only))
            if peer is not None:
                runs["peer"].append(peer(seed))
            runs["warm"].append(run_ppo(compiled, seed, solve_only, inductor_cache=cache))
    return runs


def compare(seeds: list[int], mujoco_steps: int) -> dict:
    """Four speeds of ours against a peer, measured here, now, as the ``compare`` section of
    docs/data/performance.json: per row, ours (auto; compiled, warm; compiled, cold) and the peer as
    medians over ``seeds``, their ratios (above 1: ours is faster), and where the auto run of the
    first seed spent its time. Every wall time includes compilation, if any."""
    rows = []

    def row(measure: str, label: str, runs: dict, key: str, peer_value: float | None, faster_is: str) -> None:
        """``faster_is``: "higher" for steps/s (ratio ours / peer), "lower" for seconds (peer / ours)."""
        def ratio(ours):
            if ours is None or peer_value is None:
                return None
            return ours / peer_value if faster_is == "higher" else peer_value / ours

        ours = {mode: _median(runs[mode], key) for mode in ("auto", "warm", "cold")}
        first = runs["auto"][0]
        phases = first["phase_seconds"]
        rows.append({
            "measure": measure, "label": label, **ours, "peer": peer_value,
            "ratio": {mode: ratio(value) for mode, value in ours.items()},
            # "collect" includes "env_step"; the rest of it is acting and storage
            "phase_seconds": {"env_step": phases.get("env_step", 0.0),
                              "acting_and_storage": phases.get("collect", 0.0) - phases.get("env_step", 0.0),
                              **{phase: phases.get(phase, 0.0) for phase in ("advantages", "update_forward",
                                                                             "update_backward", "update_optimizer",
                                                                             "log")},
                              "train_seconds": first["train_seconds"]},
        })

    # 1. Throughput at RL Zoo's CartPole-v1 hyperparameters: both train 50k steps, no early stop.
    zoo = ours_and_peer(["experiment=rl_zoo", "train.total_timesteps=50000"], seeds, False,
                        lambda seed: run_sb3(seed, False, 50_000))
    row("steps/s, RL Zoo CartPole-v1 hyperparameters (50k steps) against SB3", "RL Zoo CartPole, 50k steps", zoo,
        "steps_per_second", _median(zoo["peer"], "steps_per_second"), "higher")
    # 2. The tutorial's setup against the tutorial's own code.
    tutorial = ours_and_peer(["experiment=tutorial", "train.total_timesteps=10000"], seeds, False, None)
    row("steps/s, experiment=tutorial (N=20, minibatch 5, 4 epochs, 1 env, 256x256; 10k steps) against the "
        "tutorial's code", "tutorial, 10k steps", tutorial, "steps_per_second", TUTORIAL_STEPS_PER_SECOND, "higher")
    # 3. Wall time to solve: our default preset against SB3 with RL Zoo's settings (its best).
    solve = ours_and_peer([], seeds, True, lambda seed: run_sb3(seed, True))
    row("seconds to solve CartPole-v1 (ours: default preset; SB3: RL Zoo's settings)", "default preset, until solved",
        solve, "seconds_to_solve", _median(solve["peer"], "seconds_to_solve"), "lower")
    # 4. HalfCheetah at RL Zoo's settings, the same env steps, one seed (a long run).
    if MUJOCO_PRESET.exists() and importlib.util.find_spec("mujoco") is not None:
        cheetah = ours_and_peer(["experiment=half_cheetah_tuned", f"train.total_timesteps={mujoco_steps}",
                                 "train.checkpoint_every=0"], seeds[:1], False,
                                lambda seed: run_sb3(seed, False, mujoco_steps, env_id="HalfCheetah-v5"))
        row(f"steps/s, HalfCheetah-v5 at RL Zoo's hyperparameters against SB3, the same steps "
            f"({mujoco_steps // 1000}k steps, seed {seeds[0]})", f"HalfCheetah, {mujoco_steps // 1000}k steps",
            cheetah, "steps_per_second", _median(cheetah["peer"], "steps_per_second"), "higher")
    else:
        print("HalfCheetah-v5 not measured: it needs the mujoco extra", file=sys.stderr)
    return {"tutorial_code_source": TUTORIAL_CODE_SOURCE, "rows": rows, "repeats": []}


CROSSOVER_SETTINGS = {  # name: the overrides of a setting whose compile crossover is measured
    "CartPole, experiment=rl_zoo (64x64 tanh, minibatch 256)": ["experiment=rl_zoo"],
    "experiment=tutorial (256x256 relu, minibatch 5)": ["experiment=tutorial"],
    "HalfCheetah, experiment=half_cheetah_tuned (256x256 relu, minibatch 64)": ["experiment=half_cheetah_tuned"],
}


def crossover_probe(overrides: list[str], updates: int) -> dict:
    """In this process: the trainer's own update (:func:`ppo.update.ppo_update`) on one rollout of
    random samples shaped as the setting's, eager and compiled, on networks and optimizers built as
    :func:`ppo.train.train` builds them. The first compiled update's extra wall time is the
    compilation (with whatever inductor cache this process has); then ``updates`` updates of each,
    alternating, give the wall time per minibatch step."""
    import time

    import torch

    from ppo.compile import CompiledWithFallback
    from ppo.config import to_config
    from ppo.envs import make_envs
    from ppo.run import compose
    from ppo.state import TrainingState
    from ppo.timing import PhaseTimer
    from ppo.train import select_device
    from ppo.update import Samples, minibatch_loss, ppo_update

    config = to_config(compose(overrides))
    device = select_device(config.device)
    envs = make_envs(config.env)
    eager, compiled = (TrainingState.create(config, envs, device) for _ in range(2))
    envs.close()
    torch.manual_seed(0)
    n = config.rollout_size
    obs = torch.randn(n, *eager.obs_shape)
    with torch.no_grad():
        actions = eager.actor.sample(eager.actor(obs), eager.generator)
    samples = Samples(obs, actions, log_probs=-torch.rand(n), advantages=torch.randn(n), returns=torch.randn(n),
                      values=torch.randn(n))
    compiled_loss = CompiledWithFallback(minibatch_loss)

    def update(state, loss_fn) -> float:
        start = time.perf_counter()
        ppo_update(state.actor, state.critic, state.optimizer, samples, config.agent, config.agent.policy_clip,
                   state.generator, PhaseTimer(), loss_fn)
        return time.perf_counter() - start

    first_compiled = update(compiled, compiled_loss)
    if compiled_loss.failed:
        raise RuntimeError("compiling failed: no crossover to measure")
    seconds = {"eager": [], "compiled": []}
    for _ in range(updates):
        seconds["eager"].append(update(eager, minibatch_loss))
        seconds["compiled"].append(update(compiled, compiled_loss))
    steps = config.agent.n_epochs * -(-n // config.agent.batch_size)  # minibatch steps per update
    compiled_step = statistics.median(seconds["compiled"]) / steps
    return {"compile_seconds": first_compiled - compiled_step * steps, "steps_per_update": steps,
            "eager_ms": 1e3 * statistics.median(seconds["eager"]) / steps, "compiled_ms": 1e3 * compiled_step}


def crossover(updates: int) -> dict:
    """For each setting of :data:`CROSSOVER_SETTINGS`, in fresh processes: compilation time with a cold
    inductor cache (an empty dir) and then with that dir warm, the wall time per minibatch step eager
    and compiled (medians of alternating updates, one torch thread), and the crossover, the minibatch
    steps after which compiling has paid for itself (None: it saves nothing). The ``crossover``
    section of docs/data/performance.json."""
    rows = []
    for name, overrides in CROSSOVER_SETTINGS.items():
        if "half_cheetah" in overrides[0] and importlib.util.find_spec("mujoco") is None:
            print(f"{name} not measured: it needs the mujoco extra", file=sys.stderr)
            continue
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
            probes = {}
            for cache_state in ("cold", "warm"):
                result = subprocess.run([sys.executable, "-m", "benchmarks.benchmark", "--crossover-probe",
                                         str(updates), "--", *overrides],
                                        capture_output=True, text=True, env=env, cwd=pages.ROOT)
                if result.returncode != 0:
                    raise RuntimeError(f"the crossover probe of {name} failed:\n{result.stderr}")
                probe = json.loads(result.stdout.strip().splitlines()[-1])
                saving = probe["eager_ms"] - probe["compiled_ms"]
                probes[cache_state] = {**probe, "crossover": probe["compile_seconds"] / saving * 1e3 if saving > 0
                                       else None}
        rows.append({"setting": name, **probes})
    return {"rows": rows, "repeats": []}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks.benchmark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--solve-only", type=lambda s: s.lower() == "true", default=True,
                        help="stop each run when it solves the env (default true)")
    parser.add_argument("--record", choices=RECORDED_RUNS,
                        help="record the runs as this section of docs/data/performance.json and render the page")
    parser.add_argument("--compare", action="store_true",
                        help="measure ours against Stable-Baselines3 and the tutorial's code (needs the bench extra)")
    parser.add_argument("--mujoco-steps", type=int, default=30_000,
                        help="env steps of the HalfCheetah comparison (--compare)")
    parser.add_argument("--crossover", action="store_true",
                        help="measure when device.compile pays: compile time, cold and warm, against the saving "
                             "per step")
    parser.add_argument("--crossover-updates", type=int, default=8, help="updates timed per setting (--crossover)")
    parser.add_argument("--crossover-probe", type=int, metavar="UPDATES", help=argparse.SUPPRESS)  # one setting, here
    parser.add_argument("--render", action="store_true",
                        help="only render docs/performance.md from its committed data file, run nothing")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run (after --)")
    args = parser.parse_args(argv)
    provenance = {"command": pages.command("benchmarks.benchmark", argv), "machine": pages.machine()}
    if args.render:
        print(pages.write_page("performance"))
        return
    if args.compare:
        print(pages.record("performance", "compare", {**provenance, **compare(args.seeds, args.mujoco_steps)}))
        return
    if args.crossover:
        print(pages.record("performance", "crossover", {**provenance, **crossover(args.crossover_updates)}))
        return
    if args.crossover_probe:
        print(json.dumps(crossover_probe(args.overrides, args.crossover_probe)))
        return
    rows = []
    for seed in args.seeds:
        rows.append({"seed": seed, **run_ppo(args.overrides, seed, args.solve_only)})
        print(f"seed {seed}: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    print(f"overrides: {' '.join(args.overrides) or '(defaults)'}")
    print(summarize(rows))
    if args.record:
        kept = ("seed", "steps_to_solve", "seconds_to_solve", "steps_per_second", "peak_rss_mb", "global_step",
                "episodes", "best_score", "best_mean_score_100")
        pages.record("performance", args.record, {**provenance, "solve_only": args.solve_only,
                                                  "overrides": args.overrides,
                                                  "runs": [{key: row[key] for key in kept} for row in rows]})


if __name__ == "__main__":
    main()
