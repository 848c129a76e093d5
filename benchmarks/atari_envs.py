"""Steps per second of the Atari preprocessing: ale-py's C++ vector env against gymnasium's wrappers
(AtariPreprocessing and FrameStackObservation in a SyncVectorEnv), random actions, no agent.

    python benchmarks/atari_envs.py [--env-id ALE/Breakout-v5] [--num-envs 8] [--seconds 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-id", default="ALE/Breakout-v5")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    for vectorization, name in (("vector_entry_point", "ale-py AtariVectorEnv"),
                                ("sync", "gymnasium wrappers, SyncVectorEnv")):
        env = EnvConfig(id=args.env_id, num_envs=args.num_envs, vectorization=vectorization,
                        repeat_action_probability=0.0)
        print(f"{name}: {steps_per_second(env, args.seconds):.0f} steps/s "
              f"({args.num_envs} envs, {args.env_id})", flush=True)


if __name__ == "__main__":
    main()
