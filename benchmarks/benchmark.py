"""Time to solve and throughput of PPO presets, each run in its own process through the real CLI.

    python benchmarks/benchmark.py                                   # the default preset, seeds 1 2 3
    python benchmarks/benchmark.py --seeds 1 2 3 4 5 -- experiment=rl_zoo   # any overrides after --
    python benchmarks/benchmark.py --solve-only=false -- experiment=tutorial train.total_timesteps=60000
    python benchmarks/benchmark.py --compare                         # the performance targets (bench extra)
    python benchmarks/benchmark.py --crossover                       # when device.compile pays

Every run trains with ``train.stop_when_solved=true`` (unless ``--solve-only=false``) and reports,
from its ``metrics.json``: env steps and wall seconds until the mean score of 100 consecutive
training episodes first reached the env's solved score, steps/s, the best 100-episode mean, and the
process's peak resident memory. Start-up (imports, env creation) is outside the timed seconds;
compiling the update (``device.compile``) is inside them.

``--compare`` measures the four performance targets against their peers (Stable-Baselines3 with RL
Zoo's settings, the tutorial's code) and prints them as a Markdown table: ours as configured by
default (``device.compile=auto``), and compiled with a cold and with a warm inductor cache.
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

TUTORIAL_STEPS_PER_SECOND = 235  # the tutorial's own code on this kind of machine (measured once, not run here)
MUJOCO_PRESET = Path(__file__).resolve().parent.parent / "conf" / "experiment" / "half_cheetah_tuned.yaml"


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
        metrics = _run_measured(command, Path(run_dir) / "metrics.json", env)
    return metrics


def run_sb3(seed: int, solve_only: bool, total_timesteps: int = 100_000, env_id: str = "CartPole-v1") -> dict:
    """Stable-Baselines3's PPO with RL Zoo's settings for ``env_id`` (benchmarks/sb3_ppo.py), measured alike."""
    with tempfile.TemporaryDirectory() as run_dir:
        metrics_file = Path(run_dir) / "metrics.json"
        command = [sys.executable, str(Path(__file__).with_name("sb3_ppo.py")), f"--env={env_id}", f"--seed={seed}",
                   f"--total-timesteps={total_timesteps}", f"--out={metrics_file}"]
        return _run_measured(command + ([] if solve_only else ["--no-stop"]), metrics_file)


def _run_measured(command: list[str], metrics_file: Path, env: dict | None = None) -> dict:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
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


def compare(seeds: list[int], mujoco_steps: int) -> str:
    """The four targets of the performance issue, each measured here, now: ours and the peer, their
    ratio, and whether it meets the target. Every wall time includes compilation, if any."""
    load_before = os.getloadavg()
    rows, profiles = [], []

    def row(name: str, runs: dict, key: str, peer_value: float | None, goal: float, faster_is: str) -> None:
        """``faster_is``: "higher" for steps/s (ratio ours / peer), "lower" for seconds (peer / ours)."""
        def value(mode):
            return _median(runs[mode], key)

        def ratio(mode):
            ours = value(mode)
            if ours is None or peer_value is None:
                return None
            return ours / peer_value if faster_is == "higher" else peer_value / ours

        def fmt(number):
            return "not all solved" if number is None else f"{number:,.0f}" if number >= 100 else f"{number:.1f}"

        def times(number):
            return "n/a" if number is None else f"{number:.2f}x"

        auto_ratio = ratio("auto")
        verdict = "met" if auto_ratio is not None and auto_ratio >= goal else (
            f"not met: {auto_ratio / goal:.0%} of it" if auto_ratio is not None else "not met")
        rows.append(f"| {name} | {fmt(value('auto'))} | {fmt(value('warm'))} | {fmt(value('cold'))} "
                    f"| {fmt(peer_value)} | {times(auto_ratio)} ({times(ratio('warm'))}; {times(ratio('cold'))}) "
                    f"| >= {goal:g}x | {verdict} |")
        profiles.append(f"- {name.split(' against ')[0]}: " + ", ".join(
            f"{phase} {seconds:.2f}" for phase, seconds in runs["auto"][0]["phase_seconds"].items()))

    # 1. Throughput at RL Zoo's CartPole-v1 hyperparameters: both train 50k steps, no early stop.
    zoo = ours_and_peer(["experiment=rl_zoo", "train.total_timesteps=50000"], seeds, False,
                        lambda seed: run_sb3(seed, False, 50_000))
    row("steps/s, RL Zoo CartPole-v1 hyperparameters (50k steps) against SB3", zoo, "steps_per_second",
        _median(zoo["peer"], "steps_per_second"), 4, "higher")
    # 2. The tutorial's setup against the tutorial's own code.
    tutorial = ours_and_peer(["experiment=tutorial", "train.total_timesteps=10000"], seeds, False, None)
    row("steps/s, experiment=tutorial (N=20, minibatch 5, 4 epochs, 1 env, 256x256; 10k steps) against the "
        "tutorial's code", tutorial, "steps_per_second", TUTORIAL_STEPS_PER_SECOND, 10, "higher")
    # 3. Wall time to solve: our default preset against SB3 with RL Zoo's settings (its best).
    solve = ours_and_peer([], seeds, True, lambda seed: run_sb3(seed, True))
    row("seconds to solve CartPole-v1 (ours: default preset; SB3: RL Zoo's settings)", solve, "seconds_to_solve",
        _median(solve["peer"], "seconds_to_solve"), 6, "lower")
    # 4. HalfCheetah at RL Zoo's settings, the same env steps, one seed (a long run).
    mujoco_row = "steps/s, HalfCheetah-v5 at RL Zoo's hyperparameters against SB3, the same steps"
    if MUJOCO_PRESET.exists() and importlib.util.find_spec("mujoco") is not None:
        cheetah = ours_and_peer(["experiment=half_cheetah_tuned", f"train.total_timesteps={mujoco_steps}",
                                 "train.checkpoint_every=0"], seeds[:1], False,
                                lambda seed: run_sb3(seed, False, mujoco_steps, env_id="HalfCheetah-v5"))
        row(f"{mujoco_row} ({mujoco_steps // 1000}k steps, seed {seeds[0]})", cheetah, "steps_per_second",
            _median(cheetah["peer"], "steps_per_second"), 3, "higher")
    else:
        rows.append(f"| {mujoco_row} | not measured: needs experiment=half_cheetah_tuned | | | | | >= 3x | |")

    load_after = os.getloadavg()
    return "\n".join([
        f"Medians over seeds {' '.join(map(str, seeds))}; one process and one torch thread per run; load "
        f"average {load_before[0]:.1f} before, {load_after[0]:.1f} after (on {os.cpu_count()} CPUs).",
        "Ours: device.compile=auto (the default), then compiled with a warm and with a cold inductor cache "
        f"(cold: seed {seeds[0]} only); every wall time includes compiling. Ratio: auto (warm; cold).",
        "",
        "| target | ours (auto) | ours compiled, warm | ours compiled, cold | peer | ratio | goal | |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        f"Where ours spends its time (device.compile=auto, seed {seeds[0]}, seconds; collect includes env_step):",
        *profiles,
    ])


CROSSOVER_SETTINGS = {  # name: the overrides of a setting whose compile crossover is measured
    "CartPole, experiment=rl_zoo (64x64 tanh, minibatch 256)": ["experiment=rl_zoo"],
    "experiment=tutorial (256x256 relu, minibatch 5)": ["experiment=tutorial"],
    "HalfCheetah, experiment=half_cheetah_tuned (256x256 relu, minibatch 64)": ["experiment=half_cheetah_tuned"],
}


def crossover_probe(overrides: list[str], updates: int) -> dict:
    """In this process: train.py's own update (:func:`ppo.train.ppo_update`) on one rollout of
    random samples shaped as the setting's, eager and compiled, on networks and optimizers built as
    :func:`ppo.train.train` builds them. The first compiled update's extra wall time is the
    compilation (with whatever inductor cache this process has); then ``updates`` updates of each,
    alternating, give the wall time per minibatch step."""
    import time

    import torch
    from hydra import compose, initialize_config_dir

    import ppo.run
    from ppo.compile import CompiledWithFallback
    from ppo.config import to_config
    from ppo.envs import make_envs
    from ppo.timing import PhaseTimer
    from ppo.train import TrainingState, minibatch_loss, ppo_update, select_device

    with initialize_config_dir(config_dir=str(ppo.run.CONF_DIR), version_base="1.3"):
        config = to_config(compose(config_name="config", overrides=overrides))
    device = select_device(config.device)
    envs = make_envs(config.env)
    eager, compiled = (TrainingState.create(config, envs, device) for _ in range(2))
    envs.close()
    torch.manual_seed(0)
    n = config.rollout_size
    obs = torch.randn(n, *eager.obs_shape)
    with torch.no_grad():
        actions = eager.actor.sample(eager.actor(obs), eager.generator)
    samples = (obs, actions, -torch.rand(n), torch.randn(n), torch.randn(n), torch.randn(n))
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


def crossover(updates: int) -> str:
    """For each setting of :data:`CROSSOVER_SETTINGS`, in fresh processes: compilation time with a cold
    inductor cache (an empty dir) and then with that dir warm, the wall time per minibatch step eager
    and compiled, and the crossover, the minibatch steps after which compiling has paid for itself."""
    load_before = os.getloadavg()
    lines = ["| setting | compile s, cold / warm | ms per minibatch step, eager / compiled (cold; warm process) "
             "| crossover in minibatch steps, cold / warm |", "| --- | --- | --- | --- |"]
    for name, overrides in CROSSOVER_SETTINGS.items():
        if "half_cheetah" in overrides[0] and importlib.util.find_spec("mujoco") is None:
            lines.append(f"| {name} | not measured: needs the mujoco extra | | |")
            continue
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
            probes = []
            for _cache_state in ("cold", "warm"):
                result = subprocess.run([sys.executable, __file__, "--crossover-probe", str(updates), "--", *overrides],
                                        capture_output=True, text=True, env=env)
                if result.returncode != 0:
                    raise RuntimeError(f"the crossover probe of {name} failed:\n{result.stderr}")
                probes.append(json.loads(result.stdout.strip().splitlines()[-1]))

        def crossover_steps(probe):
            saving = probe["eager_ms"] - probe["compiled_ms"]
            return f"{probe['compile_seconds'] / saving * 1e3:,.0f}" if saving > 0 else "never (no saving)"

        cold, warm = probes
        lines.append(f"| {name} | {cold['compile_seconds']:.0f} / {warm['compile_seconds']:.0f} "
                     f"| {cold['eager_ms']:.2f} / {cold['compiled_ms']:.2f}; {warm['eager_ms']:.2f} / {warm['compiled_ms']:.2f} "
                     f"| {crossover_steps(cold)} / {crossover_steps(warm)} |")
    load_after = os.getloadavg()
    return "\n".join([f"Load average {load_before[0]:.1f} before, {load_after[0]:.1f} after (on {os.cpu_count()} CPUs); "
                      "one torch thread; medians of alternating eager and compiled updates.", "", *lines])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--solve-only", type=lambda s: s.lower() == "true", default=True,
                        help="stop each run when it solves the env (default true)")
    parser.add_argument("--compare", action="store_true",
                        help="measure the performance targets against Stable-Baselines3 (needs the bench extra)")
    parser.add_argument("--mujoco-steps", type=int, default=30_000,
                        help="env steps of the HalfCheetah comparison (--compare)")
    parser.add_argument("--crossover", action="store_true",
                        help="measure when device.compile pays: compile time, cold and warm, against the saving per step")
    parser.add_argument("--crossover-updates", type=int, default=8, help="updates timed per setting (--crossover)")
    parser.add_argument("--crossover-probe", type=int, metavar="UPDATES", help=argparse.SUPPRESS)  # one setting, here
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run (after --)")
    args = parser.parse_args()
    if args.compare:
        print(compare(args.seeds, args.mujoco_steps))
        return
    if args.crossover:
        print(crossover(args.crossover_updates))
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


if __name__ == "__main__":
    main()
