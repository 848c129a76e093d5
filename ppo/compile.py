"""The update's minibatch step through ``torch.compile``, for the runs where it pays (``device.compile``).

On a CPU the minibatch step of PPO's small networks is some hundred small ops, and eager PyTorch
spends much of its time dispatching them. ``torch.compile`` fuses the forward pass and the loss into
a few C++ kernels, and AOTAutograd compiles their backward pass with them (on this project's CPU that
saves at most a fifth of a step: see :data:`AUTO_MIN_MINIBATCH_STEPS`); gradient clipping and
Adam stay eager (fused Adam is one op per parameter group already: compiling them saved nothing
measurable and cost seconds of compilation). Under bfloat16 (``device.precision``) the function compiled
is the minibatch step inside its autocast region (:meth:`ppo.precision.Precision.autocast_each_call`).
Compiling costs about 4 s with a warm cache and half a minute with a cold one, which a short run never
wins back: ``auto`` compiles only long runs.

Inductor caches what it compiled in ``$TORCHINDUCTOR_CACHE_DIR``. Torch's default is
``/tmp/torchinductor_$USER``, which a reboot or the end of a cluster job wipes; a run that compiles
points it at ``~/.cache/ppo/inductor`` unless the user set it, before torch reads it (the trainer
calls :func:`compile_if_it_pays` before it builds the optimizer, which may read it), so later runs
and every job of a sweep start warm.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Callable

import torch

from ppo.config import Config

log = logging.getLogger(__name__)

INDUCTOR_CACHE_DIR = Path.home() / ".cache" / "ppo" / "inductor"

AUTO_MIN_MINIBATCH_STEPS = 200_000
"""``device.compile=auto`` compiles a run whose config implies at least this many minibatch steps.

The crossover is compilation time / wall time saved per minibatch step. ``python -m
benchmarks.benchmark --crossover`` measures both with the trainer's own update; two measurements on a
2-core AMD EPYC CPU with one torch thread, with other jobs running beside them:

==========================================  ===========  ================  ======================
setting                                     compile (s)  saving per step   crossover (steps)
                                            cold / warm  (ms, of 1.8-4.3)  cold / warm
==========================================  ===========  ================  ======================
experiment=rl_zoo (64x64 tanh, batch 256)   33-34 / 4    0.05-0.51         65k-70k / 11k-77k
experiment=tutorial (256x256 relu, batch 5) 34-36 / 4    -0.07-0.10        865k / 38k, or never
half_cheetah_tuned (256x256 relu, batch 64) 33-34 / 4    0.02-0.40         82k-1.8M / 12k
==========================================  ===========  ================  ======================

The saving is at most a fifth of a step and often within the noise: on a CPU, compiling fuses the
elementwise ops but the matmuls, autograd's bookkeeping and Adam cost what they did. So the threshold
sits well above the warm crossovers and at or above most cold ones: a run compiles only when
compiling pays even from a cold cache. The default CartPole run (2,344 steps) and RL Zoo's CartPole
settings (7,820 over 100k env steps) stay eager; a 1M-step run of RL Zoo's MuJoCo settings (312,640)
compiles. On a GPU, where each op costs a kernel launch, compiling would pay sooner (not measured)."""


def minibatch_steps(config: Config) -> int:
    """Gradient steps that ``config`` implies over its whole budget: updates x epochs x minibatches."""
    rollout_size = config.rollout_size
    n_updates = math.ceil(config.train.total_timesteps / rollout_size)
    return n_updates * config.agent.n_epochs * math.ceil(rollout_size / config.agent.batch_size)


def compiles(config: Config) -> bool:
    """Whether ``config`` asks for the compiled update: ``on``, or ``auto`` for a long enough run."""
    if config.device.compile == "auto":
        return minibatch_steps(config) >= AUTO_MIN_MINIBATCH_STEPS
    return config.device.compile == "on"


def compile_if_it_pays(function: Callable, config: Config) -> Callable:
    """``function`` compiled when :func:`compiles` says so (falling back to ``function`` itself if
    compilation fails), else ``function``."""
    if not compiles(config):
        return function
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(INDUCTOR_CACHE_DIR))
    log.info("Compiling the update's minibatch step (device.compile=%s, %d minibatch steps; cache: %s)",
             config.device.compile, minibatch_steps(config), os.environ["TORCHINDUCTOR_CACHE_DIR"])
    return CompiledWithFallback(function)


class CompiledWithFallback:
    """``torch.compile(function)`` that turns into ``function`` for good, after one warning line, the
    first time compiling raises (no C++ compiler, an op inductor cannot lower, ...). ``function`` must
    be free of side effects, so that calling it again after a failed compiled call is safe.

    ``dynamic=True``: the minibatches' size changes from update to update (next-step autoreset's reset
    steps are left out, and the last minibatch of an epoch may be one short), and one graph with a
    symbolic batch size compiles once where specialized graphs would compile twice."""

    def __init__(self, function: Callable):
        self.function = function
        self.compiled = torch.compile(function, dynamic=True)
        self.failed = False

    def __call__(self, *args, **kwargs):
        if not self.failed:
            try:
                return self.compiled(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - any failure of the compiler; eager raises real errors again
                self.failed = True
                first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
                log.warning("device.compile: compiling failed (%s: %s); training uncompiled",
                            type(err).__name__, first_line[:200])
        return self.function(*args, **kwargs)
