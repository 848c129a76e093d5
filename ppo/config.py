"""Typed configuration: one documented place per hyperparameter.

Hydra composes YAML presets from ``conf/`` on top of these dataclasses' keys (registered below as the
schema ``ppo_config``), so a misspelt key fails while Hydra composes. :func:`to_config` then turns the
composed ``DictConfig`` into these objects, before any work starts: a value of the wrong type, and a value
out of the range that ``__post_init__`` checks, raise :class:`ConfigError`, one line with the full key.
Integer keys take whole numbers written as floats, such as ``total_timesteps=1e5``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf, ValidationError

from ppo.env_ids import env_id_problem
from ppo.errors import ConfigError


def _require(ok: bool, key: str, value, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is not allowed: {allowed}")


def require_seed(seed: int) -> None:
    """A seed that numpy and torch both take: an integer in [0, 2**32)."""
    _require(0 <= seed < 2**32, "seed", seed, "an integer in [0, 2**32)")


@dataclass
class AgentConfig:
    """PPO hyperparameters (config group ``agent``)."""

    n_steps: int = 32
    """Steps collected per env before each update (the tutorial's N). The rollout holds
    ``n_steps * env.num_envs`` transitions."""
    batch_size: int = 256
    """Minibatch size: transitions per gradient step. Always the minibatch, never the rollout."""
    n_epochs: int = 4
    """Passes over the rollout per update; each pass reshuffles it into minibatches (unless one
    minibatch holds the whole rollout: then its order does not matter)."""
    lr: float = 5e-3
    """Adam learning rate of both the actor and the critic."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over ``train.total_timesteps``."""
    gamma: float = 0.98
    """Discount factor γ of future rewards."""
    gae_lambda: float = 0.8
    """GAE λ: 0 gives one-step TD advantages (low variance, biased), 1 gives Monte Carlo
    returns minus the value (unbiased, high variance)."""
    policy_clip: float = 0.2
    """Clip ε of the surrogate objective: the probability ratio is kept in [1-ε, 1+ε]."""
    anneal_policy_clip: bool = False
    """Decay ε linearly to 0 over ``train.total_timesteps``, update by update like ``anneal_lr``
    (RL Zoo's ``clip_range: lin_0.2``)."""
    value_clip: Optional[float] = None
    """Clip the critic's update: its loss per sample is the larger of the squared errors of the new
    value and of the new value kept within ±``value_clip`` of the value at collection, as OpenAI
    Baselines' PPO2 and CleanRL's ``clip_vloss`` (which uses ``policy_clip`` for it) do. SB3's
    ``clip_range_vf`` takes the clipped value's error alone. In the units of the returns (after
    ``env.normalize_rewards``), so it depends on the reward scale. null: plain squared error."""
    critic_coef: float = 0.5
    """c₁: weight of the critic's MSE in the total loss."""
    entropy_coef: float = 0.0
    """c₂: weight of the entropy bonus (subtracted from the total loss). The tutorial uses 0."""
    max_grad_norm: Optional[float] = 0.5
    """Clip each network's gradient to this global L2 norm (both networks' together with
    ``clip_grad_jointly``); null turns clipping off."""
    clip_grad_jointly: bool = False
    """Clip the actor's and the critic's gradients as one vector, as SB3 and CleanRL do: a large
    critic gradient then shortens the actor's step too. Off, each network is clipped on its own. A
    shared torso is one network either way."""
    normalize_advantages: bool = True
    """Standardize advantages per minibatch (zero mean, unit std)."""

    def __post_init__(self) -> None:
        _require(self.n_steps >= 1, "agent.n_steps", self.n_steps, "an integer >= 1")
        _require(self.batch_size >= 1, "agent.batch_size", self.batch_size, "an integer >= 1")
        _require(self.n_epochs >= 1, "agent.n_epochs", self.n_epochs, "an integer >= 1")
        _require(0 < self.lr < math.inf, "agent.lr", self.lr, "a finite number > 0")
        _require(0 < self.gamma <= 1, "agent.gamma", self.gamma, "a number in (0, 1]")
        _require(0 <= self.gae_lambda <= 1, "agent.gae_lambda", self.gae_lambda, "a number in [0, 1]")
        _require(0 < self.policy_clip < 1, "agent.policy_clip", self.policy_clip, "a number in (0, 1)")
        _require(self.value_clip is None or 0 < self.value_clip < math.inf, "agent.value_clip", self.value_clip,
                 "a finite number > 0, or null for no clipping")
        _require(0 <= self.critic_coef < math.inf, "agent.critic_coef", self.critic_coef, "a finite number >= 0")
        _require(0 <= self.entropy_coef < math.inf, "agent.entropy_coef", self.entropy_coef, "a finite number >= 0")
        _require(
            self.max_grad_norm is None or 0 < self.max_grad_norm < math.inf,
            "agent.max_grad_norm", self.max_grad_norm, "a finite number > 0, or null for no clipping",
        )


ACTIVATIONS = ("relu", "tanh")
NETWORK_TYPES = ("mlp", "nature_cnn", "minatar_cnn")


@dataclass
class NetworkConfig:
    """Shape of the actor and critic networks (config group ``network``): MLPs, or CNNs for images
    (``type``). Both get the same shape (unless ``critic_hidden_sizes`` says otherwise) and are separate
    networks with separate parameters, unless ``shared_torso``."""

    hidden_sizes: List[int] = field(default_factory=lambda: [64, 64])
    """Widths of the hidden layers, e.g. ``[256,256]``."""
    activation: str = "tanh"
    """Hidden-layer nonlinearity: ``relu`` or ``tanh``."""
    orthogonal_init: bool = True
    """Orthogonal weight init (gain √2, policy head 0.01, value head 1), as in SB3 and CleanRL;
    false keeps torch's default init."""
    log_std_init: float = 0.0
    """Continuous (Box) actions only: the initial log standard deviation of the Gaussian policy,
    which is learned but does not depend on the state. 0 starts at std 1, as SB3 and CleanRL do."""
    critic_hidden_sizes: Optional[List[int]] = None
    """Widths of the critic's hidden layers when they differ from the actor's (SB3's
    ``net_arch=dict(pi=[...], vf=[...])``); null: the same as ``hidden_sizes``."""
    type: str = "mlp"
    """What reads the observations before the ``hidden_sizes`` layers: ``mlp`` (nothing: flat
    vector observations), ``nature_cnn`` (the Atari convolutions of the DQN and PPO papers: 32 8x8/4,
    64 4x4/2, 64 3x3/1, for (C, 84, 84) frames) or ``minatar_cnn`` (MinAtar's 16 3x3/1 convolutions,
    for (C, 10, 10) grids). CNNs take (C, H, W) images; uint8 pixels are scaled to [0, 1] inside."""
    shared_torso: bool = False
    """Actor and critic share everything but their output layers (the convolutions and the hidden
    layers), trained by the summed loss, as CleanRL and SB3 do for Atari; false: two separate networks."""

    def __post_init__(self) -> None:
        _require(
            len(self.hidden_sizes) >= 1 and all(size >= 1 for size in self.hidden_sizes),
            "network.hidden_sizes", list(self.hidden_sizes), "a non-empty list of integers >= 1",
        )
        _require(self.activation in ACTIVATIONS, "network.activation", self.activation, f"one of {ACTIVATIONS}")
        _require(
            self.critic_hidden_sizes is None
            or (len(self.critic_hidden_sizes) >= 1 and all(size >= 1 for size in self.critic_hidden_sizes)),
            "network.critic_hidden_sizes", self.critic_hidden_sizes,
            "a non-empty list of integers >= 1, or null for hidden_sizes",
        )
        _require(math.isfinite(self.log_std_init), "network.log_std_init", self.log_std_init, "a finite number")
        _require(self.type in NETWORK_TYPES, "network.type", self.type, f"one of {NETWORK_TYPES}")


VECTORIZATION_MODES = ("auto", "vector_entry_point", "sync", "async")
AUTORESET_MODES = ("next_step", "same_step")


@dataclass
class EnvConfig:
    """The environment (config group ``env``)."""

    id: str = "CartPole-v1"
    """Any registered gymnasium id."""
    num_envs: int = 16
    """Envs stepped in parallel as one vector env."""
    vectorization: str = "auto"
    """``vector_entry_point`` (gymnasium's native batched env, e.g. CartPole), ``sync`` (envs in
    this process), ``async`` (one subprocess per env), or ``auto``: native where the env has one
    and it supports ``autoreset_mode``, else sync."""
    autoreset_mode: str = "next_step"
    """When a finished sub-env restarts: ``next_step`` (gymnasium's default: the following
    ``step()`` only resets it) or ``same_step`` (reset at once, true last obs in ``infos``)."""
    solved_score: Optional[float] = None
    """Mean score over 100 consecutive training episodes that counts as solving the env;
    null takes gymnasium's ``reward_threshold`` for the id (475 for CartPole-v1), if it has one."""
    normalize_observations: bool = False
    """Standardize observations by a running mean and std over everything seen in training, then clip
    them to ±``clip_observations`` (SB3's VecNormalize). The statistics are saved in checkpoints and
    used, frozen, at evaluation. Helps envs whose observations differ in scale, such as MountainCar."""
    clip_observations: float = 10.0
    """Bound of the normalized observations (used when ``normalize_observations``)."""
    normalize_rewards: bool = False
    """Divide rewards by a running std of the discounted return, then clip them to ±``clip_rewards``
    (SB3's VecNormalize): the critic's targets keep a workable scale. Scores are logged unscaled."""
    clip_rewards: float = 10.0
    """Bound of the scaled rewards (used when ``normalize_rewards``)."""
    sign_rewards: bool = False
    """Learn from the sign of each reward (-1, 0 or 1), as the DQN and PPO papers do on Atari so that one
    learning rate fits every game. Scores are logged unclipped."""
    terminal_on_life_loss: bool = False
    """Games with lives (Atari): the loss of a life ends the episode for learning (no bootstrapping past
    it, as CleanRL's and SB3's EpisodicLifeEnv); the env plays on, and an episode's score is the whole
    game's over all lives."""
    repeat_action_probability: Optional[float] = None
    """Atari: the probability that the emulator repeats the previous action instead of the new one
    (sticky actions); null keeps the id's own (0.25 for ``ALE/<Game>-v5``)."""
    frame_stack: int = 4
    """Atari: the most recent frames stacked into each observation (C of the (C, 84, 84) images)."""
    max_episode_steps: Optional[int] = None
    """Truncate episodes after this many agent steps; null keeps the id's own limit (Atari: 108,000
    frames, 27,000 steps; MinAtar: none)."""
    kwargs: Optional[Dict[str, Any]] = None
    """Keyword arguments for the env's constructor, passed through ``gymnasium.make`` (RL Zoo's
    ``env_kwargs``), e.g. ``env.kwargs={contact_cost_weight:0}``; null: the id's defaults. The
    observation and action spaces follow whatever these change."""

    def __post_init__(self) -> None:
        problem = env_id_problem(self.id)
        if problem:
            raise ConfigError(f"env.id={self.id!r} {problem}")
        _require(self.num_envs >= 1, "env.num_envs", self.num_envs, "an integer >= 1")
        _require(self.vectorization in VECTORIZATION_MODES, "env.vectorization", self.vectorization,
                 f"one of {VECTORIZATION_MODES}")
        _require(self.autoreset_mode in AUTORESET_MODES, "env.autoreset_mode", self.autoreset_mode,
                 f"one of {AUTORESET_MODES}")
        _require(0 < self.clip_observations <= math.inf, "env.clip_observations", self.clip_observations,
                 "a number > 0 (inf: no clipping)")
        _require(0 < self.clip_rewards <= math.inf, "env.clip_rewards", self.clip_rewards,
                 "a number > 0 (inf: no clipping)")
        _require(self.repeat_action_probability is None or 0 <= self.repeat_action_probability <= 1,
                 "env.repeat_action_probability", self.repeat_action_probability,
                 "a number in [0, 1], or null for the id's own")
        _require(self.frame_stack >= 1, "env.frame_stack", self.frame_stack, "an integer >= 1")
        _require(self.max_episode_steps is None or self.max_episode_steps >= 1, "env.max_episode_steps",
                 self.max_episode_steps, "an integer >= 1, or null for the id's own limit")


DEVICE_TYPES = ("cpu", "cuda", "auto")
COMPILE_MODES = ("off", "on", "auto")
PRECISIONS = ("fp32", "bf16", "auto")


@dataclass
class DeviceConfig:
    """Where the networks run (config group ``device``)."""

    type: str = "cpu"
    """``cpu``, ``cuda``, or ``auto`` (cuda when available)."""
    torch_threads: int = 1
    """CPU threads for torch ops; small MLPs run fastest on 1. 0 keeps torch's default."""
    compile: str = "auto"
    """``torch.compile`` the update's minibatch step (forward pass and loss, and with them their backward
    pass): ``on``, ``off``, or ``auto``, which compiles only runs with enough minibatch steps (``n_updates *
    n_epochs * minibatches``) to win back the compilation time (:data:`ppo.compile.AUTO_MIN_MINIBATCH_STEPS`).
    Compiled code is cached in ``$TORCHINDUCTOR_CACHE_DIR`` (default ``~/.cache/ppo/inductor``), so later
    runs compile in seconds; without a C++ compiler, or if compilation fails, the run goes on uncompiled."""
    precision: str = "auto"
    """The networks' arithmetic: ``fp32``, ``bf16`` (matmuls and convolutions in bfloat16 autocast; outputs,
    losses, weights, Adam and checkpoints float32) or ``auto``: bf16 where the hardware has it natively and
    it pays for ``network.type`` (the CNNs), else fp32 (:mod:`ppo.precision`). The start line says which."""

    def __post_init__(self) -> None:
        _require(self.type in DEVICE_TYPES, "device.type", self.type, f"one of {DEVICE_TYPES}")
        _require(self.torch_threads >= 0, "device.torch_threads", self.torch_threads, "an integer >= 0")
        _require(self.compile in COMPILE_MODES, "device.compile", self.compile, f"one of {COMPILE_MODES}")
        _require(self.precision in PRECISIONS, "device.precision", self.precision, f"one of {PRECISIONS}")


OBJECTIVES = ("final_score", "best_mean_score_100", "auc", "steps_to_solve")


@dataclass
class TrainConfig:
    """The training run around the algorithm (key ``train``)."""

    total_timesteps: int = 150_000
    """Env steps budget, summed over all envs. Rounded up to whole rollouts."""
    eval_episodes: int = 10
    """Greedy episodes (the most likely action, or the Gaussian's mean) played after training; their
    mean is the run's result."""
    checkpoint_every: int = 50
    """Write a checkpoint every this many updates (and always at the end); 0: only at the end."""
    stop_when_solved: bool = False
    """End training as soon as the 100-episode mean score reaches ``env.solved_score``."""
    max_episodes: Optional[int] = None
    """End training after this many finished training episodes (the tutorial's "games"); null: no limit."""
    video: bool = False
    """Record one greedy episode after training as ``videos/*.mp4`` in the run dir and into
    TensorBoard, for envs that render RGB frames. Needs ``pip install "ppo[video]"``."""
    progress: bool = True
    """Show progress: a bar on a terminal, else a line at each tenth of the budget."""
    objective: str = "final_score"
    """What a run returns to a sweeper (all of them are in ``metrics.json`` either way):
    ``final_score`` (the greedy evaluation mean), ``best_mean_score_100``, ``auc`` (the area under
    the 100-episode mean score over the budget, divided by the budget: higher for a run that learns
    sooner, even when all runs reach the same maximum) or ``steps_to_solve`` (to minimize; a run that
    never solves counts as its whole budget)."""

    def __post_init__(self) -> None:
        _require(self.total_timesteps >= 1, "train.total_timesteps", self.total_timesteps, "an integer >= 1")
        _require(self.eval_episodes >= 0, "train.eval_episodes", self.eval_episodes, "an integer >= 0")
        _require(self.checkpoint_every >= 0, "train.checkpoint_every", self.checkpoint_every, "an integer >= 0")
        _require(self.max_episodes is None or self.max_episodes >= 1, "train.max_episodes", self.max_episodes,
                 "an integer >= 1, or null for no limit")
        _require(self.objective in OBJECTIVES, "train.objective", self.objective, f"one of {OBJECTIVES}")


@dataclass
class Config:
    """The whole run: the four groups, the training loop and the seed."""

    agent: AgentConfig = field(default_factory=AgentConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 1
    """Seeds network init, action sampling, minibatch shuffles and the envs."""
    resume: Optional[str] = None
    """A run directory to continue from its ``checkpoints/last.pt`` (``python -m ppo.run resume=DIR``):
    the run's own saved config is used, and training goes on in that directory. Only a larger
    ``train.total_timesteps`` (and ``train.progress``) may be given with it. :func:`ppo.train.train`
    ignores this key: it takes ``resume=True``."""

    def __post_init__(self) -> None:
        require_seed(self.seed)
        _require(
            self.agent.batch_size <= self.rollout_size,
            "agent.batch_size", self.agent.batch_size,
            f"at most the rollout size agent.n_steps * env.num_envs = "
            f"{self.agent.n_steps} * {self.env.num_envs} = {self.rollout_size}",
        )

    @property
    def rollout_size(self) -> int:
        """Transitions collected per update."""
        return self.agent.n_steps * self.env.num_envs


def to_config(cfg: DictConfig) -> Config:
    """The composed Hydra config as validated dataclasses (raises :class:`ConfigError`)."""
    if not OmegaConf.is_config(cfg):
        cfg = OmegaConf.create(cfg)
    # Hydra refuses a misspelt `agent.polcy_clip=0.1`, but `+agent.polcy_clip=0.1` adds the key, and
    # merging into the schema would silently drop it: refuse any key the dataclasses do not have.
    values = OmegaConf.to_container(cfg, resolve=True)
    _check_keys(values, Config, "")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config), values)
    except ValidationError as err:  # a value of the wrong type, which composition lets through
        key = err.full_key.split("[")[0]  # network.hidden_sizes[1] -> network.hidden_sizes
        if expected_type(key) is None:
            raise ConfigError(str(err).splitlines()[0]) from None
        raise ConfigError(f"{key}={_as_written(_lookup(values, key))} is not allowed: {expected_type(key)}") from None
    return OmegaConf.to_object(merged)


