"""PPO training, top to bottom: ``train(config, out_dir) -> metrics``.

One iteration: COLLECT ``n_steps`` steps from ``num_envs`` envs into preallocated (T, N) tensors;
ADVANTAGES by GAE, once; UPDATE the actor and critic for ``n_epochs`` passes over shuffled
minibatches; LOG losses and diagnostics to TensorBoard. Then EVALUATE greedily and checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from torch.utils.tensorboard import SummaryWriter

from ppo.buffer import Rollout, minibatches
from ppo.checkpoint import CHECKPOINT_DIR, LAST, save_checkpoint
from ppo.config import Config, ConfigError, DeviceConfig, EnvConfig, to_dict
from ppo.envs import EpisodeTracker, make_envs, solved_score
from ppo.gae import compute_gae
from ppo.loss import ppo_loss
from ppo.networks import Actor, Critic, entropy_of, log_prob_of, sample_actions
from ppo.progress import Progress
from ppo.timing import PhaseTimer

log = logging.getLogger(__name__)

SCORE_WINDOW = 100  # episodes in the running mean that decides "solved" (gymnasium's convention)


def train(config: Config, out_dir: str | Path) -> dict[str, float | None]:
    """Train PPO as ``config`` says, writing TensorBoard events, checkpoints and ``metrics.json``
    into ``out_dir``. Returns the run's metrics; ``final_score`` is the greedy evaluation mean."""
    out_dir = Path(out_dir)
    agent, env_cfg, train_cfg = config.agent, config.env, config.train

    # ---- SETUP ----
    device = select_device(config.device)
    torch.manual_seed(config.seed)
    generator = torch.Generator(device=device).manual_seed(config.seed)  # action samples and shuffles
    envs = make_envs(env_cfg)
    obs_dim, n_actions = envs.single_observation_space.shape[0], int(envs.single_action_space.n)
    actor = Actor(obs_dim, n_actions, config.network).to(device)
    critic = Critic(obs_dim, config.network).to(device)
    # Adam for both networks, eps 1e-5 as in SB3 and CleanRL: one optimizer with a parameter group
    # per network makes the same update as two Adams (its moments are per parameter) with half the
    # per-call overhead, and the fused kernel updates a whole group in one op.
    actor_params, critic_params = list(actor.parameters()), list(critic.parameters())
    optimizer = torch.optim.Adam([{"params": actor_params}, {"params": critic_params}],
                                 lr=agent.lr, eps=1e-5, fused=True)

    T, N = agent.n_steps, env_cfg.num_envs
    rollout_size = config.rollout_size
    num_updates = math.ceil(train_cfg.total_timesteps / rollout_size)
    gamma, gae_lambda, policy_clip = agent.gamma, agent.gae_lambda, agent.policy_clip
    critic_coef, entropy_coef, max_grad_norm = agent.critic_coef, agent.entropy_coef, agent.max_grad_norm
    max_episodes = train_cfg.max_episodes

    rollout = Rollout.allocate(T, N, obs_dim)

    writer = SummaryWriter(str(out_dir))
    writer.add_text("config", "```\n" + json.dumps(to_dict(config), indent=2) + "\n```")
    recent_scores: deque[float] = deque(maxlen=SCORE_WINDOW)
    threshold = solved_score(env_cfg)
    best_mean_score = best_score = -math.inf
    episodes_done = 0
    steps_to_solve = seconds_to_solve = None
    progress = Progress(num_updates * rollout_size, enabled=train_cfg.progress)
    checkpoint_path = out_dir / CHECKPOINT_DIR / LAST

    def checkpoint(update: int) -> None:
        save_checkpoint(checkpoint_path, {
            "actor": actor.state_dict(), "critic": critic.state_dict(),
            "optimizer": optimizer.state_dict(),
            "global_step": global_step, "update": update, "config": to_dict(config),
            "obs_dim": obs_dim, "n_actions": n_actions,
            "torch_rng_state": torch.get_rng_state(), "generator_state": generator.get_state(),
        })

    global_step = 0
    timer = PhaseTimer()
    start_time = time.perf_counter()
    env_state = EnvState.reset(envs, config.seed)
    update = 0
    try:
        for update in range(1, num_updates + 1):
            if agent.anneal_lr:
                lr = agent.lr * (1.0 - (update - 1) / num_updates)
                for group in optimizer.param_groups:
                    group["lr"] = lr

            # ---- COLLECT ----
            rollout_start_step = global_step
            with timer("collect"):
                episodes = collect_rollout(envs, actor, rollout, env_state, generator, timer)
            global_step += rollout_size
            for t, score, length in episodes[:max_episodes - episodes_done if max_episodes else None]:
                step = rollout_start_step + (t + 1) * N
                episodes_done += 1
                best_score = max(best_score, score)
                writer.add_scalar("episode/score", score, step)
                writer.add_scalar("episode/length", length, step)
                recent_scores.append(score)
                if len(recent_scores) == SCORE_WINDOW:
                    mean_score = sum(recent_scores) / SCORE_WINDOW
                    best_mean_score = max(best_mean_score, mean_score)
                    if steps_to_solve is None and threshold is not None and mean_score >= threshold:
                        steps_to_solve, seconds_to_solve = step, time.perf_counter() - start_time
            if (train_cfg.stop_when_solved and steps_to_solve is not None) or episodes_done == max_episodes:
                break

            # ---- ADVANTAGES ----
            with timer("advantages"):
                data = rollout.to(device)
                values, next_values = estimate_values(critic, data, torch.from_numpy(env_state.obs).to(device))
                advantages = compute_gae(data.rewards, values, next_values, data.terminated, data.ended,
                                         gamma, gae_lambda)
                returns = advantages + values

            # ---- UPDATE ----
            b_obs, b_actions, b_log_probs = data.obs.view(-1, obs_dim), data.actions.view(-1), data.log_probs.view(-1)
            b_advantages, b_returns = advantages.view(-1), returns.view(-1)
            train_index = data.trainable.view(-1).nonzero().squeeze(1)
            stats = torch.zeros(6, device=device)
            n_minibatch_steps = 0
            for _epoch in range(agent.n_epochs):
                for batch in minibatches(train_index, agent.batch_size, generator):
                    with timer("update_forward"):
                        batch_obs = b_obs[batch]
                        batch_log_probs = actor(batch_obs)
                        batch_advantages = b_advantages[batch]
                        if agent.normalize_advantages and batch.numel() > 1:
                            batch_advantages = ((batch_advantages - batch_advantages.mean())
                                                / (batch_advantages.std() + 1e-8))
                        loss = ppo_loss(
                            new_log_probs=log_prob_of(batch_log_probs, b_actions[batch]),
                            old_log_probs=b_log_probs[batch],
                            advantages=batch_advantages,
                            new_values=critic(batch_obs),
                            returns=b_returns[batch],
                            entropy=entropy_of(batch_log_probs),
                            policy_clip=policy_clip,
                        )
                        total = loss.actor + critic_coef * loss.critic
                        if entropy_coef:  # else no backward pass through the entropy
                            total = total - entropy_coef * loss.entropy
                    with timer("update_backward"):
                        optimizer.zero_grad(set_to_none=True)
                        total.backward()
                    with timer("update_optimizer"):
                        if max_grad_norm is not None:
                            clip_grad_norm(actor_params, max_grad_norm)
                            clip_grad_norm(critic_params, max_grad_norm)
                        optimizer.step()
                    stats += torch.stack((loss.actor, loss.critic, total, loss.entropy, loss.approx_kl,
                                          loss.clip_fraction)).detach()
                    n_minibatch_steps += 1

            # ---- LOG ----
            with timer("log"):
                elapsed = time.perf_counter() - start_time
                scalars = {"time/steps_per_second": global_step / elapsed,
                           "diagnostics/learning_rate": optimizer.param_groups[0]["lr"]}
                if n_minibatch_steps:  # zero only when every step of the rollout was a reset step
                    actor_loss, critic_loss, total_loss, entropy, approx_kl, clip_fraction = (
                        stats / n_minibatch_steps).tolist()
                    scalars.update({
                        "loss/actor": actor_loss, "loss/critic": critic_loss, "loss/total": total_loss,
                        "diagnostics/entropy": entropy, "diagnostics/approx_kl": approx_kl,
                        "diagnostics/clip_fraction": clip_fraction,
                        "diagnostics/explained_variance": explained_variance(
                            values.view(-1)[train_index], b_returns[train_index]),
                    })
                for tag, value in scalars.items():
                    writer.add_scalar(tag, value, global_step)
                mean_recent = sum(recent_scores) / len(recent_scores) if recent_scores else None
                if mean_recent is not None:
                    writer.add_scalar("episode/mean_score_100", mean_recent, global_step)
                progress.update(global_step, mean_recent)
            if train_cfg.checkpoint_every and update % train_cfg.checkpoint_every == 0:
                with timer("checkpoint"):
                    checkpoint(update)
    finally:
        envs.close()

    train_seconds = time.perf_counter() - start_time
    progress.close(global_step, sum(recent_scores) / len(recent_scores) if recent_scores else None)
    checkpoint(update)

    # ---- EVALUATE ----
    eval_scores = evaluate(actor, env_cfg, train_cfg.eval_episodes, seed=config.seed + 1_000_000, device=device)
    final_score = float(np.mean(eval_scores)) if len(eval_scores) else float("nan")
    if len(eval_scores):
        writer.add_scalar("eval/score", final_score, global_step)
        log.info("Evaluation: %.1f ± %.1f over %d greedy episodes", final_score, np.std(eval_scores), len(eval_scores))
    writer.close()

    metrics = {
        "final_score": final_score,
        "best_mean_score_100": best_mean_score if best_mean_score > -math.inf else None,
        "best_score": best_score if best_score > -math.inf else None,
        "episodes": episodes_done,
        "steps_to_solve": steps_to_solve,
        "seconds_to_solve": seconds_to_solve,
        "global_step": global_step,
        "train_seconds": train_seconds,
        "steps_per_second": global_step / train_seconds,
        # Wall seconds per phase; "collect" includes "env_step", the rest is acting and storage.
        "phase_seconds": {phase: round(seconds, 3) for phase, seconds in timer.seconds.items()},
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def explained_variance(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """1 - Var(targets - predictions) / Var(targets): 1 is a perfect critic, 0 no better than a
    constant, negative worse than one. NaN when the targets do not vary."""
    if targets.numel() < 2:
        return float("nan")
    targets_var = targets.var().item()
    return 1.0 - (targets - predictions).var().item() / targets_var if targets_var > 0 else float("nan")


def clip_grad_norm(params: list[torch.nn.Parameter], max_norm: float) -> None:
    """Scale the gradients of ``params`` so that their global L2 norm is at most ``max_norm``.
    The same as ``torch.nn.utils.clip_grad_norm_`` for parameters on one device, in a third of its
    time for small networks: that function regroups the tensors by device and dtype on every call."""
    grads = [p.grad for p in params if p.grad is not None]
    total_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    torch._foreach_mul_(grads, (max_norm / (total_norm + 1e-6)).clamp_(max=1.0))


def select_device(device: DeviceConfig) -> torch.device:
    """The torch device of the ``device`` group, with torch's CPU thread count set."""
    if device.torch_threads:
        torch.set_num_threads(device.torch_threads)
    if device.type == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device.type='cuda' is not allowed: no CUDA device is available here; use cpu or auto")
    return torch.device(device.type)


@dataclass
class EnvState:
    """Where the vector env stands between two rollouts."""

    obs: np.ndarray  # (N, obs_dim) float32: the observation to act on next
    resets_now: np.ndarray  # (N,) bool: next-step autoreset mode, sub-envs whose next step() only resets
    tracker: EpisodeTracker  # score and length of each sub-env's episode in progress
    next_step_reset: bool  # the env's autoreset mode is next-step (else same-step)

    @classmethod
    def reset(cls, envs: gym.vector.VectorEnv, seed: int) -> EnvState:
        obs, _ = envs.reset(seed=seed)
        return cls(np.asarray(obs, dtype=np.float32), np.zeros(envs.num_envs, dtype=bool),
                   EpisodeTracker(envs.num_envs), envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP)


@torch.inference_mode()
def collect_rollout(
    envs: gym.vector.VectorEnv, actor: Actor, rollout: Rollout, state: EnvState, generator: torch.Generator,
    timer: PhaseTimer | None = None,
) -> list[tuple[int, float, int]]:
    """Fill ``rollout`` with its T vector steps, acting from ``state`` (advanced in place).

    Returns the episodes that ended in it as ``(t, score, length)``, ``t`` being the rollout step
    that ended each. One actor forward pass per step for all envs; values come later, in one pass.
    """
    device = next(actor.parameters()).device
    timer = timer or PhaseTimer()
    # numpy views of the host-side rollout: env outputs go in without torch op overhead.
    obs, rewards, terminated = rollout.obs.numpy(), rollout.rewards.numpy(), rollout.terminated.numpy()
    ended, trainable = rollout.ended.numpy(), rollout.trainable.numpy()
    rollout.has_final_obs.zero_()
    episodes = []
    for t in range(obs.shape[0]):
        obs[t] = state.obs
        action_log_probs = actor(torch.from_numpy(obs[t]).to(device))
        action = sample_actions(action_log_probs, generator)
        rollout.actions[t] = action
        rollout.log_probs[t] = log_prob_of(action_log_probs, action)

        with timer("env_step"):
            next_obs, reward, term, trunc, infos = envs.step(action.cpu().numpy())
        done = term | trunc
        counted = ~state.resets_now
        rewards[t], terminated[t], ended[t], trainable[t] = reward, term, done, counted
        if state.next_step_reset:
            state.resets_now = done
        elif trunc.any():
            # Same-step reset: next_obs already starts the new episode; the truncated one's true
            # last obs is in infos, and it is what the truncated step bootstraps from.
            cut = np.flatnonzero(trunc & ~term)
            if cut.size:
                rollout.final_obs.numpy()[t, cut] = np.stack(infos["final_obs"][cut])
                rollout.has_final_obs[t, cut] = True
        state.obs = np.asarray(next_obs, dtype=np.float32)
        scores, lengths = state.tracker.update(reward, done, counted)
        episodes += [(t, score, length) for score, length in zip(scores.tolist(), lengths.tolist())]
    return episodes


@torch.no_grad()
def estimate_values(critic: Critic, rollout: Rollout, next_obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """V(s_t) and V(s_{t+1}) for every step of a rollout already on the critic's device, (T, N) each,
    in batched forward passes: the critic is the same for the whole rollout."""
    values = critic(rollout.obs)
    final_values = critic(rollout.final_obs) if rollout.has_final_obs.any() else None
    return values, rollout.next_values(values, critic(next_obs), final_values)


@torch.inference_mode()
def evaluate(actor: Actor, env: EnvConfig, episodes: int, seed: int, device: torch.device | str = "cpu") -> np.ndarray:
    """Scores of ``episodes`` greedy (argmax) episodes, one per sub-env of a fresh vector env."""
    if episodes == 0:
        return np.zeros(0)
    envs = make_envs(env, num_envs=episodes)
    try:
        next_obs, _ = envs.reset(seed=seed)
        scores = np.zeros(episodes)
        running = np.ones(episodes, dtype=bool)
        while running.any():
            action = actor(torch.as_tensor(next_obs, dtype=torch.float32, device=device)).argmax(-1)
            next_obs, reward, term, trunc, _ = envs.step(action.cpu().numpy())
            scores += reward * running
            running &= ~(term | trunc)
    finally:
        envs.close()
    return scores
