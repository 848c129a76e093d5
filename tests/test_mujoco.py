"""The MuJoCo suite: RL Zoo's PPO settings translated key by key, the missing extra in one line, and a
short run of a tuned experiment through the real CLI."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys

import pytest
import torch

from conftest import make_config, run_cli
from ppo.config import EnvConfig
from ppo.errors import ConfigError
from ppo.envs import make_envs

MUJOCO_PRESETS = {"half_cheetah": "HalfCheetah-v5", "hopper": "Hopper-v5", "walker2d": "Walker2d-v5",
                  "ant": "Ant-v5", "swimmer": "Swimmer-v5"}

# SB3's PPO defaults and RL Zoo's default of one env: what RL Zoo's entries leave unsaid.
SB3_DEFAULTS = dict(n_envs=1, n_steps=2048, batch_size=64, n_epochs=10, learning_rate=3e-4, gamma=0.99,
                    gae_lambda=0.95, clip_range=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5,
                    net_arch=[64, 64], activation_fn="tanh", ortho_init=True, log_std_init=0.0)
_TUNED_POLICY = dict(log_std_init=-2.0, ortho_init=False, activation_fn="relu", net_arch=[256, 256])
# rl-baselines3-zoo hyperparams/ppo.yml at commit 22e3ff2450fd92033f7f032915e1f64894a09584, the
# "<Env>-v4" entries; each also has normalize: true and n_timesteps: 1e6, and a constant learning rate
# and clip range (no lin_ schedule). net_arch is SB3's dict(pi=..., vf=...) with pi == vf.
RL_ZOO = {
    "half_cheetah": dict(n_envs=1, batch_size=64, n_steps=512, gamma=0.98, learning_rate=2.0633e-05,
                         ent_coef=0.000401762, clip_range=0.1, n_epochs=20, gae_lambda=0.92, max_grad_norm=0.8,
                         vf_coef=0.58096, **_TUNED_POLICY),
    "hopper": dict(n_envs=1, batch_size=32, n_steps=512, gamma=0.999, learning_rate=9.80828e-05,
                   ent_coef=0.00229519, clip_range=0.2, n_epochs=5, gae_lambda=0.99, max_grad_norm=0.7,
                   vf_coef=0.835671, **_TUNED_POLICY),
    "walker2d": dict(n_envs=1, batch_size=32, n_steps=512, gamma=0.99, learning_rate=5.05041e-05,
                     ent_coef=0.000585045, clip_range=0.1, n_epochs=20, gae_lambda=0.95, max_grad_norm=1,
                     vf_coef=0.871923),
    "ant": dict(),
    "swimmer": dict(gamma=0.9999, n_envs=4, n_steps=1024, batch_size=256, learning_rate=6e-4, gae_lambda=0.98),
}
# RL Zoo's (SB3's) name -> ours
TRANSLATION = {"n_envs": "env.num_envs", "n_steps": "agent.n_steps", "batch_size": "agent.batch_size",
               "n_epochs": "agent.n_epochs", "learning_rate": "agent.lr", "gamma": "agent.gamma",
               "gae_lambda": "agent.gae_lambda", "clip_range": "agent.policy_clip", "ent_coef": "agent.entropy_coef",
               "vf_coef": "agent.critic_coef", "max_grad_norm": "agent.max_grad_norm",
               "net_arch": "network.hidden_sizes", "activation_fn": "network.activation",
               "ortho_init": "network.orthogonal_init", "log_std_init": "network.log_std_init"}


def require_mujoco() -> None:
    """Skip without the ``mujoco`` extra, except in CI, which installs it (``dev`` includes it)."""
    if importlib.util.find_spec("mujoco") is None:
        if os.environ.get("CI"):
            pytest.fail("CI installs the mujoco extra (in dev), but mujoco is missing")
        pytest.skip("needs MuJoCo: pip install -e '.[mujoco]'")


@pytest.mark.parametrize("preset", sorted(MUJOCO_PRESETS))
def test_tuned_experiment_is_rl_zoos_entry_key_by_key(preset):
    """Every key of RL Zoo's entry (SB3's defaults where it says nothing) lands in our config under its
    translated name; normalize: true is both normalizations, with a constant learning rate and clip
    range, plain value regression, one critic shape for both networks and max_grad_norm over both
    networks' gradients as one vector (SB3 clips the policy's parameters together), over 1M steps of
    the v5 id."""
    config = make_config([f"experiment={preset}_tuned"])
    expected = {**SB3_DEFAULTS, **RL_ZOO[preset]}
    for sb3_key, our_key in TRANSLATION.items():
        group, key = our_key.split(".")
        value = getattr(getattr(config, group), key)
        assert value == pytest.approx(expected[sb3_key]) if isinstance(value, float) else value == expected[sb3_key], \
            (our_key, value, sb3_key, expected[sb3_key])
    assert config.env.id == MUJOCO_PRESETS[preset]
    assert config.env.normalize_observations and config.env.normalize_rewards
    assert not config.agent.anneal_lr and not config.agent.anneal_policy_clip and config.agent.value_clip is None
    assert config.network.critic_hidden_sizes is None
    assert config.agent.clip_grad_jointly
    assert config.train.total_timesteps == 1_000_000


# cleanrl/ppo_continuous_action.py's Args at commit fe8d8a03, by our names. CleanRL's critic loss is
# 0.5 x mean squared error (clipped with clip_coef), weighed by vf_coef 0.5: 0.25 of our plain mean. It
# clips the gradient norm of agent.parameters(), actor and critic together.
CLEANRL_CONTINUOUS = {"env.num_envs": 1, "agent.n_steps": 2048, "agent.batch_size": 2048 // 32,
                      "agent.n_epochs": 10, "agent.lr": 3e-4, "agent.anneal_lr": True, "agent.gamma": 0.99,
                      "agent.gae_lambda": 0.95, "agent.policy_clip": 0.2, "agent.value_clip": 0.2,
                      "agent.critic_coef": 0.5 * 0.5, "agent.entropy_coef": 0.0, "agent.max_grad_norm": 0.5,
                      "agent.clip_grad_jointly": True,
                      "agent.normalize_advantages": True, "network.hidden_sizes": [64, 64],
                      "network.activation": "tanh", "network.orthogonal_init": True,
                      "network.log_std_init": 0.0, "env.normalize_observations": True,
                      "env.normalize_rewards": True, "env.clip_observations": 10.0, "env.clip_rewards": 10.0,
                      "train.total_timesteps": 1_000_000}


@pytest.mark.parametrize("env", ["hopper", "walker2d"])
def test_cleanrl_experiment_is_cleanrls_continuous_defaults_on_any_mujoco_preset(env):
    """``experiment=mujoco_cleanrl`` is CleanRL's ppo_continuous_action.py key by key, Hopper unless
    ``env=`` picks another preset."""
    config = make_config(["experiment=mujoco_cleanrl"] + ([] if env == "hopper" else [f"env={env}"]))
    for our_key, expected in CLEANRL_CONTINUOUS.items():
        group, key = our_key.split(".")
        assert getattr(getattr(config, group), key) == pytest.approx(expected), our_key
    assert config.env.id == MUJOCO_PRESETS[env]


@pytest.mark.parametrize("preset", sorted(MUJOCO_PRESETS))
def test_env_preset_is_the_v5_id_normalized(preset):
    """``env=<preset>`` alone (any agent) picks the v5 id with RL Zoo's normalization."""
    config = make_config([f"env={preset}"])
    assert config.env.id == MUJOCO_PRESETS[preset]
    assert config.env.normalize_observations and config.env.normalize_rewards


