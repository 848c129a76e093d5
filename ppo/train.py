"""PPO training, top to bottom: ``train(config, out_dir) -> metrics``.

One iteration: COLLECT ``n_steps`` steps from ``num_envs`` envs into preallocated (T, N) tensors;
ADVANTAGES by GAE, once; UPDATE the actor and critic for ``n_epochs`` passes over shuffled
minibatches; LOG losses and diagnostics to TensorBoard. Then EVALUATE greedily and checkpoint.

Reliability around the loop: ``resume=True`` continues from the run dir's last checkpoint; SIGINT
and SIGTERM stop the run between two updates with a checkpoint; a NaN or infinite loss or
parameter raises :class:`TrainingDiverged` and leaves the last good checkpoint in place.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from torch.utils.tensorboard import SummaryWriter

from ppo.buffer import Rollout, minibatches, trainable_samples
from ppo.checkpoint import CHECKPOINT_DIR, LAST, check_spaces, load_checkpoint, load_weights, save_checkpoint
from ppo.config import Config, ConfigError, DeviceConfig, EnvConfig, TrainingDiverged, to_dict
from ppo.envs import EpisodeTracker, make_envs, solved_score
from ppo.gae import compute_gae
from ppo.loss import ppo_loss
from ppo.networks import Actor, Critic, GaussianActor, Policy, action_space_spec, make_actor
from ppo.normalize import Normalizer
from ppo.progress import Progress
from ppo.timing import PhaseTimer

log = logging.getLogger(__name__)

SCORE_WINDOW = 100  # episodes in the running mean that decides "solved" (gymnasium's convention)
EVAL_SEED_OFFSET = 1_000_000  # the greedy evaluation's envs are seeded with seed + this


def train(config: Config, out_dir: str | Path, resume: bool = False) -> dict[str, float | None]:
    """Train PPO as ``config`` says, writing TensorBoard events, checkpoints and ``metrics.json``
    into ``out_dir``. Returns the run's metrics; ``final_score`` is the greedy evaluation mean.

    ``resume=True`` continues the run in ``out_dir`` from its ``checkpoints/last.pt``: networks,
    optimizers, RNG states, step and update counters and episode statistics as saved, the envs reset
    with a seed derived from the seed and the update (episodes in progress at the stop restart).

    SIGINT or SIGTERM stops training after the update in progress, saves a checkpoint and returns
    ``{"interrupted": "SIGINT" or "SIGTERM", "global_step": ..., "update": ...}`` with no evaluation.
    A non-finite loss or parameter raises :class:`TrainingDiverged`; the last checkpoint stays good.
    """
    out_dir = Path(out_dir)
    agent, env_cfg, train_cfg = config.agent, config.env, config.train
    checkpoint_path = out_dir / CHECKPOINT_DIR / LAST
    saved = load_checkpoint(checkpoint_path) if resume else None  # a missing or corrupt file: ConfigError

    # ---- SETUP ----
    device = select_device(config.device)
    torch.manual_seed(config.seed)
    generator = torch.Generator(device=device).manual_seed(config.seed)  # action samples and shuffles
    envs = make_envs(env_cfg)
    obs_dim, action_spec = envs.single_observation_space.shape[0], action_space_spec(envs.single_action_space)
    actor = make_actor(obs_dim, action_spec, config.network).to(device)
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

    rollout = Rollout.allocate(T, N, obs_dim, actor.action_shape, actor.action_dtype)
    normalizer = Normalizer.from_config(env_cfg, obs_dim, N, gamma)

    recent_scores: deque[float] = deque(maxlen=SCORE_WINDOW)
    threshold = solved_score(env_cfg)
    best_mean_score = best_score = -math.inf
    episodes_done = 0
    steps_to_solve = seconds_to_solve = None
    global_step = start_update = 0
    start_time = time.perf_counter()
    env_seed = config.seed
    if saved is not None:  # ---- RESUME: everything the loop carries between updates, as saved ----
        try:
            restore_training_state(saved, str(checkpoint_path), config, obs_dim, action_spec, actor, critic,
                                   {"optimizer": optimizer}, generator)
            restore_normalizer(normalizer, saved, str(checkpoint_path), env_cfg)
        except ConfigError:
            envs.close()
            raise
        global_step, start_update = saved["global_step"], saved["update"]
        recent_scores.extend(saved["recent_scores"])
        best_score, best_mean_score, episodes_done = saved["best_score"], saved["best_mean_score"], saved["episodes"]
        steps_to_solve, seconds_to_solve = saved["steps_to_solve"], saved["seconds_to_solve"]
        start_time -= saved["train_seconds"]
        env_seed = resumed_env_seed(config.seed, start_update)
        log.info("Resuming %s at update %d of %d (env step %d)", out_dir, start_update, num_updates, global_step)

    # A resumed run discards the events that the stopped one logged after its checkpoint (purge_step):
    # TensorBoard then shows one point per step, without duplicates or gaps.
    if saved is not None:
        wait_for_a_later_event_file_name(out_dir)
    writer = SummaryWriter(str(out_dir), purge_step=global_step + 1 if saved is not None else None)
    if saved is None:
        writer.add_text("config", "```\n" + json.dumps(to_dict(config), indent=2) + "\n```")
    progress = Progress(num_updates * rollout_size, enabled=train_cfg.progress, start_step=global_step)
    last_checkpoint = (start_update, global_step) if saved is not None else None

    def checkpoint(update: int, finished: bool = False) -> None:
        nonlocal last_checkpoint
        writer.flush()  # every point up to the checkpoint is on disk: a resumed run starts right after it
        save_checkpoint(checkpoint_path, {
            "actor": actor.state_dict(), "critic": critic.state_dict(),
            "optimizer": optimizer.state_dict(),
            "global_step": global_step, "update": update, "config": to_dict(config),
            "obs_dim": obs_dim, "action_space": action_spec, "normalizer": normalizer.state_dict(),
            "torch_rng_state": torch.get_rng_state(), "generator_state": generator.get_state(),
            # the rest of what resume needs to carry on as if never stopped
            "recent_scores": list(recent_scores), "best_score": best_score, "best_mean_score": best_mean_score,
            "episodes": episodes_done, "steps_to_solve": steps_to_solve, "seconds_to_solve": seconds_to_solve,
            "train_seconds": time.perf_counter() - start_time, "finished": finished,
        })
        last_checkpoint = (update, global_step)

    timer = PhaseTimer()
    env_state = EnvState.reset(envs, env_seed, normalizer, resumed=saved is not None)
    update = start_update
    interrupted = None  # the name of the signal that stopped the run early
    stop = StopSignals()
    try:
        for update in range(start_update + 1, num_updates + 1):
            if agent.anneal_lr:
                lr = agent.lr * (1.0 - (update - 1) / num_updates)
                for group in optimizer.param_groups:
                    group["lr"] = lr

            # ---- COLLECT ----
            rollout_start_step = global_step
            with timer("collect"):
                episodes = collect_rollout(envs, actor, rollout, env_state, generator, normalizer, timer)
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
            # The samples to learn from, gathered once for all epochs: every step but next-step
            # autoreset's reset steps.
            b_obs, b_actions, b_log_probs, b_advantages, b_returns, b_values = trainable_samples(
                data.trainable, data.obs, data.actions, data.log_probs, advantages, returns, values)
            stats = torch.zeros(6, device=device)
            n_minibatch_steps = 0
            for _epoch in range(agent.n_epochs):
                for batch in minibatches(len(b_obs), agent.batch_size, generator):
                    with timer("update_forward"):
                        batch_obs = b_obs[batch]
                        batch_policy = actor(batch_obs)  # log-probabilities, or Gaussian means
                        batch_advantages = b_advantages[batch]
                        if agent.normalize_advantages and batch_advantages.numel() > 1:
                            batch_advantages = ((batch_advantages - batch_advantages.mean())
                                                / (batch_advantages.std() + 1e-8))
                        loss = ppo_loss(
                            new_log_probs=actor.log_prob(batch_policy, b_actions[batch]),
                            old_log_probs=b_log_probs[batch],
                            advantages=batch_advantages,
                            new_values=critic(batch_obs),
                            returns=b_returns[batch],
                            entropy=actor.entropy(batch_policy),
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
                                          loss.clip_fraction)).detach()  # in the order of STAT_NAMES
                    n_minibatch_steps += 1

            # A NaN or infinite loss or parameter: stop before it is logged or checkpointed.
            problem = non_finite(stats, actor_params, critic_params)
            if problem:
                writer.close()
                raise TrainingDiverged(divergence_message(problem, update, global_step, last_checkpoint,
                                                          checkpoint_path))

            # ---- LOG ----
            with timer("log"):
                elapsed = time.perf_counter() - start_time
                scalars = {"time/steps_per_second": global_step / elapsed,
                           "diagnostics/learning_rate": optimizer.param_groups[0]["lr"]}
                if n_minibatch_steps:  # zero only when every step of the rollout was a reset step
                    scalars.update(zip(STAT_NAMES, (stats / n_minibatch_steps).tolist()))
                    scalars["diagnostics/explained_variance"] = explained_variance(b_values, b_returns)
                if isinstance(actor, GaussianActor):  # how much the policy still explores
                    scalars["diagnostics/action_std"] = actor.log_std.exp().mean().item()
                for tag, value in scalars.items():
                    writer.add_scalar(tag, value, global_step)
                mean_recent = sum(recent_scores) / len(recent_scores) if recent_scores else None
                if mean_recent is not None:
                    writer.add_scalar("episode/mean_score_100", mean_recent, global_step)
                progress.update(global_step, mean_recent)
            if train_cfg.checkpoint_every and update % train_cfg.checkpoint_every == 0:
                with timer("checkpoint"):
                    checkpoint(update)
            if stop.signal is not None and update < num_updates:
                interrupted = stop.signal
                break
    finally:
        stop.restore()
        envs.close()

    train_seconds = time.perf_counter() - start_time
    progress.close(global_step, sum(recent_scores) / len(recent_scores) if recent_scores else None)
    checkpoint(update, finished=interrupted is None)
    if interrupted is not None:
        writer.close()
        log.warning("%s: stopped at env step %d (update %d of %d), checkpoint saved. Resume with: "
                    "python -m ppo.run resume=%s", interrupted, global_step, update, num_updates, out_dir)
        return {"interrupted": interrupted, "global_step": global_step, "update": update}

    # ---- EVALUATE ----
    eval_scores = evaluate(Policy(actor, normalizer), env_cfg, train_cfg.eval_episodes,
                           seed=config.seed + EVAL_SEED_OFFSET)
    final_score = float(np.mean(eval_scores)) if len(eval_scores) else float("nan")
    if len(eval_scores):
        writer.add_scalar("eval/score", final_score, global_step)
        log.info("Evaluation: %.1f ± %.1f over %d greedy episodes", final_score, np.std(eval_scores), len(eval_scores))
    writer.close()

    metrics = {
        "final_score": final_score,
        "final_score_std": float(np.std(eval_scores)) if len(eval_scores) else float("nan"),
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


RESUME_KEYS = ("recent_scores", "best_score", "best_mean_score", "episodes", "steps_to_solve", "seconds_to_solve",
               "train_seconds", "finished")


def restore_training_state(saved: dict, source: str, config: Config, obs_dim: int, action_spec: dict,
                           actor: Actor, critic: Critic, optimizers: dict[str, torch.optim.Optimizer],
                           generator: torch.Generator) -> None:
    """Load a checkpoint's networks, optimizers (``optimizers``: checkpoint key -> optimizer) and RNG
    states into this run's, after checking that it fits (env, network shape) and has work left: a
    finished run goes on only with a larger ``train.total_timesteps``. Raises :class:`ConfigError`
    naming what does not fit."""
    missing = [key for key in RESUME_KEYS if key not in saved]
    if missing:
        raise ConfigError(f"checkpoint={source!r} cannot be resumed: it lacks {', '.join(missing)} "
                          "(written by an older version of ppo)")
    saved_budget = saved["config"]["train"]["total_timesteps"]
    if saved["finished"] and config.train.total_timesteps <= saved_budget:
        raise ConfigError(f"checkpoint={source!r} cannot be resumed: its run finished at env step "
                          f"{saved['global_step']}; a train.total_timesteps larger than {saved_budget} trains it further")
    check_spaces(saved, obs_dim, action_spec, config.env.id, source)
    load_weights(actor, saved["actor"], "actor", source)
    load_weights(critic, saved["critic"], "critic", source)
    for key, optimizer in optimizers.items():
        optimizer.load_state_dict(saved[key])
    torch.set_rng_state(saved["torch_rng_state"])
    try:
        generator.set_state(saved["generator_state"])
    except RuntimeError as err:
        raise ConfigError(f"checkpoint={source!r} cannot be resumed on this device ({err})") from None


def restore_normalizer(normalizer: Normalizer, saved: dict, source: str, env: EnvConfig) -> None:
    """Load the checkpoint's normalization statistics (none in a checkpoint that normalized nothing,
    or one older than normalization); a run that normalizes cannot go on without them."""
    statistics = saved.get("normalizer", {})
    for option, key in (("normalize_observations", "observations"), ("normalize_rewards", "returns")):
        if getattr(env, option) and key not in statistics:
            raise ConfigError(f"checkpoint={source!r} cannot be resumed: env.{option} is true but the checkpoint "
                              f"holds no {key} statistics")
    normalizer.load_state_dict(statistics)


def resumed_env_seed(seed: int, update: int) -> int:
    """The seed that resets the envs when a run resumes after ``update`` updates: a function of the
    run's seed and the update only, so that resuming from one checkpoint twice gives the same run.
    (An env's state cannot be saved in general, so the episodes in progress at the stop restart.)"""
    return int(np.random.SeedSequence([seed, update]).generate_state(1)[0])


def wait_for_a_later_event_file_name(out_dir: Path) -> None:
    """TensorBoard reads a dir's event files in name order, and a name starts with the second it was
    made in, then the host, the process id and a counter, which sort as text: a file made in the same
    second as the stopped run's could sort before it, and the purge would come too early. Wait
    (at most a second, and only when resuming within the second the last file was made) so it can't."""
    seconds = [int(path.name.split(".")[3]) for path in out_dir.glob("events.out.tfevents.*")
               if path.name.split(".")[3].isdigit()]
    while seconds and time.time() < max(seconds) + 1:
        time.sleep(0.05)


STAT_NAMES = ("loss/actor", "loss/critic", "loss/total", "diagnostics/entropy", "diagnostics/approx_kl",
              "diagnostics/clip_fraction")  # the order of the UPDATE's stats


def non_finite(stats: torch.Tensor, actor_params: list[torch.nn.Parameter],
               critic_params: list[torch.nn.Parameter]) -> list[str]:
    """What went NaN or infinite in the last update: names from :data:`STAT_NAMES` and networks whose
    parameters are not all finite. One host sync for the whole check."""
    n_actor = len(actor_params)
    finite = torch.isfinite(torch.cat((stats, torch.stack(torch._foreach_norm(actor_params + critic_params)))))
    if bool(finite.all()):
        return []
    finite = finite.tolist()
    stat_flags, param_flags = finite[:len(stats)], finite[len(stats):]
    problem = [name for name, ok in zip(STAT_NAMES, stat_flags) if not ok]
    problem += [f"{name} parameters" for name, flags in (("actor", param_flags[:n_actor]),
                                                         ("critic", param_flags[n_actor:])) if not all(flags)]
    return problem


def divergence_message(problem: list[str], update: int, global_step: int, last_checkpoint: tuple[int, int] | None,
                       checkpoint_path: Path) -> str:
    kept = (f"the last good checkpoint is {checkpoint_path} (update {last_checkpoint[0]}, env step "
            f"{last_checkpoint[1]})" if last_checkpoint else "no checkpoint was written before it")
    return (f"training diverged at update {update} (env step {global_step}): {', '.join(problem)} not finite; "
            f"{kept}. A smaller agent.lr, or agent.max_grad_norm, may help")


class StopSignals:
    """While installed, SIGINT (Ctrl-C) and SIGTERM (what a cluster sends on preemption) do not kill
    the process: they set ``signal`` to the signal's name, and the loop stops after the update in
    progress with a checkpoint. ``restore`` puts the previous handlers back. Installed in the main
    thread only (Python allows signal handlers nowhere else); elsewhere ``signal`` stays None."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signal: str | None = None
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            self.previous = {signum: signal.signal(signum, self._handle) for signum in self.SIGNALS}

    def _handle(self, signum: int, _frame) -> None:
        self.signal = signal.Signals(signum).name  # no I/O here: the loop reports and saves

    def restore(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}


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

    obs: np.ndarray  # (N, obs_dim) float32: the observation to act on next, normalized if the env config says so
    resets_now: np.ndarray  # (N,) bool: next-step autoreset mode, sub-envs whose next step() only resets
    tracker: EpisodeTracker  # score and length of each sub-env's episode in progress
    next_step_reset: bool  # the env's autoreset mode is next-step (else same-step)

    @classmethod
    def reset(cls, envs: gym.vector.VectorEnv, seed: int, normalizer: Normalizer | None = None,
              resumed: bool = False) -> EnvState:
        """Reset the envs. A resumed run's first observations stand in for the ones the stopped run
        had already taken into the normalizer's statistics: they are not counted twice."""
        obs, _ = envs.reset(seed=seed)
        normalizer = normalizer or Normalizer(obs.shape[-1], envs.num_envs)
        return cls(normalizer.observations(obs, update=not resumed), np.zeros(envs.num_envs, dtype=bool),
                   EpisodeTracker(envs.num_envs), envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP)


@torch.inference_mode()
def collect_rollout(
    envs: gym.vector.VectorEnv, actor: Actor, rollout: Rollout, state: EnvState, generator: torch.Generator,
    normalizer: Normalizer | None = None, timer: PhaseTimer | None = None,
) -> list[tuple[int, float, int]]:
    """Fill ``rollout`` with its T vector steps, acting from ``state`` (advanced in place).

    Returns the episodes that ended in it as ``(t, score, length)``, ``t`` being the rollout step
    that ended each, scored in the env's own rewards; the rollout keeps the rewards and observations
    as ``normalizer`` makes them. One actor forward pass per step for all envs; values come later,
    in one pass.
    """
    device = next(actor.parameters()).device
    timer = timer or PhaseTimer()
    normalizer = normalizer or Normalizer(state.obs.shape[-1], envs.num_envs)  # none: data as the env gives it
    # numpy views of the host-side rollout: env outputs go in without torch op overhead.
    obs, rewards, terminated = rollout.obs.numpy(), rollout.rewards.numpy(), rollout.terminated.numpy()
    ended, trainable = rollout.ended.numpy(), rollout.trainable.numpy()
    rollout.has_final_obs.zero_()
    episodes = []
    for t in range(obs.shape[0]):
        obs[t] = state.obs
        policy = actor(torch.from_numpy(obs[t]).to(device))
        action = actor.sample(policy, generator)
        rollout.actions[t] = action
        rollout.log_probs[t] = actor.log_prob(policy, action)

        with timer("env_step"):
            next_obs, reward, term, trunc, infos = envs.step(actor.env_actions(action.cpu().numpy()))
        done = term | trunc
        counted = ~state.resets_now
        rewards[t] = normalizer.rewards(reward, done, counted)
        terminated[t], ended[t], trainable[t] = term, done, counted
        if state.next_step_reset:
            state.resets_now = done
        elif trunc.any():
            # Same-step reset: next_obs already starts the new episode; the truncated one's true
            # last obs is in infos, and it is what the truncated step bootstraps from.
            cut = np.flatnonzero(trunc & ~term)
            if cut.size:
                rollout.final_obs.numpy()[t, cut] = normalizer.observations(np.stack(infos["final_obs"][cut]),
                                                                            update=False)
                rollout.has_final_obs[t, cut] = True
        state.obs = normalizer.observations(next_obs)
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


def evaluate(policy: Policy, env: EnvConfig, episodes: int, seed: int) -> np.ndarray:
    """Scores of ``episodes`` greedy episodes of ``policy`` (the most likely action, or the Gaussian's
    mean), one per sub-env of a fresh vector env."""
    if episodes == 0:
        return np.zeros(0)
    envs = make_envs(env, num_envs=episodes)
    try:
        next_obs, _ = envs.reset(seed=seed)
        scores = np.zeros(episodes)
        running = np.ones(episodes, dtype=bool)
        while running.any():
            next_obs, reward, term, trunc, _ = envs.step(policy(next_obs))
            scores += reward * running
            running &= ~(term | trunc)
    finally:
        envs.close()
    return scores
