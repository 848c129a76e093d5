"""``device.precision``: what ``auto`` chooses and says, bfloat16 autocast in the networks with float32
outputs and losses, and a bf16 run through checkpoint, resume, evaluation and ``device.compile=on``.
Native bfloat16 or its absence is simulated by the CPU flags that :mod:`ppo.precision` reads."""

from __future__ import annotations

import dataclasses
import logging

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from conftest import make_config
from ppo import precision as precision_module
from ppo.checkpoint import load_checkpoint, load_policy
from ppo.config import AgentConfig, Config, DeviceConfig, EnvConfig, NetworkConfig, TrainConfig
from ppo.errors import ConfigError
from ppo.evaluate import evaluate_run
from ppo.networks import Policy, make_actor, make_critic, policy_and_values
from ppo.precision import Precision, choose_precision
from ppo.train import train
from ppo.update import Samples, minibatch_loss

MINATAR_NET = NetworkConfig(type="minatar_cnn", hidden_sizes=[16], activation="relu", shared_torso=True)
NATURE_NET = NetworkConfig(type="nature_cnn", hidden_sizes=[32], activation="relu", shared_torso=True)
BF16 = Precision("bf16", "test", "cpu")
CPU = torch.device("cpu")


class GridEnv(gym.Env):
    """(4, 10, 10) bool grids of random cells; 3 actions; reward 1 per step; episodes of 6 steps."""

    metadata = {"render_modes": []}

    def __init__(self):
        self.observation_space = gym.spaces.Box(0, 1, (4, 10, 10), bool)
        self.action_space = gym.spaces.Discrete(3)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.random((4, 10, 10)) < 0.3, {}

    def step(self, action):
        self.t += 1
        return self.np_random.random((4, 10, 10)) < 0.3, 1.0, self.t >= 6, False, {}


GRID_ID = "TestPrecisionGrid-v0"
if GRID_ID not in gym.registry:
    gym.register(GRID_ID, entry_point=GridEnv)


@pytest.fixture
def cpu_flags(monkeypatch, tmp_path):
    """Set the flags of the simulated CPU: ``cpu_flags("fpu avx512f")``."""
    def simulate(flags: str) -> None:
        cpuinfo = tmp_path / "cpuinfo"
        cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: {flags}\n\n"
                           f"processor\t: 1\nflags\t\t: {flags}\n")
        monkeypatch.setattr(precision_module, "CPUINFO", cpuinfo)
    return simulate


def grid_config(precision: str, total_timesteps: int = 48, **device) -> Config:
    return Config(agent=AgentConfig(n_steps=8, batch_size=8, n_epochs=2), network=MINATAR_NET,
                  env=EnvConfig(id=GRID_ID, num_envs=2, vectorization="sync"),
                  device=DeviceConfig(precision=precision, **device),
                  train=TrainConfig(total_timesteps=total_timesteps, eval_episodes=2, progress=False,
                                    checkpoint_every=0))


def start_line(caplog) -> str:
    return next(record.getMessage() for record in caplog.records if record.getMessage().startswith(
        ("Training", "Resuming")))


# ---- CHOOSING ----

@pytest.mark.parametrize("flags, network_type, chosen, reason", [
    ("fpu avx512f avx512_bf16", "nature_cnn", "bf16", "auto: the CPU has avx512_bf16 and bf16 pays for nature_cnn"),
    ("fpu amx_bf16 amx_tile", "minatar_cnn", "bf16", "auto: the CPU has amx_bf16 and bf16 pays for minatar_cnn"),
    ("fpu avx512f avx512_bf16", "mlp", "fp32", "auto: the CPU has avx512_bf16, but bf16 does not pay for mlp networks"),
    ("fpu avx2 avx512f", "nature_cnn", "fp32", "auto: no native bf16, the CPU has neither amx_bf16 nor avx512_bf16"),
])
def test_auto_chooses_bf16_only_where_the_cpu_has_it_and_it_pays(cpu_flags, flags, network_type, chosen, reason):
    cpu_flags(flags)
    assert choose_precision("auto", CPU, network_type) == Precision(chosen, reason, "cpu")


def test_auto_chooses_fp32_where_the_cpu_flags_cannot_be_read(monkeypatch, tmp_path):
    monkeypatch.setattr(precision_module, "CPUINFO", tmp_path / "no_such_file")
    assert choose_precision("auto", CPU, "nature_cnn").name == "fp32"