def test_mujoco_env_without_mujoco_names_the_extra_to_install(monkeypatch):
    """Without the mujoco package, a MuJoCo id is a ConfigError naming env.id and the extra."""
    for module in [name for name in sys.modules if name.startswith("gymnasium.envs.mujoco")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "mujoco", None)  # import mujoco now raises ImportError
    with pytest.raises(ConfigError, match=r"^env.id='Hopper-v5' is not available here: it needs MuJoCo; "
                                          r"install it with pip install \"ppo\[mujoco\]\""):
        make_envs(EnvConfig(id="Hopper-v5", num_envs=1))


@pytest.mark.slow  # about 4 s of CPU: the process imports torch and MuJoCo
def test_tuned_hopper_trains_a_few_hundred_steps_through_the_cli(tmp_path):
    """``experiment=hopper_tuned`` with 2 rollouts of 128 steps: exit 0, a finite greedy score, and a
    checkpoint with RL Zoo's network (256x256 actor, log-std near its -2 start) and the statistics of
    both normalizations."""
    require_mujoco()
    run_dir = tmp_path / "run"
    result = run_cli(tmp_path, "experiment=hopper_tuned", "agent.n_steps=128", "train.total_timesteps=256",
                     "train.eval_episodes=1", "train.progress=false", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["global_step"] == 256 and math.isfinite(metrics["final_score"])
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert state["actor"]["body.0.weight"].shape == (256, 11)  # Hopper's 11-D observations
    assert state["actor"]["log_std"].tolist() == pytest.approx([-2.0] * 3, abs=0.01)
    assert {"observations", "returns"} <= set(state["normalizer"])
