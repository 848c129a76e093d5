"""Observation normalization and reward scaling, the ``env.normalize_*`` options.

They work on the host-side numpy arrays the vector env returns, inside the trainer rather than as env
wrappers, so that episode scores stay in the env's own units and the statistics are plain data that
a checkpoint holds and evaluation reuses.
"""

from __future__ import annotations

import numpy as np
import torch

from ppo.config import EnvConfig

EPSILON = 1e-8  # keeps the division finite before any variance is seen


class RunningMeanStd:
    """Mean and variance of every row seen so far, updated a batch of rows at a time.

    Batches merge by Chan et al.'s parallel formula, in float64 so that millions of rows do not lose
    precision. It starts as one pseudo-observation of mean 0 and variance 1 weighted 1e-4, as SB3's
    does, so that the first batch decides the statistics almost alone.
    """

    def __init__(self, shape: tuple[int, ...] = ()):
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = 1e-4

    def update(self, batch: np.ndarray) -> None:
        """Take in ``batch``, shape (B, *shape)."""
        n = batch.shape[0]
        if n == 0:
            return
        batch_mean, batch_var = batch.mean(axis=0), batch.var(axis=0)
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.var = (self.var * self.count + batch_var * n + delta**2 * (self.count * n / total)) / total
        self.count = total

    def state_dict(self) -> dict:
        return {"mean": torch.tensor(self.mean, dtype=torch.float64), "var": torch.tensor(self.var, dtype=torch.float64),
                "count": float(self.count)}

    def load_state_dict(self, state: dict) -> None:
        self.mean = state["mean"].cpu().numpy().astype(np.float64)  # a checkpoint may be loaded onto a GPU
        self.var = state["var"].cpu().numpy().astype(np.float64)
        self.count = float(state["count"])


class Normalizer:
    """What ``env.normalize_observations`` and ``env.normalize_rewards`` do to one vector env's data.

    Observations: (obs - mean) / std, clipped to ±``env.clip_observations``, with the running
    statistics of every observation seen in training. Rewards: divided by the running std of each
    sub-env's discounted return (γ = ``gamma``), clipped to ±``env.clip_rewards``; not centred, so
    a reward's sign is kept. Both as SB3's VecNormalize. Either part off (the default) passes its
    data through. ``sign_rewards`` (``env.sign_rewards``) first replaces each reward by its sign.
    """

    def __init__(self, obs_dim: int, num_envs: int, gamma: float = 0.99, normalize_observations: bool = False,
                 normalize_rewards: bool = False, clip_observations: float = 10.0, clip_rewards: float = 10.0,
                 sign_rewards: bool = False):
        self.sign_rewards = sign_rewards
        self.obs_stats = RunningMeanStd((obs_dim,)) if normalize_observations else None
        self.return_stats = RunningMeanStd() if normalize_rewards else None
        self.clip_observations, self.clip_rewards = clip_observations, clip_rewards
        self.gamma = gamma
        self.returns = np.zeros(num_envs, dtype=np.float64)  # each sub-env's discounted return so far

    @classmethod
    def from_config(cls, env: EnvConfig, obs_dim: int, num_envs: int, gamma: float) -> Normalizer:
        """The normalizer that the ``env`` group's options ask for."""
        return cls(obs_dim, num_envs, gamma, env.normalize_observations, env.normalize_rewards,
                   env.clip_observations, env.clip_rewards, env.sign_rewards)

    def observations(self, obs: np.ndarray, update: bool = True) -> np.ndarray:
        """``obs`` (B, obs_dim) normalized, as float32; ``update`` takes them into the statistics first
        (training), else they stay frozen (evaluation, and a truncated episode's final observation in
        same-step autoreset mode, which is only bootstrapped from, as SB3 does). Without statistics,
        uint8 and bool images pass as they are (the network scales them) and numbers become float32."""
        obs = np.asarray(obs)
        if self.obs_stats is None:
            return obs if obs.dtype in (np.uint8, np.bool_) else obs.astype(np.float32, copy=False)
        obs = obs.astype(np.float32, copy=False)
        if update:
            self.obs_stats.update(obs)
        normalized = (obs - self.obs_stats.mean) / np.sqrt(self.obs_stats.var + EPSILON)
        return np.clip(normalized, -self.clip_observations, self.clip_observations).astype(np.float32)

    def rewards(self, rewards: np.ndarray, ended: np.ndarray, counted: np.ndarray) -> np.ndarray:
        """One vector step's ``rewards`` (N,) scaled for training. ``ended`` marks sub-envs whose
        episode ended at this step (their return restarts); ``counted`` is False for a next-step
        autoreset's reset step, which is no transition and stays out of the statistics."""
        if self.sign_rewards:
            rewards = np.sign(rewards)
        if self.return_stats is None:
            return rewards
        self.returns = self.returns * self.gamma + rewards
        self.return_stats.update(self.returns[counted])
        scaled = rewards / np.sqrt(self.return_stats.var + EPSILON)
        self.returns[ended] = 0.0
        return np.clip(scaled, -self.clip_rewards, self.clip_rewards)

    def state_dict(self) -> dict:
        """The statistics, as tensors and numbers (what a weights-only checkpoint may hold)."""
        state = {}
        if self.obs_stats is not None:
            state["observations"] = self.obs_stats.state_dict()
        if self.return_stats is not None:
            state["returns"] = self.return_stats.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` saved; the in-progress returns restart, as the episodes do."""
        if self.obs_stats is not None and "observations" in state:
            self.obs_stats.load_state_dict(state["observations"])
        if self.return_stats is not None and "returns" in state:
            self.return_stats.load_state_dict(state["returns"])
        self.returns[:] = 0.0