def test_explicit_precisions_are_kept_and_bf16_without_native_support_says_it_is_emulated(cpu_flags):
    cpu_flags("fpu avx2")
    assert choose_precision("fp32", CPU, "nature_cnn") == Precision("fp32", "device.precision=fp32", "cpu")
    emulated = choose_precision("bf16", CPU, "mlp")
    assert emulated.name == "bf16" and "no native bf16" in emulated.reason and "slowly" in emulated.reason


def test_auto_on_a_cpu_without_native_bf16_trains_in_fp32_and_the_start_line_says_why(cpu_flags, tmp_path, caplog):
    cpu_flags("fpu avx2 avx512f")
    with caplog.at_level(logging.INFO, logger="ppo.train"):
        train(grid_config("auto"), tmp_path)
    assert "| precision fp32 (auto: no native bf16, the CPU has neither amx_bf16 nor avx512_bf16) |" \
        in start_line(caplog)


def test_auto_on_a_cpu_with_native_bf16_trains_a_cnn_in_bf16_and_the_start_line_says_why(cpu_flags, tmp_path,
                                                                                          caplog):
    cpu_flags("fpu avx512_bf16")
    with caplog.at_level(logging.INFO, logger="ppo.train"):
        train(grid_config("auto"), tmp_path)
    assert "| precision bf16 (auto: the CPU has avx512_bf16 and bf16 pays for minatar_cnn) |" in start_line(caplog)


def test_an_unknown_precision_is_refused_in_one_line_naming_the_key_and_the_allowed_values():
    with pytest.raises(ConfigError) as error:
        make_config(["device.precision=fp16"])
    assert str(error.value) == "device.precision='fp16' is not allowed: one of ('fp32', 'bf16', 'auto')"


def test_auto_is_the_default():
    assert make_config().device.precision == "auto"


# ---- NUMBERS UNDER AUTOCAST ----

class LayerOutputDtypes(TorchFunctionMode):
    """While active, records the dtype of every linear layer's and convolution's output in ``dtypes``
    (the MLP calls ``F.linear`` itself, so module hooks would miss its layers)."""

    def __init__(self):
        super().__init__()
        self.dtypes: set[torch.dtype] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        output = func(*args, **(kwargs or {}))
        if func in (F.linear, F.conv2d):
            self.dtypes.add(output.dtype)
        return output


@pytest.mark.parametrize("net, obs", [
    (MINATAR_NET, torch.rand(8, 4, 10, 10) < 0.3),
    (NATURE_NET, torch.randint(0, 256, (8, 4, 84, 84), dtype=torch.uint8)),
    (NetworkConfig(), torch.randn(8, 4)),
    (dataclasses.replace(MINATAR_NET, shared_torso=False), torch.rand(8, 4, 10, 10) < 0.3),
])
def test_under_bf16_the_layers_compute_in_bf16_but_log_probs_values_and_loss_terms_are_float32(net, obs):
    actor = make_actor(tuple(obs.shape[1:]), {"n": 3}, net)
    critic = make_critic(tuple(obs.shape[1:]), net, actor)
    batch = Samples(obs, torch.randint(0, 3, (8,)), -torch.rand(8), torch.randn(8), torch.randn(8), torch.randn(8))
    with LayerOutputDtypes() as layers:
        with BF16.autocast():
            policy, values = policy_and_values(actor, critic, obs)
            log_probs = actor.log_prob(policy, batch.actions)
        total, loss = BF16.autocast_each_call(minibatch_loss)(actor, critic, AgentConfig(), 0.2, batch)
    assert layers.dtypes == {torch.bfloat16}
    assert {policy.dtype, values.dtype, log_probs.dtype, total.dtype} == {torch.float32}
    assert {term.dtype for term in loss} == {torch.float32}
    total.backward()  # outside autocast, as the update runs it
    assert {param.grad.dtype for param in [*actor.parameters(), *critic.parameters()]} == {torch.float32}


def test_acting_is_without_autograd_and_bf16_acts_under_autocast_outside_inference_mode():
    """fp32 acts in inference mode; bf16 under no_grad and autocast, where autocast reuses its bfloat16
    weights from one forward pass to the next."""
    with Precision("fp32").acting():
        assert torch.is_inference_mode_enabled() and not torch.is_autocast_enabled("cpu")
    with BF16.acting():
        assert not torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    assert torch.is_grad_enabled() and not torch.is_autocast_enabled("cpu")


