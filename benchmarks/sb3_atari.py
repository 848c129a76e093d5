"""Stable-Baselines3's PPO on Atari with experiment=atari's settings, for throughput: one process, one
torch thread, env steps per second of ``learn()``. Needs the ``bench`` and ``atari`` extras.

    python -m benchmarks.sb3_atari --total-timesteps 20480

SB3's own Atari stack: ``make_atari_env`` (AtariWrapper: up to 30 no-ops, frame skip 4 with max-pooling,
end-of-life terminals, FIRE at reset, 84x84 grayscale, rewards clipped to their sign) and
``VecFrameStack(4)``, on ALE/Breakout-v5 with frame skip and sticky actions off underneath (the
NoFrameskip-v4 protocol); 8 envs in a DummyVecEnv; CnnPolicy (the Nature CNN, shared); n_steps 128,
batch 256, 4 epochs, lr 2.5e-4 decayed linearly, clip 0.1, entropy 0.01, value 0.5, γ 0.99, λ 0.95,
gradient norm 0.5.
"""

from __future__ import annotations

import argparse
import time

import ale_py
import gymnasium as gym
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_atari_env
from stable_baselines3.common.vec_env import VecFrameStack


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sb3_atari", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-id", default="ALE/Breakout-v5")
    parser.add_argument("--total-timesteps", type=int, default=20480)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    gym.register_envs(ale_py)
    envs = VecFrameStack(make_atari_env(args.env_id, n_envs=8, seed=args.seed,
                                        env_kwargs={"frameskip": 1, "repeat_action_probability": 0.0}), 4)
    model = PPO("CnnPolicy", envs, n_steps=128, batch_size=256, n_epochs=4,
                learning_rate=lambda remaining: 2.5e-4 * remaining, clip_range=0.1, ent_coef=0.01, vf_coef=0.5,
                gamma=0.99, gae_lambda=0.95, max_grad_norm=0.5, seed=args.seed, device="cpu")
    start = time.perf_counter()
    model.learn(args.total_timesteps)
    seconds = time.perf_counter() - start
    print(f"SB3 PPO {args.env_id}: {model.num_timesteps} env steps in {seconds:.1f} s, "
          f"{model.num_timesteps / seconds:.0f} steps/s")


if __name__ == "__main__":
    main()
