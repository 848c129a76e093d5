"""A rollout: its preallocated storage, and collecting it from the vector env.

:func:`collect_rollout` acts in ``num_envs`` envs for ``n_steps`` steps and writes each step into a
:class:`Rollout` of (T, N) tensors; :class:`EnvState` carries the envs' observations, resets in
waiting and the episodes in progress (:class:`EpisodeTracker`, :class:`LifeLoss`) from one rollout
to the next; :func:`estimate_values` then runs the critic over the whole rollout at once, unless the
critic shares the actor's torso: then the acting forward pass gives the values too.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from ppo.networks import Actor, Critic, policy_and_values
from ppo.normalize import Normalizer
from ppo.precision import Precision
from ppo.timing import PhaseTimer


@dataclass
class Rollout:
    """One rollout of ``n_steps`` vector steps from ``num_envs`` envs: every field is (T, N, ...)
    with T = n_steps and N = num_envs, overwritten in place each update.

    It lives on the host, beside the env, so each step writes into it through numpy views without a
    device round trip; the update moves it to the training device once (a no-op on a CPU).
    Observations keep the env's compact dtype (:func:`storage_dtype`): a rollout of Atari frames is
    uint8, and only each minibatch becomes floats, inside the network. For a network whose
    convolutions run channels-last, images are stored channels-last too: each frame is laid out once,
    as it is written, rather than in every minibatch of every epoch.
    """

    obs: torch.Tensor  # (T, N, *obs_shape) float32, or the env's uint8 or bool for images: s_t
    actions: torch.Tensor  # (T, N) long for discrete actions, (T, N, action_dim) float for Box: a_t
    log_probs: torch.Tensor  # (T, N) float: log π_old(a_t|s_t)
    values: torch.Tensor  # (T, N) float: V(s_t), filled while acting when the critic shares the actor's torso
    rewards: torch.Tensor  # (T, N) float: r_t
    terminated: torch.Tensor  # (T, N) float 0/1: s_{t+1} is terminal, V(s_{t+1}) = 0
    ended: torch.Tensor  # (T, N) float 0/1: terminated or truncated, the episode stops here
    trainable: torch.Tensor  # (T, N) bool: False for a sub-env's reset step in next-step autoreset
    # mode, which ignores the action and spans two episodes: no transition to learn from.
    final_obs: torch.Tensor  # (T, N, *obs_shape) as obs: same-step autoreset mode, the true last obs of
    has_final_obs: torch.Tensor  # (T, N) bool:  an episode truncated at t, to bootstrap from

    @classmethod
    def allocate(cls, n_steps: int, num_envs: int, obs_shape: int | tuple[int, ...], action_shape: tuple[int, ...] = (),
                 action_dtype: torch.dtype = torch.long, obs_dtype: torch.dtype = torch.float32,
                 same_step_resets: bool = True, channels_last: bool = False) -> Rollout:
        """Zeroed storage for observations of ``obs_shape`` (an int: a vector's length) and ``obs_dtype``
        (see :func:`storage_dtype`); ``action_shape`` and ``action_dtype`` are the actor's (one index per
        env for discrete actions, a float vector for Box actions). Without ``same_step_resets``
        (next-step autoreset mode) nothing fills ``final_obs``, which is then empty: an Atari rollout
        would spend as much memory on it as on ``obs``. ``channels_last`` stores (C, H, W) images as
        (H, W, C) in memory, under the same (T, N, C, H, W) shape."""
        obs_shape = (obs_shape,) if isinstance(obs_shape, int) else tuple(obs_shape)

        def zeros(*trailing: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.zeros((n_steps, num_envs, *trailing), dtype=dtype)

        def observations() -> torch.Tensor:
            if not channels_last:
                return zeros(*obs_shape, dtype=obs_dtype)
            channels, height, width = obs_shape
            return zeros(height, width, channels, dtype=obs_dtype).permute(0, 1, 4, 2, 3)

        return cls(
            obs=observations(), actions=zeros(*action_shape, dtype=action_dtype), log_probs=zeros(), values=zeros(),
            rewards=zeros(), terminated=zeros(), ended=zeros(), trainable=zeros(dtype=torch.bool),
            final_obs=observations() if same_step_resets else torch.zeros(0, dtype=obs_dtype),
            has_final_obs=zeros(dtype=torch.bool),
        )

    def to(self, device: torch.device | str) -> Rollout:
        """The rollout on ``device``: the same tensors where they already are there."""
        return Rollout(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def next_values(self, values: torch.Tensor, last_values: torch.Tensor,
                    final_values: torch.Tensor | None) -> torch.Tensor:
        """V(s_{t+1}) for every step, (T, N), from the critic's ``values`` (T, N) of the stored obs:
        the next step's value, ``last_values`` (N,) (of the obs after the rollout) for the last step,
        and ``final_values`` (T, N) (of ``final_obs``) where a same-step reset replaced the next obs.
        In next-step mode a finished episode's last obs *is* the next stored obs, so truncated
        episodes bootstrap from it with no extra forward pass."""
        shifted = torch.cat((values[1:], last_values.unsqueeze(0)))
        if final_values is None:
            return shifted
        return torch.where(self.has_final_obs.to(values.device), final_values, shifted)


def storage_dtype(obs_dtype: np.dtype) -> torch.dtype:
    """How a rollout stores observations of the env's ``obs_dtype``: uint8 pixels and bool grids as they
    are (a quarter or less of float32's memory; the network scales them), any other number as float32."""
    return {np.dtype(np.uint8): torch.uint8, np.dtype(np.bool_): torch.bool}.get(np.dtype(obs_dtype), torch.float32)


@dataclass
class EnvState:
    """Where the vector env stands between two rollouts."""

    obs: np.ndarray  # (N, *obs_shape): the observation to act on next, normalized if the env config says so
    resets_now: np.ndarray  # (N,) bool: next-step autoreset mode, sub-envs whose next step() only resets
    tracker: EpisodeTracker  # score and length of each sub-env's episode in progress
    next_step_reset: bool  # the env's autoreset mode is next-step (else same-step)
    life_loss: LifeLoss | None = None  # env.terminal_on_life_loss: lost lives end episodes for learning

    @classmethod
    def reset(cls, envs: gym.vector.VectorEnv, seed: int, normalizer: Normalizer | None = None,
              resumed: bool = False, terminal_on_life_loss: bool = False) -> EnvState:
        """Reset the envs. A resumed run's first observations stand in for the ones the stopped run
        had already taken into the normalizer's statistics: they are not counted twice."""
        obs, _ = envs.reset(seed=seed)
        normalizer = normalizer or Normalizer(obs.shape[-1], envs.num_envs)
        return cls(normalizer.observations(obs, update=not resumed), np.zeros(envs.num_envs, dtype=bool),
                   EpisodeTracker(envs.num_envs), envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP,
                   LifeLoss(envs.num_envs) if terminal_on_life_loss else None)


def collect_rollout(
    envs: gym.vector.VectorEnv, actor: Actor, rollout: Rollout, state: EnvState, generator: torch.Generator,
    normalizer: Normalizer | None = None, timer: PhaseTimer | None = None, critic: Critic | None = None,
    precision: Precision = Precision(),
) -> list[tuple[int, float, int, int]]:
    """Fill ``rollout`` with its T vector steps, acting from ``state`` (advanced in place).

    Returns the episodes that ended in it as ``(t, score, length, env)``, ``t`` being the rollout
    step that ended each and ``env`` its sub-env, scored in the env's own rewards; the rollout keeps
    the rewards and observations as ``normalizer`` makes them. One actor forward pass per step for
    all envs; values come later, in one pass over the rollout, or, given a ``critic`` that shares the
    actor's torso, from the same forward pass into ``rollout.values``: the torso runs once per step
    either way, and then never again over the rollout. The forward passes run in ``precision``'s
    :meth:`~ppo.precision.Precision.acting` context, entered once for the whole rollout.
    """
    device = next(iter(actor.parameters())).device
    timer = timer or PhaseTimer()
    with precision.acting():
        normalizer = normalizer or Normalizer(state.obs.shape[-1], envs.num_envs)  # none: data as the env gives it
        # numpy views of the host-side rollout: env outputs go in without torch op overhead.
        obs, rewards, terminated = rollout.obs.numpy(), rollout.rewards.numpy(), rollout.terminated.numpy()
        ended, trainable = rollout.ended.numpy(), rollout.trainable.numpy()
        rollout.has_final_obs.zero_()
        episodes = []
        for t in range(obs.shape[0]):
            obs[t] = state.obs
            if critic is None:
                policy = actor(torch.from_numpy(obs[t]).to(device))
            else:
                policy, rollout.values[t] = policy_and_values(actor, critic, torch.from_numpy(obs[t]).to(device))
            action = actor.sample(policy, generator)
            rollout.actions[t] = action
            rollout.log_probs[t] = actor.log_prob(policy, action)

            with timer("env_step"):
                next_obs, reward, term, trunc, infos = envs.step(actor.env_actions(action.cpu().numpy()))
            done = term | trunc
            counted = ~state.resets_now
            rewards[t] = normalizer.rewards(reward, done, counted)
            terminated[t], ended[t], trainable[t] = term, done, counted
            if state.life_loss is not None:  # for learning only: the game, its score and its resets go on
                lost = state.life_loss.update(infos, done)
                terminated[t], ended[t] = term | lost, done | lost
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
            episodes += [(t, score, length, env) for score, length, env in
                         zip(scores.tolist(), lengths.tolist(), np.flatnonzero(done).tolist())]
        return episodes


@torch.no_grad()
def estimate_values(critic: Critic, rollout: Rollout, next_obs: torch.Tensor,
                    acted: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """V(s_t) and V(s_{t+1}) for every step of a rollout already on the critic's device, (T, N) each,
    in batched forward passes: the critic is the same for the whole rollout. ``acted``: V(s_t) is
    already in ``rollout.values`` (:func:`collect_rollout` given the critic)."""
    values = rollout.values if acted else _in_chunks(critic, rollout.obs)
    final_values = _in_chunks(critic, rollout.final_obs) if rollout.has_final_obs.any() else None
    return values, rollout.next_values(values, critic(next_obs), final_values)


IMAGE_CHUNK = 256  # images per value forward pass: a float copy of a chunk, never of the whole rollout


def _in_chunks(critic: Critic, obs: torch.Tensor) -> torch.Tensor:
    """``critic(obs)`` over (T, N, ...) observations: in one pass for vectors, in passes of about
    :data:`IMAGE_CHUNK` images for uint8 or bool images, which the network turns into floats."""
    if obs.is_floating_point():
        return critic(obs)
    return torch.cat([critic(chunk) for chunk in obs.split(max(1, IMAGE_CHUNK // obs.shape[1]))])


class EpisodeTracker:
    """Running score and length of the episode in progress in each sub-env, vectorized.

    ``update`` takes one vector step's rewards and flags and returns the scores and lengths of the
    episodes that ended in it. ``counted`` is False for a sub-env's reset step in next-step
    autoreset mode: that step is no transition of any episode (its reward is 0).
    """

    def __init__(self, num_envs: int):
        self.scores = np.zeros(num_envs, dtype=np.float64)
        self.lengths = np.zeros(num_envs, dtype=np.int64)

    def update(self, rewards: np.ndarray, ended: np.ndarray, counted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.scores += rewards
        self.lengths += counted
        if not ended.any():
            return _EMPTY_F, _EMPTY_I
        scores, lengths = self.scores[ended], self.lengths[ended]
        self.scores[ended] = 0.0
        self.lengths[ended] = 0
        return scores, lengths


class LifeLoss:
    """Which sub-envs lost a life at a vector step while their game goes on: with
    ``env.terminal_on_life_loss`` those steps end an episode for learning only.

    It reads ``infos["lives"]``, which Atari envs report (ale-py's vector env and gymnasium's
    AtariEnv); envs without lives never lose one. A life lost on the step that ends the game is no
    extra signal, and the reset step that restores the lives is no loss.
    """

    def __init__(self, num_envs: int):
        self.lives: np.ndarray | None = None
        self.none = np.zeros(num_envs, dtype=bool)

    def update(self, infos: dict, ended: np.ndarray) -> np.ndarray:
        """(N,) bool: the sub-envs whose lives dropped at this step without their episode ending."""
        lives = infos.get("lives")
        if lives is None:
            return self.none
        lives = np.asarray(lives)
        lost = self.none if self.lives is None else (lives < self.lives) & ~ended
        self.lives = lives.copy()
        return lost


_EMPTY_F = np.zeros(0, dtype=np.float64)
_EMPTY_I = np.zeros(0, dtype=np.int64)