def test_bf16_acting_casts_the_weights_once_for_all_forward_passes():
    """Ten acting passes of the Nature CNN under one acting context copy the weights to bfloat16 once:
    the copies of a pass after the first are the input's alone."""
    actor = make_actor((4, 84, 84), {"n": 4}, NATURE_NET)
    obs = torch.randint(0, 256, (2, 4, 84, 84), dtype=torch.uint8)

    def weight_casts(passes: int) -> int:
        with BF16.acting(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
            for _ in range(passes):
                actor(obs)
        return sum(event.count for event in profile.key_averages() if event.key == "aten::copy_")

    assert weight_casts(10) - weight_casts(1) == 9 * (weight_casts(2) - weight_casts(1))  # the same per pass after
    assert weight_casts(2) - weight_casts(1) < weight_casts(1)  # ... and fewer than the first pass's


def test_bf16_outputs_are_close_to_fp32_ones():
    obs = torch.randint(0, 256, (16, 4, 84, 84), dtype=torch.uint8)
    actor = make_actor((4, 84, 84), {"n": 4}, NATURE_NET)
    with torch.no_grad():
        exact = actor(obs)
        with BF16.autocast():
            approximate = actor(obs)
    assert torch.allclose(approximate.exp(), exact.exp(), atol=0.02)


def test_the_nature_cnn_runs_channels_last_and_matches_contiguous_weights():
    obs = torch.randint(0, 256, (4, 4, 84, 84), dtype=torch.uint8)
    actor = make_actor((4, 84, 84), {"n": 4}, NATURE_NET)
    conv = actor.body.torso.conv[0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
    contiguous = make_actor((4, 84, 84), {"n": 4}, NATURE_NET)
    contiguous.body.torso.memory_format = torch.contiguous_format
    contiguous.load_state_dict({key: value.contiguous() for key, value in actor.state_dict().items()})
    with torch.no_grad():
        assert torch.allclose(actor(obs), contiguous(obs), atol=1e-5)


# ---- A BF16 RUN ----

@pytest.fixture(scope="module")
def bf16_run(tmp_path_factory):
    """A short bf16 run of a CNN on the grid env: (config, run dir, metrics)."""
    run_dir = tmp_path_factory.mktemp("bf16_run")
    config = grid_config("bf16", total_timesteps=32)
    return config, run_dir, train(config, run_dir)


def test_a_bf16_run_checkpoints_float32_weights_and_adam_state(bf16_run):
    _, run_dir, metrics = bf16_run
    state = load_checkpoint(run_dir)
    tensors = [*state["actor"].values(), *state["critic"].values()]
    tensors += [value for saved in state["optimizer"]["state"].values() for value in saved.values()
                if value.is_floating_point() and value.dim() > 0]
    assert tensors and {tensor.dtype for tensor in tensors} == {torch.float32}
    assert np.isfinite(metrics["final_score"])


def test_a_bf16_run_evaluates_in_bf16(bf16_run):
    config, run_dir, metrics = bf16_run
    policy, _ = load_policy(run_dir)
    assert policy.precision.name == "bf16"
    with LayerOutputDtypes() as layers:
        policy(np.zeros((2, 4, 10, 10), dtype=bool))
    assert layers.dtypes == {torch.bfloat16}
    evaluation = evaluate_run(run_dir, episodes=2)
    assert evaluation["scores"].mean() == metrics["final_score"] == 6.0


def test_a_bf16_run_resumes_in_bf16(bf16_run, tmp_path, caplog):
    import shutil

    config, run_dir, _ = bf16_run
    shutil.copytree(run_dir, tmp_path / "resumed")
    longer = dataclasses.replace(config, train=dataclasses.replace(config.train, total_timesteps=64))
    with caplog.at_level(logging.INFO, logger="ppo.train"):
        metrics = train(longer, tmp_path / "resumed", resume=True)
    assert metrics["global_step"] == 64 and np.isfinite(metrics["final_score"])
    assert start_line(caplog).startswith("Resuming") and "| precision bf16 (device.precision=bf16" in start_line(caplog)


def test_the_policy_of_an_fp32_run_acts_without_autocast():
    actor = make_actor((4, 10, 10), {"n": 3}, MINATAR_NET)
    with LayerOutputDtypes() as layers:
        Policy(actor)(np.zeros((2, 4, 10, 10), dtype=bool))
    assert layers.dtypes == {torch.float32}


@pytest.mark.slow  # compiles: a few seconds with inductor's cache warm, about a minute cold
def test_bf16_with_compile_on_trains_compiled_without_falling_back(tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        metrics = train(grid_config("bf16", total_timesteps=48, compile="on"), tmp_path)
    messages = [record.getMessage() for record in caplog.records]
    assert any(message.startswith("Compiling the update's minibatch step") for message in messages)
    assert not any("compiling failed" in message for message in messages)
    assert np.isfinite(metrics["final_score"])
