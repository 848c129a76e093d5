"""The networks' numerical precision (``device.precision``): float32, or bfloat16 autocast.

Under ``bf16`` the networks' matmuls and convolutions run in bfloat16 through ``torch.autocast``,
entered once around a rollout's acting, once around the values of a rollout and once per minibatch
step (each outermost entry casts the float32 weights again, so never per forward pass). The
networks cast their outputs to float32 (:mod:`ppo.networks`), so the logits, log-probabilities, the
ratio, the values, advantages, returns and every loss term are float32; the weights, Adam's state and
the checkpoints stay float32, and backward passes and optimizer steps run outside autocast.

``auto`` picks bf16 where the hardware runs it natively and it pays for the network:

* natively: a CUDA device that supports bf16, or a CPU whose flags in ``/proc/cpuinfo`` (Linux)
  include ``amx_bf16`` or ``avx512_bf16``. Torch's public API reports CPU capabilities only up to
  AVX-512, so the flags are read directly; anywhere they cannot be read, ``auto`` chooses fp32.
* it pays: :data:`BF16_PAYS`, measured with ``python -m benchmarks.precision --minibatch`` on a 2-core
  AMD EPYC CPU with ``avx512_bf16`` and no AMX, one torch thread, minibatch 256, best of 5 rounds: ms
  per minibatch step (forward, loss, backward, fused Adam) and per acting forward pass of 16
  observations, in the memory format the networks and their rollouts use (:data:`ppo.networks.CHANNELS_LAST`):

==========================  ====================  ====================
network                     fp32: step / acting   bf16: step / acting
==========================  ====================  ====================
mlp (64x64 tanh, separate)  1.15 / 0.034          1.49 / 0.091
minatar_cnn (shared torso)  4.5 / 0.24            3.0 / 0.28
nature_cnn (shared torso)   156 / 3.8             85 / 2.4
==========================  ====================  ====================

For the 64x64 MLP the casts cost more than bfloat16 saves, so ``auto`` keeps MLPs
float32. On a GPU the same table decides (no GPU was at hand to measure). ``bf16`` on hardware without
native bfloat16 runs (torch emulates it), slowly.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

NATIVE_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
"""CPU flags (Linux ``/proc/cpuinfo``) of instructions that compute in bfloat16."""

BF16_PAYS = {"mlp": False, "minatar_cnn": True, "nature_cnn": True}
"""Whether bfloat16 autocast trains ``network.type`` faster than float32 (the table above)."""

CPUINFO = Path("/proc/cpuinfo")


def cpu_flags() -> frozenset[str]:
    """The flags of the CPU's first processor in ``/proc/cpuinfo``; empty where there is none (not Linux)."""
    try:
        lines = CPUINFO.read_text().splitlines()
    except OSError:
        return frozenset()
    flags = next((line for line in lines if line.split(":")[0].strip() == "flags"), "")
    return frozenset(flags.partition(":")[2].split())


def native_bf16(device: torch.device) -> str | None:
    """Why ``device`` computes in bfloat16 natively, in words (``the CPU has avx512_bf16``), or None."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} supports bf16" if torch.cuda.is_bf16_supported() else None
    found = [flag for flag in NATIVE_BF16_CPU_FLAGS if flag in cpu_flags()]
    return f"the CPU has {' and '.join(found)}" if found else None


@dataclass(frozen=True)
class Precision:
    """The precision a run's networks compute in, and why it was chosen."""

    name: str = "fp32"
    """``fp32`` or ``bf16``."""
    reason: str = "the default"
    device_type: str = "cpu"
    """The torch device type that autocast is entered for."""

    @property
    def bf16(self) -> bool:
        return self.name == "bf16"

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context to run the networks' forward passes in: bfloat16 autocast, or nothing for fp32."""
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=torch.bfloat16)

    def acting(self) -> contextlib.AbstractContextManager:
        """The context of a rollout's forward passes, entered once for all of them: no autograd, and
        :meth:`autocast` for bf16. fp32 acts in inference mode, the cheapest per op; bf16 under
        ``no_grad`` instead, because autocast keeps its bfloat16 copies of the weights from one forward
        pass to the next only outside inference mode (the Nature CNN's acting pass of 8 observations:
        1.3 ms against 1.8 ms, which re-casts every weight)."""
        if not self.bf16:
            return torch.inference_mode()
        stack = contextlib.ExitStack()
        stack.enter_context(torch.no_grad())
        stack.enter_context(self.autocast())
        return stack

    def autocast_each_call(self, function: Callable) -> Callable:
        """``function`` entering :meth:`autocast` once per call (``function`` itself for fp32): a
        minibatch's loss, whose backward pass runs after the call, outside autocast."""
        if not self.bf16:
            return function

        @functools.wraps(function)
        def under_autocast(*args, **kwargs):
            with self.autocast():
                return function(*args, **kwargs)

        return under_autocast

    def describe(self) -> str:
        """``precision bf16 (auto: the CPU has avx512_bf16 and bf16 pays for nature_cnn)``."""
        return f"precision {self.name} ({self.reason})"


def choose_precision(requested: str, device: torch.device, network_type: str) -> Precision:
    """The precision of ``device.precision=requested`` (``fp32``, ``bf16`` or ``auto``) for a
    ``network_type`` network on ``device``, with its reason."""
    if requested == "fp32":
        return Precision("fp32", "device.precision=fp32", device.type)
    native = native_bf16(device)
    if requested == "bf16":
        emulated = "" if native else f"; this {device.type} has no native bf16, so it runs emulated, slowly"
        return Precision("bf16", "device.precision=bf16" + emulated, device.type)
    if native is None:
        lacks = ("this GPU does not support bf16" if device.type == "cuda"
                 else "the CPU has neither " + " nor ".join(NATIVE_BF16_CPU_FLAGS))
        return Precision("fp32", f"auto: no native bf16, {lacks}", device.type)
    if not BF16_PAYS.get(network_type, False):
        return Precision("fp32", f"auto: {native}, but bf16 does not pay for {network_type} networks", device.type)
    return Precision("bf16", f"auto: {native} and bf16 pays for {network_type}", device.type)
