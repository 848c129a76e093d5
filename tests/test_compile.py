"""ppo.compile: what device.compile decides, the fallback to eager, and a compiled minibatch step
that computes what the eager one does."""

from __future__ import annotations

import logging

import pytest
import torch

import ppo.compile
from conftest import make_config
from ppo.compile import AUTO_MIN_MINIBATCH_STEPS, CompiledWithFallback, compile_if_it_pays, compiles, minibatch_steps
from ppo.config import AgentConfig, DeviceConfig, NetworkConfig
from ppo.errors import ConfigError
from ppo.networks import Critic, make_actor
from ppo.update import Samples, minibatch_loss


def test_minibatch_steps_are_updates_times_epochs_times_minibatches():
    """The default run: 150,000 steps in rollouts of 16 x 32 = 512 is 293 updates (rounded up), each of
    4 epochs of 2 minibatches of 256."""
    assert minibatch_steps(make_config()) == 293 * 4 * 2
    # the tutorial: one env x 20 steps, minibatches of 5 (4 per epoch), 4 epochs
    tutorial = make_config(["experiment=tutorial", "train.total_timesteps=1000"])
    assert minibatch_steps(tutorial) == 50 * 4 * 4


@pytest.mark.parametrize("mode, total_timesteps, expected", [
    ("off", 10**9, False), ("on", 512, True),
    ("auto", 150_000, False),  # the default CartPole run is too short to win back the compilation
    ("auto", 150_000 * (AUTO_MIN_MINIBATCH_STEPS // (293 * 8) + 1), True),
])
def test_compiles_follows_the_mode_and_auto_counts_minibatch_steps(mode, total_timesteps, expected):
    config = make_config([f"device.compile={mode}", f"train.total_timesteps={total_timesteps}"])
    assert compiles(config) is expected
    assert (compile_if_it_pays(minibatch_loss, config) is minibatch_loss) is not expected


def test_auto_is_the_default_and_unknown_modes_are_refused():
    assert DeviceConfig().compile == "auto"
    with pytest.raises(ConfigError, match=r"device.compile='fast' is not allowed: one of \('off', 'on', 'auto'\)"):
        DeviceConfig(compile="fast")


def test_a_failing_compiler_falls_back_to_eager_with_one_warning(monkeypatch, caplog):
    """Compilation fails at the first call (torch.compile is lazy): that call and every later one
    run the function itself, and the log says so once."""
    def failing_compile(function, **kwargs):
        def compiled(*args):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\nmore detail")
        return compiled

    monkeypatch.setattr(ppo.compile.torch, "compile", failing_compile)
    step = CompiledWithFallback(lambda x: x + 1)
    with caplog.at_level(logging.WARNING, logger="ppo.compile"):
        assert [step(1), step(2), step(3)] == [2, 3, 4]
    assert [record.getMessage() for record in caplog.records] == [
        "device.compile: compiling failed (RuntimeError: InvalidCxxCompiler: No working C++ compiler found); "
        "training uncompiled"]


def compiler_available() -> bool:
    try:
        torch.compile(lambda x: x * 2, dynamic=True)(torch.ones(3))
        return True
    except Exception:  # noqa: BLE001 - no C++ compiler, or no inductor for this platform
        return False


@pytest.mark.slow  # 3 s with inductor's cache warm, about 50 s cold (the C++ build)
@pytest.mark.parametrize("action_spec, agent", [
    ({"n": 3}, AgentConfig(entropy_coef=0.01)),
    ({"low": [-1.0, -1.0], "high": [1.0, 1.0]}, AgentConfig(entropy_coef=0.01, value_clip=0.2)),
])
def test_compiled_minibatch_loss_matches_eager_in_loss_and_gradients(action_spec, agent):
    """On a tiny batch, compiled and eager give the same loss terms and the same gradients (to float32
    rounding: the compiled kernels sum in another order), for both action kinds, and for a batch of
    another size without a failure (one graph with a symbolic batch size)."""
    if not compiler_available():
        pytest.skip("torch.compile is unavailable here (no C++ compiler?)")
    net = NetworkConfig(hidden_sizes=[16, 16])
    torch.manual_seed(0)
    actor, critic = make_actor((4,), action_spec, net), Critic((4,), net)
    compiled = CompiledWithFallback(minibatch_loss)

    def loss_and_grads(loss_fn, batch_size):
        generator = torch.Generator().manual_seed(batch_size)
        obs = torch.randn(batch_size, 4, generator=generator)
        actions = (torch.randint(0, 3, (batch_size,), generator=generator) if "n" in action_spec
                   else torch.randn(batch_size, 2, generator=generator))
        old_log_probs, advantages, returns, old_values = torch.randn(4, batch_size, generator=generator)
        batch = Samples(obs, actions, old_log_probs - 1, advantages, returns, old_values)
        total, loss = loss_fn(actor, critic, agent, 0.2, batch)
        params = list(actor.parameters()) + list(critic.parameters())
        return torch.stack(loss), torch.autograd.grad(total, params)

    for batch_size in (8, 7):
        eager_terms, eager_grads = loss_and_grads(minibatch_loss, batch_size)
        compiled_terms, compiled_grads = loss_and_grads(compiled, batch_size)
        assert not compiled.failed
        torch.testing.assert_close(compiled_terms, eager_terms, rtol=1e-5, atol=1e-6)
        for compiled_grad, eager_grad in zip(compiled_grads, eager_grads):
            torch.testing.assert_close(compiled_grad, eager_grad, rtol=1e-4, atol=1e-6)