def _check_keys(node: dict, cls: type, prefix: str) -> None:
    """Refuse the keys of ``node`` that ``cls`` does not have, and check the values of its integer
    keys, replacing whole numbers written as floats (``1e5``) by ints in place, in lists of integers
    too."""
    fields = typing.get_type_hints(cls)
    for key, value in node.items():
        if key not in fields:
            raise ConfigError(unknown_key_message(prefix + str(key)))
        if dataclasses.is_dataclass(fields[key]) and isinstance(value, dict):
            _check_keys(value, fields[key], f"{prefix}{key}.")
        elif fields[key] in INTEGER_TYPES:
            node[key] = _integer(f"{prefix}{key}", value, optional=fields[key] is not int)
        elif fields[key] == List[int] and isinstance(value, list):
            node[key] = [int(element) if isinstance(element, float) and element.is_integer() else element
                         for element in value]


INTEGER_TYPES = (int, Optional[int])


def _integer(key: str, value, optional: bool) -> int | None:
    """The value of an integer key: an int, a whole-number float such as Hydra's ``1e5`` as that int,
    or None where the key is optional; anything else is a :class:`ConfigError` naming the key."""
    if value is None and optional:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ConfigError(f"{key}={_as_written(value)} is not allowed: {expected_type(key)}")


