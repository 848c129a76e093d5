"""Composition through Hydra (presets, overrides, experiments) and validation of the typed config."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hydra.errors import HydraException
from omegaconf import OmegaConf

import ppo.run
from ppo.run import compose
from conftest import make_config
from ppo.config import AgentConfig, Config, DeviceConfig, EnvConfig, NetworkConfig, TrainConfig, to_config, to_dict
from ppo.errors import ConfigError


def presets(group: str) -> list[str]:
    return sorted(path.stem for path in (Path(ppo.run.CONF_DIR) / group).glob("*.yaml"))


def experiments() -> list[str]:
    return sorted(path.stem for path in (Path(ppo.run.CONF_DIR) / "experiment").glob("*.yaml"))


def test_every_group_has_its_presets():
    """The preset files that the defaults list and the docs name are there."""
    assert {"default", "tutorial", "rl_zoo"} <= set(presets("agent"))
    assert {"small", "large"} <= set(presets("network"))
    assert {"cartpole", "acrobot"} <= set(presets("env"))
    assert {"cpu", "cuda", "auto"} <= set(presets("device"))
    assert "tutorial" in experiments()


PRESET_OVERRIDES = [f"{group}={name}" for group in ("agent", "network", "env", "device") for name in presets(group)]


@pytest.mark.parametrize("override", PRESET_OVERRIDES)
def test_every_preset_composes_and_validates(override):
    """Each preset of each group composes on top of the defaults and passes to_config."""
    config = to_config(compose([override]))
    assert isinstance(config, Config)


@pytest.mark.parametrize("name", experiments())
def test_every_experiment_composes(name):
    """Each conf/experiment/<name>.yaml composes as ``experiment=<name>`` and passes to_config."""
    assert isinstance(to_config(compose([f"experiment={name}"])), Config)


GROUP_SCHEMAS = {"agent": AgentConfig, "network": NetworkConfig, "env": EnvConfig, "device": DeviceConfig}


@pytest.mark.parametrize("group, preset", [(group, path.stem) for group in GROUP_SCHEMAS
                                           for path in sorted((Path(ppo.run.CONF_DIR) / group).glob("*.yaml"))])
def test_presets_hold_only_what_differs_from_the_dataclass_defaults(group, preset):
    """One home per default: a preset sets a key only to a value other than its dataclass default
    (``env.id`` excepted: an env preset names its env even where it is the default's)."""
    values = OmegaConf.to_container(OmegaConf.load(Path(ppo.run.CONF_DIR) / group / f"{preset}.yaml")) or {}
    defaults = dataclasses.asdict(GROUP_SCHEMAS[group]())
    same = [key for key, value in values.items() if value == defaults[key] and (group, key) != ("env", "id")]
    assert not same, f"{group}/{preset}.yaml repeats the defaults of {same}"


def test_defaults_compose_to_the_dataclass_defaults():
    """No overrides: every value is the dataclass default (agent default, network small, CartPole-v1
    x 16 with auto vectorization and next_step autoreset, cpu, seed 1)."""
    config = make_config()
    assert config == Config()
    assert config.network.hidden_sizes == [64, 64] and config.network.activation == "tanh"
    assert config.env.id == "CartPole-v1" and config.env.num_envs == 16
    assert config.env.vectorization == "auto" and config.env.autoreset_mode == "next_step"
    assert config.device.type == "cpu" and config.seed == 1


@pytest.mark.parametrize("override, path, value", [
    ("agent.policy_clip=0.1", "agent.policy_clip", 0.1),
    ("agent.gamma=0.9", "agent.gamma", 0.9),
    ("agent.n_steps=64", "agent.n_steps", 64),
    ("agent.max_grad_norm=null", "agent.max_grad_norm", None),
    ("network.hidden_sizes=[32,16,8]", "network.hidden_sizes", [32, 16, 8]),
    ("env.num_envs=16", "env.num_envs", 16),
    ("env.autoreset_mode=same_step", "env.autoreset_mode", "same_step"),
    ("train.total_timesteps=5000", "train.total_timesteps", 5000),
    ("seed=7", "seed", 7),
])
def test_overrides_land_in_the_config(override, path, value):
    """A command-line override sets that key of the validated config."""
    config = make_config([override])
    obj = config
    for part in path.split("."):
        obj = getattr(obj, part)
    assert obj == value


def test_group_choice_and_key_override_combine():
    """A group choice and a key override of the same group both apply: env=acrobot env.num_envs=2."""
    config = make_config(["env=acrobot", "env.num_envs=2", "agent.batch_size=64", "network=large",
                          "agent.policy_clip=0.1"])
    assert config.env.id == "Acrobot-v1" and config.env.num_envs == 2
    assert config.network.hidden_sizes == [256, 256] and config.network.activation == "relu"
    assert config.agent.policy_clip == 0.1


def test_tutorial_agent_preset_has_the_tutorial_hyperparameters():
    """agent=tutorial: N=20 steps, minibatch 5, 4 epochs, lr 3e-4, γ 0.99, λ 0.95, ε 0.2."""
    agent = make_config(["agent=tutorial", "env.num_envs=1"]).agent
    assert (agent.n_steps, agent.batch_size, agent.n_epochs) == (20, 5, 4)
    assert agent.lr == pytest.approx(3e-4)
    assert (agent.gamma, agent.gae_lambda, agent.policy_clip) == (0.99, 0.95, 0.2)


def test_tutorial_experiment_sets_one_env_and_large_relu_networks():
    """experiment=tutorial: the tutorial agent, one env, 256x256 ReLU networks."""
    config = make_config(["experiment=tutorial"])
    assert config.env.num_envs == 1
    assert config.network.hidden_sizes == [256, 256] and config.network.activation == "relu"
    assert (config.agent.n_steps, config.agent.batch_size, config.agent.n_epochs) == (20, 5, 4)


BAD_VALUES = [
    ("agent.policy_clip=-0.1", "agent.policy_clip"),
    ("agent.policy_clip=0", "agent.policy_clip"),
    ("agent.policy_clip=1", "agent.policy_clip"),
    ("agent.policy_clip=1.5", "agent.policy_clip"),
    ("agent.gae_lambda=1.5", "agent.gae_lambda"),
    ("agent.gae_lambda=-0.1", "agent.gae_lambda"),
    ("agent.gamma=0", "agent.gamma"),
    ("agent.gamma=1.01", "agent.gamma"),
    ("agent.lr=0", "agent.lr"),
    ("agent.batch_size=0", "agent.batch_size"),
    ("agent.batch_size=513", "agent.batch_size"),  # > n_steps * num_envs = 32 * 16
    ("agent.n_steps=0", "agent.n_steps"),
    ("agent.n_epochs=0", "agent.n_epochs"),
    ("agent.max_grad_norm=0", "agent.max_grad_norm"),
    ("agent.critic_coef=-1", "agent.critic_coef"),
    ("env.id=CartPol-v1", "env.id"),
    ("env.num_envs=0", "env.num_envs"),
    ("env.vectorization=threads", "env.vectorization"),
    ("env.autoreset_mode=never", "env.autoreset_mode"),
    ("network.activation=sigmoid", "network.activation"),
    ("network.hidden_sizes=[]", "network.hidden_sizes"),
    ("network.hidden_sizes=[64,0]", "network.hidden_sizes"),
    ("device.type=tpu", "device.type"),
    ("train.total_timesteps=0", "train.total_timesteps"),
    ("train.eval_episodes=-1", "train.eval_episodes"),
    ("agent.lr=inf", "agent.lr"),
    ("agent.critic_coef=inf", "agent.critic_coef"),
    ("seed=-1", "seed"),
    ("seed=4294967296", "seed"),
]


@pytest.mark.parametrize("override, key", BAD_VALUES)
def test_bad_value_raises_config_error_naming_the_key(override, key):
    """A value of the right type but outside the accepted range composes, then to_config raises a
    ConfigError whose message names the full key."""
    cfg = compose([override])
    with pytest.raises(ConfigError) as err:
        to_config(cfg)
    assert key in str(err.value)


def test_batch_size_larger_than_rollout_names_the_rollout_size():
    """batch_size > n_steps * num_envs: the message names agent.batch_size and the rollout size."""
    with pytest.raises(ConfigError, match="agent.batch_size") as err:
        make_config(["agent.batch_size=65", "agent.n_steps=16", "env.num_envs=4"])
    assert "64" in str(err.value)
    make_config(["agent.batch_size=64", "agent.n_steps=16", "env.num_envs=4"])  # equal is fine


def test_unknown_env_id_suggests_the_close_match():
    """A misspelt env id gets a 'did you mean' with the registered id."""
    with pytest.raises(ConfigError, match="CartPole-v1"):
        make_config(["env.id=CartPol-v1"])


@pytest.mark.parametrize("override", ["agent.polcy_clip=0.1", "network.activaton=relu", "trian.total_timesteps=5"])
def test_misspelt_key_fails_in_compose(override):
    """The schema is strict: an unknown key fails while Hydra composes, before any work starts."""
    with pytest.raises(HydraException, match=override.split("=")[0].split(".")[-1]):
        compose([override])


@pytest.mark.parametrize("override, message", [
    ("+agent.polcy_clip=0.1", "agent.polcy_clip is not a config key; did you mean agent.policy_clip"),
    ("+foo=1", "foo is not a config key"),
    ("+train.stop_when_slved=true", "did you mean train.stop_when_solved?"),
])
def test_added_unknown_key_is_refused_by_to_config(override, message):
    """A ``+key=value`` override composes (Hydra lets it add keys), but to_config refuses a key the
    schema does not have instead of silently dropping it, with the close match."""
    with pytest.raises(ConfigError, match=message.replace("?", r"\?")):
        to_config(compose([override]))


def test_expected_type_describes_each_kind_of_key():
    """The words the one-line messages use for what a key accepts."""
    from ppo.config import expected_type

    assert expected_type("agent.n_epochs") == "an integer"
    assert expected_type("agent.lr") == "a number"
    assert expected_type("agent.max_grad_norm") == "a number, or null"
    assert expected_type("agent.anneal_lr") == "true or false"
    assert expected_type("network.hidden_sizes") == "a list of integers, e.g. [64,64]"
    assert expected_type("resume") == "a string, or null"
    assert expected_type("agent.nope") is None


@pytest.mark.parametrize("override, allowed", [
    ("agent.lr=fast", "a number"),
    ("agent.lr=null", "a number"),
    ("train.progress=maybe", "true or false"),
    ("network.hidden_sizes=[a,b]", "a list of integers, e.g. [64,64]"),
    ("env.solved_score=abc", "a number, or null"),
])
def test_wrong_type_is_refused_in_one_line_naming_the_key(override, allowed):
    """Composition lets a value of any type through (only keys are checked there); to_config refuses
    a value of the wrong type in one line: ``key=value is not allowed: <what the key takes>``."""
    cfg = compose([override])
    with pytest.raises(ConfigError) as err:
        to_config(cfg)
    assert str(err.value) == f"{override} is not allowed: {allowed}"


@pytest.mark.parametrize("override, value", [
    ("train.total_timesteps=1e5", 100_000),
    ("train.total_timesteps=2.5e6", 2_500_000),
    ("agent.n_steps=1e5", 100_000),
    ("agent.n_steps=64", 64),
    ("train.max_episodes=1e3", 1000),
    ("network.hidden_sizes=[1e2,64]", [100, 64]),
])
def test_integer_keys_take_whole_numbers_written_with_an_exponent(override, value):
    """Hydra reads 1e5 as a float; an integer key takes it as the int it is."""
    key, _ = override.split("=")
    group, name = key.split(".")
    taken = getattr(getattr(make_config([override]), group), name)
    assert taken == value and all(type(number) is int for number in (taken if isinstance(taken, list) else [taken]))


@pytest.mark.parametrize("override", ["train.total_timesteps=1.5", "agent.n_steps=abc", "agent.n_epochs=2.5",
                                      "seed=null", "seed=true", "env.num_envs=[4]", "train.total_timesteps=inf",
                                      "train.max_episodes=0.5"])
def test_integer_keys_refuse_anything_but_whole_numbers(override):
    """Composition lets any value through to an integer key; to_config refuses what is not a whole number
    in one line that names the key, as typed: ``key=value is not allowed: an integer``."""
    cfg = compose([override])
    with pytest.raises(ConfigError) as err:
        to_config(cfg)
    key = override.split("=")[0]
    allowed = "an integer, or null" if key == "train.max_episodes" else "an integer"
    assert str(err.value) == f"{override} is not allowed: {allowed}"


def test_unknown_group_option_fails_in_compose():
    """env=nope is no preset: composition fails."""
    with pytest.raises(HydraException, match="nope"):
        compose(["env=nope"])


def test_to_dict_round_trips_through_to_config():
    """to_dict gives a plain dict that to_config turns back into an equal Config (checkpoints rely on it)."""
    config = make_config(["env=acrobot", "network=large", "agent.max_grad_norm=null", "seed=5"])
    plain = to_dict(config)
    assert isinstance(plain, dict) and isinstance(plain["agent"], dict)
    assert to_config(plain) == config
    assert to_config(OmegaConf.create(plain)) == config


@pytest.mark.parametrize("make", [
    lambda: AgentConfig(policy_clip=1.0),
    lambda: NetworkConfig(activation="gelu"),
    lambda: EnvConfig(id="NoSuchEnv-v0"),
    lambda: DeviceConfig(torch_threads=-1),
    lambda: TrainConfig(checkpoint_every=-1),
    lambda: Config(agent=AgentConfig(batch_size=600)),  # > 32 * 16
])
def test_dataclasses_validate_on_construction(make):
    """The range checks also run when the dataclasses are built directly (no Hydra)."""
    with pytest.raises(ConfigError):
        make()


def test_config_error_is_a_value_error():
    """ConfigError subclasses ValueError, so generic handlers still catch it."""
    assert issubclass(ConfigError, ValueError)
