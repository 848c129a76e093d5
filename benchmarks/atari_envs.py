"""Steps per second of the Atari preprocessing: ale-py's C++ vector env against gymnasium's wrappers
(AtariPreprocessing and FrameStackObservation in a SyncVectorEnv), random actions, no agent.

    python -m benchmarks.atari_envs [--env-id ALE/Breakout-v5] [--num-envs 8] [--seconds 20]

Records the two speeds, with this command and the machine, as the ``atari_envs`` section of
``docs/data/performance.json`` and renders ``docs/performance.md`` (:mod:`benchmarks.pages`).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from benchmarks import pages
from ppo.config import EnvConfig
from ppo.envs import make_envs


def steps_per_second(env: EnvConfig, seconds: float) -> float:
    """Env steps per second (summed over the sub-envs) of ``seconds`` of random play."""
    envs = make_envs(env)
    rng = np.random.default_rng(0)
    try:
        envs.reset(seed=0)
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            envs.step(rng.integers(0, envs.single_action_space.n, env.num_envs))
            steps += env.num_envs
        return steps / (time.perf_counter() - start)
    finally:
        envs.close()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks.atari_envs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-id", default="ALE/Breakout-v5")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    speeds = {}
    for vectorization, key, name in (("vector_entry_point", "vector", "ale-py AtariVectorEnv"),
                                     ("sync", "sync", "gymnasium wrappers, SyncVectorEnv")):
        env = EnvConfig(id=args.env_id, num_envs=args.num_envs, vectorization=vectorization,
                        repeat_action_probability=0.0)
        speeds[key] = steps_per_second(env, args.seconds)
        print(f"{name}: {speeds[key]:.0f} steps/s ({args.num_envs} envs, {args.env_id})", flush=True)
    pages.record("performance", "atari_envs", {
        "command": pages.command("benchmarks.atari_envs", argv), "machine": pages.machine(), "env_id": args.env_id,
        "num_envs": args.num_envs, "seconds": args.seconds, "runs": [speeds]})


if __name__ == "__main__":
    main()