def _as_written(value) -> str:
    """A value as a command line writes it: ``null``, ``true``, ``[a,b]``, ``1.5``, ``fast``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ",".join(_as_written(element) for element in value) + "]"
    return str(value)


def _lookup(tree: dict, key: str):
    """``tree["agent"]["lr"]`` for ``agent.lr``."""
    for part in key.split("."):
        tree = tree[part]
    return tree


def config_keys(cls: type = Config, prefix: str = "") -> dict[str, object]:
    """Every key of the schema, full name -> its type: ``{"agent": AgentConfig, "agent.lr": float, ...}``."""
    keys: dict[str, object] = {}
    for name, hint in typing.get_type_hints(cls).items():
        keys[prefix + name] = hint
        if dataclasses.is_dataclass(hint):
            keys.update(config_keys(hint, f"{prefix}{name}."))
    return keys


def unknown_key_message(key: str) -> str:
    """``agent.polcy_clip is not a config key; did you mean agent.policy_clip?``"""
    keys = list(config_keys())
    parent, _, leaf = key.rpartition(".")
    siblings = {k.rpartition(".")[2]: k for k in keys if k.rpartition(".")[0] == parent}
    close = [siblings[name] for name in difflib.get_close_matches(leaf, list(siblings), n=3, cutoff=0.6)]
    close = close or difflib.get_close_matches(key, keys, n=3, cutoff=0.8)
    hint = f"did you mean {', '.join(close)}?" if close else "python -m ppo.run --cfg job lists them all"
    return f"{key} is not a config key; {hint}"


def expected_type(key: str) -> str | None:
    """What the schema accepts at ``key`` in words (``an integer``, ``a number, or null``), or None
    for a key the schema does not have."""
    hint = config_keys().get(key)
    if hint is None:
        return None
    optional = type(None) in typing.get_args(hint)
    if optional:
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if dataclasses.is_dataclass(hint):
        words = f"the group of keys {key}.*, set one at a time (e.g. {key}.{dataclasses.fields(hint)[0].name}=...)"
    elif typing.get_origin(hint) in (list, List):
        words = "a list of integers, e.g. [64,64]"
    elif typing.get_origin(hint) in (dict, Dict):
        words = "a mapping of names to values, e.g. {contact_cost_weight:0}"
    else:
        words = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(hint, str(hint))
    return words + (", or null" if optional else "")


def to_dict(config: Config) -> dict:
    """Plain nested dict of a config (for checkpoints and logs)."""
    return OmegaConf.to_container(OmegaConf.structured(config))


RESUME_MAY_CHANGE = ("train.total_timesteps", "train.progress")
"""The keys in which a resumed run's config may differ from the one it was trained with: a larger
budget trains it further, and the progress bar is the console's business."""


