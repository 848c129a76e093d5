"""Stable-Baselines3's PPO on a gymnasium env, measured like our runs: one process, one torch thread,
time from the start of ``learn()``, and the env steps at which the mean score of 100 consecutive
training episodes first reaches the solved score. Needs the ``bench`` extra (``pip install -e ".[bench]"``).

    python -m benchmarks.sb3_ppo --seed 1 --out metrics.json                  # RL Zoo's CartPole-v1 settings
    python -m benchmarks.sb3_ppo --seed 1 --total-timesteps 50000 --no-stop   # throughput only
    python -m benchmarks.sb3_ppo --env HalfCheetah-v5 --total-timesteps 100000 --no-stop  # needs the mujoco extra
    python -m benchmarks.sb3_ppo --env Hopper-v5 --total-timesteps 1000000 --no-stop --eval-episodes 20
    python -m benchmarks.sb3_ppo --env Ant-v5 --env-kwargs '{"contact_cost_weight": 0}' --no-stop

The defaults are RL Zoo's tuned hyperparameters for CartPole-v1 (rl-baselines3-zoo,
hyperparams/ppo.yml): 8 envs, n_steps 32, batch 256, 20 epochs, λ 0.8, γ 0.98, entropy 0, learning
rate and clip range decayed linearly from 1e-3 and 0.2; SB3's default MlpPolicy (separate 64x64 tanh
actor and critic), max_grad_norm 0.5, vf_coef 0.5. ``--env HalfCheetah-v5``, ``Hopper-v5``,
``Walker2d-v5`` and ``Ant-v5`` take RL Zoo's settings for that env instead, as
conf/experiment/<env>_tuned.yaml has them (``RL_ZOO_MUJOCO``). ``--env-kwargs`` passes keyword
arguments to the env's constructor, as ``env.kwargs`` does in ours. The metrics also hold the
100-episode mean every 10k steps (``curve``) and, with ``--eval-episodes``, the deterministic policy's
scores after training.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

# RL Zoo's PPO settings (hyperparams/ppo.yml, as conf/experiment/<env>_tuned.yaml has them), on 1 env;
# all normalize observations and rewards (VecNormalize, γ the agent's).
TUNED_POLICY = dict(log_std_init=-2, ortho_init=False, activation_fn=torch.nn.ReLU,
                    net_arch=dict(pi=[256, 256], vf=[256, 256]))
RL_ZOO_MUJOCO = {
    "HalfCheetah-v5": dict(n_steps=512, batch_size=64, n_epochs=20, gae_lambda=0.92, gamma=0.98, ent_coef=0.000401762,
                           learning_rate=2.0633e-05, clip_range=0.1, max_grad_norm=0.8, vf_coef=0.58096,
                           policy_kwargs=TUNED_POLICY),
    "Hopper-v5": dict(n_steps=512, batch_size=32, n_epochs=5, gae_lambda=0.99, gamma=0.999, ent_coef=0.00229519,
                      learning_rate=9.80828e-05, clip_range=0.2, max_grad_norm=0.7, vf_coef=0.835671,
                      policy_kwargs=TUNED_POLICY),
    # no policy_kwargs: SB3's default MlpPolicy (64x64 tanh, orthogonal init, log-std starting at 0)
    "Walker2d-v5": dict(n_steps=512, batch_size=32, n_epochs=20, gae_lambda=0.95, gamma=0.99,
                        ent_coef=0.000585045, learning_rate=5.05041e-05, clip_range=0.1, max_grad_norm=1.0,
                        vf_coef=0.871923),
    # RL Zoo sets only normalize: SB3's defaults (2048 steps, minibatch 64, 10 epochs, γ 0.99, ...)
    "Ant-v5": dict(gamma=0.99),
}
CURVE_EVERY = 10_000  # env steps between the points of the recorded 100-episode mean


def linear(start: float):
    """SB3 schedules take the remaining progress, 1 -> 0."""
    return lambda progress_remaining: progress_remaining * start


class SolvedCallback(BaseCallback):
    """Records each finished episode's score (from SB3's Monitor wrapper) and the step and time at
    which the 100-episode mean first reaches ``threshold``; stops training there if ``stop``."""

    def __init__(self, threshold: float, stop: bool):
        super().__init__()
        self.threshold, self.stop = threshold, stop
        self.recent: deque[float] = deque(maxlen=100)
        self.best_mean = self.best_score = -np.inf
        self.episodes = 0
        self.steps_to_solve = self.seconds_to_solve = None
        self.curve: list[tuple[int, float]] = []  # (env step, 100-episode mean) every CURVE_EVERY steps
        self.start = time.perf_counter()

    def _on_training_start(self) -> None:
        self.start = time.perf_counter()

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:
                score = float(info["episode"]["r"])
                self.episodes += 1
                self.best_score = max(self.best_score, score)
                self.recent.append(score)
                if len(self.recent) == 100:
                    mean = float(np.mean(self.recent))
                    self.best_mean = max(self.best_mean, mean)
                    if self.steps_to_solve is None and mean >= self.threshold:
                        self.steps_to_solve = self.num_timesteps
                        self.seconds_to_solve = time.perf_counter() - self.start
        if self.recent and self.num_timesteps // CURVE_EVERY > len(self.curve):
            self.curve.append((self.num_timesteps, float(np.mean(self.recent))))
        return not (self.stop and self.steps_to_solve is not None)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sb3_ppo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--total-timesteps", type=int, default=100_000)
    parser.add_argument("--threshold", type=float, default=475.0)
    parser.add_argument("--no-stop", action="store_true", help="train the whole budget even once solved")
    parser.add_argument("--eval-episodes", type=int, default=0,
                        help="deterministic episodes after training, observations normalized with the frozen "
                             "statistics")
    parser.add_argument("--env-kwargs", type=json.loads, default={},
                        help="keyword arguments for the env's constructor, as a JSON object")
    parser.add_argument("--out", type=Path, help="write the metrics here as JSON (else print them)")
    args = parser.parse_args()

    torch.set_num_threads(1)
    if args.env in RL_ZOO_MUJOCO:
        settings = RL_ZOO_MUJOCO[args.env]
        envs = make_vec_env(args.env, n_envs=1, seed=args.seed, env_kwargs=args.env_kwargs)
        envs = VecNormalize(envs, gamma=settings["gamma"])
        model = PPO("MlpPolicy", envs, **settings, seed=args.seed, device="cpu", verbose=0)
    else:
        envs = make_vec_env(args.env, n_envs=8, seed=args.seed, env_kwargs=args.env_kwargs)
        model = PPO("MlpPolicy", envs, n_steps=32, batch_size=256, n_epochs=20, gae_lambda=0.8, gamma=0.98,
                    ent_coef=0.0, learning_rate=linear(1e-3), clip_range=linear(0.2), seed=args.seed,
                    device="cpu", verbose=0)
    callback = SolvedCallback(args.threshold, stop=not args.no_stop)
    start = time.perf_counter()
    model.learn(total_timesteps=args.total_timesteps, callback=callback)
    train_seconds = time.perf_counter() - start
    metrics = {
        "steps_to_solve": callback.steps_to_solve,
        "seconds_to_solve": callback.seconds_to_solve,
        "best_mean_score_100": callback.best_mean if callback.best_mean > -np.inf else None,
        "best_score": callback.best_score if callback.best_score > -np.inf else None,
        "episodes": callback.episodes,
        "global_step": model.num_timesteps,
        "train_seconds": train_seconds,
        "steps_per_second": model.num_timesteps / train_seconds,
        "last_mean_score_100": float(np.mean(callback.recent)) if callback.recent else None,
        "curve": callback.curve,
    }
    if args.eval_episodes:
        scores = evaluate(model, args.env, args.env_kwargs, args.seed, args.eval_episodes)
        metrics.update(final_score=float(np.mean(scores)), final_score_std=float(np.std(scores)), eval_scores=scores)
    if args.out:
        args.out.write_text(json.dumps(metrics, indent=2) + "\n")
    else:
        print(json.dumps(metrics, indent=2))


def evaluate(model: PPO, env_id: str, env_kwargs: dict, seed: int, episodes: int) -> list[float]:
    """Scores of ``episodes`` episodes of the deterministic policy in a fresh env (as RL Zoo evaluates),
    with the training run's observation statistics frozen when it normalized them."""
    envs = make_vec_env(env_id, n_envs=1, seed=seed + 10_000, env_kwargs=env_kwargs)
    training_envs = model.get_env()
    if isinstance(training_envs, VecNormalize):
        envs = VecNormalize(envs, training=False, norm_reward=False)
        envs.obs_rms = training_envs.obs_rms
    scores, obs = [], envs.reset()
    while len(scores) < episodes:
        actions, _ = model.predict(obs, deterministic=True)
        obs, _, dones, infos = envs.step(actions)
        scores += [float(info["episode"]["r"]) for info, done in zip(infos, dones) if done and "episode" in info]
    return scores


if __name__ == "__main__":
    main()
