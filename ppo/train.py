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
from pathlib import Path

import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from torch.utils.tensorboard import SummaryWriter

from ppo.checkpoint import CHECKPOINT_DIR, LAST, save_checkpoint
from ppo.config import Config, ConfigError, DeviceConfig, EnvConfig, to_dict
from ppo.envs import EpisodeTracker, make_envs, solved_score
from ppo.gae import compute_gae
from ppo.loss import ppo_loss
from ppo.networks import Actor, Critic, entropy_of, log_prob_of, sample_actions
from ppo.progress import Progress

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
    next_step_reset = envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs_dim, n_actions = envs.single_observation_space.shape[0], int(envs.single_action_space.n)
    actor = Actor(obs_dim, n_actions, config.network).to(device)
    critic = Critic(obs_dim, config.network).to(device)
    # Two networks, two Adams; eps 1e-5 as in SB3 and CleanRL (PyTorch's 1e-8 is less stable here).
    actor_optimizer = torch.optim.Adam(actor.parameters(), lr=agent.lr, eps=1e-5)
    critic_optimizer = torch.optim.Adam(critic.parameters(), lr=agent.lr, eps=1e-5)

    T, N = agent.n_steps, env_cfg.num_envs
    rollout_size = config.rollout_size
    num_updates = math.ceil(train_cfg.total_timesteps / rollout_size)
    gamma, gae_lambda, policy_clip = agent.gamma, agent.gae_lambda, agent.policy_clip
    critic_coef, entropy_coef, max_grad_norm = agent.critic_coef, agent.entropy_coef, agent.max_grad_norm

    # Rollout storage, (T, N, ...), allocated once.
    obs = torch.zeros((T, N, obs_dim), device=device)
    actions = torch.zeros((T, N), dtype=torch.long, device=device)
    log_probs = torch.zeros((T, N), device=device)
    values = torch.zeros((T, N), device=device)
    rewards = torch.zeros((T, N), device=device)
    terminated = torch.zeros((T, N), device=device)
    ended = torch.zeros((T, N), device=device)  # terminated or truncated
    # False on a sub-env's reset step in next-step autoreset mode: that step ignores the action and
    # spans two episodes, so it is no transition to learn from.
    trainable = torch.ones((T, N), dtype=torch.bool, device=device)
    # Same-step autoreset mode: V(true final obs) of truncated episodes, to bootstrap from.
    final_values = torch.zeros((T, N), device=device)
    has_final_value = torch.zeros((T, N), dtype=torch.bool, device=device)

    writer = SummaryWriter(str(out_dir))
    writer.add_text("config", "```\n" + json.dumps(to_dict(config), indent=2) + "\n```")
    tracker = EpisodeTracker(N)
    recent_scores: deque[float] = deque(maxlen=SCORE_WINDOW)
    threshold = solved_score(env_cfg)
    best_mean_score = -math.inf
    steps_to_solve = seconds_to_solve = None
    progress = Progress(num_updates * rollout_size, enabled=train_cfg.progress)
    checkpoint_path = out_dir / CHECKPOINT_DIR / LAST

    def checkpoint(update: int) -> None:
        save_checkpoint(checkpoint_path, {
            "actor": actor.state_dict(), "critic": critic.state_dict(),
            "actor_optimizer": actor_optimizer.state_dict(), "critic_optimizer": critic_optimizer.state_dict(),
            "global_step": global_step, "update": update, "config": to_dict(config),
            "obs_dim": obs_dim, "n_actions": n_actions,
            "torch_rng_state": torch.get_rng_state(), "generator_state": generator.get_state(),
        })

    global_step = 0
    start_time = time.perf_counter()
    next_obs_np, _ = envs.reset(seed=config.seed)
    next_obs = torch.as_tensor(next_obs_np, device=device)
    resets_now = np.zeros(N, dtype=bool)  # next-step mode: sub-envs whose next step() only resets
    update = 0
    try:
        for update in range(1, num_updates + 1):
            if agent.anneal_lr:
                lr = agent.lr * (1.0 - (update - 1) / num_updates)
                for optimizer in (actor_optimizer, critic_optimizer):
                    optimizer.param_groups[0]["lr"] = lr

            # ---- COLLECT ----
            has_final_value.zero_()
            with torch.inference_mode():
                for t in range(T):
                    obs[t] = next_obs
                    action_log_probs = actor(next_obs)
                    action = sample_actions(action_log_probs, generator)
                    actions[t] = action
                    log_probs[t] = log_prob_of(action_log_probs, action)
                    values[t] = critic(next_obs)

                    next_obs_np, reward, term, trunc, infos = envs.step(action.cpu().numpy())
                    done = term | trunc
                    rewards[t] = torch.from_numpy(reward)
                    terminated[t] = torch.from_numpy(term)
                    ended[t] = torch.from_numpy(done)
                    counted = ~resets_now
                    trainable[t] = torch.from_numpy(counted)
                    if next_step_reset:
                        resets_now = done
                    elif trunc.any():
                        # Same-step reset: next_obs is already the new episode's first obs.
                        cut = np.flatnonzero(trunc & ~term)
                        if cut.size:
                            final_obs = np.stack(infos["final_obs"][cut])
                            final_values[t, cut] = critic(torch.as_tensor(final_obs, device=device))
                            has_final_value[t, cut] = True
                    next_obs = torch.as_tensor(next_obs_np, device=device)
                    global_step += N

                    scores, lengths = tracker.update(reward, done, counted)
                    for score, length in zip(scores.tolist(), lengths.tolist()):
                        writer.add_scalar("episode/score", score, global_step)
                        writer.add_scalar("episode/length", length, global_step)
                        recent_scores.append(score)
                        if len(recent_scores) == SCORE_WINDOW:
                            mean_score = sum(recent_scores) / SCORE_WINDOW
                            best_mean_score = max(best_mean_score, mean_score)
                            if steps_to_solve is None and threshold is not None and mean_score >= threshold:
                                steps_to_solve, seconds_to_solve = global_step, time.perf_counter() - start_time
                last_values = critic(next_obs)
            if train_cfg.stop_when_solved and steps_to_solve is not None:
                break

            # ---- ADVANTAGES ----
            # V(s_{t+1}): the next stored value; in next-step mode a finished episode's final obs is
            # the next stored obs, so truncated episodes bootstrap from it with no extra forward pass.
            next_values = torch.cat((values[1:], last_values.unsqueeze(0)))
            next_values = torch.where(has_final_value, final_values, next_values)
            advantages = compute_gae(rewards, values, next_values, terminated, ended, gamma, gae_lambda)
            returns = advantages + values

            # ---- UPDATE ----
            b_obs, b_actions = obs.view(-1, obs_dim), actions.view(-1)
            b_log_probs, b_advantages, b_returns = log_probs.view(-1), advantages.view(-1), returns.view(-1)
            train_index = trainable.view(-1).nonzero().squeeze(1)
            n_train = train_index.numel()
            n_minibatches = math.ceil(n_train / agent.batch_size)
            stats = torch.zeros(6, device=device)
            for _epoch in range(agent.n_epochs):
                # Each epoch uses every trainable transition exactly once, in minibatches whose sizes
                # differ by at most one (all equal to batch_size when it divides the rollout).
                shuffled = train_index[torch.randperm(n_train, generator=generator, device=device)]
                for batch in shuffled.tensor_split(n_minibatches):
                    batch_log_probs = actor(b_obs[batch])
                    batch_advantages = b_advantages[batch]
                    if agent.normalize_advantages and batch.numel() > 1:
                        batch_advantages = (batch_advantages - batch_advantages.mean()) / (batch_advantages.std() + 1e-8)
                    loss = ppo_loss(
                        new_log_probs=log_prob_of(batch_log_probs, b_actions[batch]),
                        old_log_probs=b_log_probs[batch],
                        advantages=batch_advantages,
                        new_values=critic(b_obs[batch]),
                        returns=b_returns[batch],
                        entropy=entropy_of(batch_log_probs),
                        policy_clip=policy_clip,
                    )
                    total = loss.actor + critic_coef * loss.critic - entropy_coef * loss.entropy
                    actor_optimizer.zero_grad(set_to_none=True)
                    critic_optimizer.zero_grad(set_to_none=True)
                    total.backward()
                    if max_grad_norm is not None:
                        torch.nn.utils.clip_grad_norm_(actor.parameters(), max_grad_norm)
                        torch.nn.utils.clip_grad_norm_(critic.parameters(), max_grad_norm)
                    actor_optimizer.step()
                    critic_optimizer.step()
                    stats += torch.stack((loss.actor, loss.critic, total, loss.entropy, loss.approx_kl,
                                          loss.clip_fraction)).detach()

            # ---- LOG ----
            actor_loss, critic_loss, total_loss, entropy, approx_kl, clip_fraction = (
                stats / (agent.n_epochs * n_minibatches)).tolist()
            trained_values, trained_returns = values.view(-1)[train_index], b_returns[train_index]
            returns_var = trained_returns.var().item()
            explained_variance = (1.0 - (trained_returns - trained_values).var().item() / returns_var
                                  if returns_var > 0 else float("nan"))
            elapsed = time.perf_counter() - start_time
            for tag, value in (
                ("loss/actor", actor_loss), ("loss/critic", critic_loss), ("loss/total", total_loss),
                ("diagnostics/entropy", entropy), ("diagnostics/approx_kl", approx_kl),
                ("diagnostics/clip_fraction", clip_fraction), ("diagnostics/explained_variance", explained_variance),
                ("diagnostics/learning_rate", actor_optimizer.param_groups[0]["lr"]),
                ("time/steps_per_second", global_step / elapsed),
            ):
                writer.add_scalar(tag, value, global_step)
            mean_recent = sum(recent_scores) / len(recent_scores) if recent_scores else None
            if mean_recent is not None:
                writer.add_scalar("episode/mean_score_100", mean_recent, global_step)
            progress.update(global_step, mean_recent)
            if train_cfg.checkpoint_every and update % train_cfg.checkpoint_every == 0:
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
        "steps_to_solve": steps_to_solve,
        "seconds_to_solve": seconds_to_solve,
        "global_step": global_step,
        "train_seconds": train_seconds,
        "steps_per_second": global_step / train_seconds,
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def select_device(device: DeviceConfig) -> torch.device:
    """The torch device of the ``device`` group, with torch's CPU thread count set."""
    if device.torch_threads:
        torch.set_num_threads(device.torch_threads)
    if device.type == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device.type='cuda' is not allowed: no CUDA device is available here; use cpu or auto")
    return torch.device(device.type)


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
            action = actor(torch.as_tensor(next_obs, device=device)).argmax(-1)
            next_obs, reward, term, trunc, _ = envs.step(action.cpu().numpy())
            scores += reward * running
            running &= ~(term | trunc)
    finally:
        envs.close()
    return scores