def first_difference(trained: dict, current: dict, prefix: str = "") -> tuple[str, Any, Any] | None:
    """``(key, trained value, current value)`` of the first key, in the config's order, in which two
    configs as :func:`to_dict` gives them differ, leaving out :data:`RESUME_MAY_CHANGE` and
    ``resume``; None where they agree."""
    for key in dict.fromkeys([*trained, *current]):
        full_key = f"{prefix}{key}"
        if full_key in (*RESUME_MAY_CHANGE, "resume"):
            continue
        before, now = trained.get(key), current.get(key)
        if isinstance(before, dict) and isinstance(now, dict):
            found = first_difference(before, now, f"{full_key}.")
            if found:
                return found
        elif before != now:
            return full_key, before, now
    return None


def register_configs() -> None:
    """Register the schema that ``conf/config.yaml`` composes onto, as ``ppo_config``."""
    ConfigStore.instance().store(name="ppo_config", node=ConfigSchema)


def composition_schema(cls: type, nested: dict[type, type] | None = None) -> type:
    """``cls`` as Hydra composes it: the same keys, defaults and nesting, each value typed ``Any``.
    A misspelt key still fails while Hydra composes; a value of the wrong type reaches
    :func:`to_config`, which refuses it in one line that names the key (``agent.lr=fast is not
    allowed: a number``) instead of Hydra's multi-line report. This is also how an integer key takes
    ``1e5``, which Hydra reads as a float and a typed int node would refuse: :func:`to_config` keeps
    whole numbers as ints.

    A field whose type is a dataclass takes its schema from ``nested``. The class is named
    ``<cls>Schema`` and must be assigned to that name in this module: a composed config refers to it,
    and a sweep pickles configs to its worker processes, which import it by that name."""
    hints = typing.get_type_hints(cls)
    fields = []
    for spec in dataclasses.fields(cls):
        hint = hints[spec.name]
        if dataclasses.is_dataclass(hint):
            schema = (nested or {})[hint]
            fields.append((spec.name, schema, field(default_factory=schema)))
            continue
        default = (field(default=spec.default) if spec.default is not dataclasses.MISSING
                   else field(default_factory=spec.default_factory))
        fields.append((spec.name, typing.Any, default))
    return dataclasses.make_dataclass(f"{cls.__name__}Schema", fields, namespace={"__module__": __name__})


AgentConfigSchema = composition_schema(AgentConfig)
NetworkConfigSchema = composition_schema(NetworkConfig)
EnvConfigSchema = composition_schema(EnvConfig)
DeviceConfigSchema = composition_schema(DeviceConfig)
TrainConfigSchema = composition_schema(TrainConfig)
ConfigSchema = composition_schema(Config, nested={
    AgentConfig: AgentConfigSchema, NetworkConfig: NetworkConfigSchema, EnvConfig: EnvConfigSchema,
    DeviceConfig: DeviceConfigSchema, TrainConfig: TrainConfigSchema,
})
