"""Stopping and resuming: SIGTERM, SIGINT and SIGKILL in the middle of a run, ``resume=<run dir>``,
the TensorBoard step axis across the stop, exact restoration of the training state, and the
divergence guard.

Envs cannot be checkpointed in general: a resumed run resets them (episodes in progress restart),
so on CartPole the losses after a resume differ from an uninterrupted run's. On the toy env below,
whose rollouts end exactly at episode boundaries, the env state at a rollout boundary is the state
after a reset, and a resumed run must then reproduce an uninterrupted one number for number.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

import ppo.state
from conftest import TERMINATE_ID, read_scalars
from ppo.checkpoint import load_checkpoint
from ppo.config import AgentConfig, Config, EnvConfig, NetworkConfig, TrainConfig
from ppo.errors import ConfigError, TrainingDiverged
from ppo.progress import Progress
from ppo.envs import make_envs
from ppo.state import TrainingState
from ppo.train import train

TIMING_TAGS = {"time/steps_per_second"}


# ---------------------------------------------------------------------------------------------
# The real command line
# ---------------------------------------------------------------------------------------------

CARTPOLE = ["env.num_envs=8", "train.total_timesteps=20480", "train.eval_episodes=2"]  # 80 updates of 32 x 8 steps
ROLLOUT = 256


def start(cwd, *overrides, new_session=False):
    """``python -m ppo.run`` in the background, its progress lines (one per tenth) on stderr."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.Popen([sys.executable, "-m", "ppo.run", *overrides], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=new_session)


def wait_for_progress(process, percent):
    """Read the run's log on stdout until its progress line reaches ``percent``."""
    for line in process.stdout:
        if f"{percent:3d}%" in line:
            return
    raise AssertionError(f"the run ended before {percent}%: {process.communicate()}")


def run(cwd, *overrides):
    process = start(cwd, *overrides)
    out, err = process.communicate(timeout=120)
    return process.returncode, out + err


def loss_steps(scalars):
    return [step for step, _ in scalars["loss/total"]]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The CartPole run that the stopped ones are compared with: (run dir, scalars)."""
    tmp_path = tmp_path_factory.mktemp("uninterrupted")
    status, output = run(tmp_path, *CARTPOLE, "train.progress=false", f"hydra.run.dir={tmp_path / 'run'}")
    assert status == 0, output
    return tmp_path / "run", read_scalars(tmp_path / "run")


def assert_continues_the_step_axis(scalars, reference, checkpoint_step):
    """The stopped-and-resumed run's TensorBoard view: each per-update tag on the same step grid as
    the uninterrupted run (no point duplicated or missing); everything up to the checkpoint identical
    to it (same seed); episode points in step order."""
    for tag, points in reference.items():
        if tag in TIMING_TAGS:
            continue
        steps = [step for step, _ in scalars[tag]]
        assert steps == sorted(steps), tag
        if tag.startswith(("loss/", "diagnostics/")) or tag == "episode/mean_score_100":
            assert steps == [step for step, _ in points], tag
        before = [point for point in scalars[tag] if point[0] <= checkpoint_step]
        assert before == [point for point in points if point[0] <= checkpoint_step], tag


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_resume_finishes_the_budget(tmp_path, uninterrupted):
    """SIGTERM mid-run: exit status 143, a message saying how to resume, a checkpoint at the stop.
    resume=<run dir> then ends at the uninterrupted run's step count with a continuous step axis, in
    the same run dir, leaving no second run dir behind."""
    reference_dir, reference = uninterrupted
    run_dir = tmp_path / "run"
    process = start(tmp_path, *CARTPOLE, f"hydra.run.dir={run_dir}")
    wait_for_progress(process, 20)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, out + err
    assert f"Resume with: python -m ppo.run resume={run_dir}" in out + err
    assert "Traceback" not in out + err
    saved = load_checkpoint(run_dir)
    assert 0 < saved["global_step"] < 20480 and not saved["finished"]
    assert not (run_dir / "metrics.json").exists()

    status, output = run(tmp_path, f"resume={run_dir}")
    assert status == 0, output
    assert not (tmp_path / "outputs").exists()
    assert load_checkpoint(run_dir)["global_step"] == load_checkpoint(reference_dir)["global_step"] == 20480
    assert_continues_the_step_axis(read_scalars(run_dir), reference, saved["global_step"])
    assert "Resuming" in (run_dir / "run.log").read_text()  # the resumed run logs into the same file


@pytest.mark.slow
def test_sigkill_loses_only_the_work_since_the_last_checkpoint(tmp_path, uninterrupted):
    """kill -9 between two checkpoints (every 5 updates): resume continues from the last checkpoint;
    the points the killed run logged after it are hidden (purge_step), so the axis stays continuous."""
    _, reference = uninterrupted
    run_dir = tmp_path / "run"
    process = start(tmp_path, *CARTPOLE, "train.checkpoint_every=5", f"hydra.run.dir={run_dir}")
    wait_for_progress(process, 30)
    process.kill()
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    saved = load_checkpoint(run_dir)
    assert saved["update"] % 5 == 0 and saved["update"] >= 5 and not saved["finished"]

    status, output = run(tmp_path, f"resume={run_dir}", "train.progress=false")
    assert status == 0, output
    assert_continues_the_step_axis(read_scalars(run_dir), reference, saved["global_step"])


@pytest.mark.slow
def test_ctrl_c_in_a_terminal_stops_async_envs_cleanly(tmp_path):
    """Ctrl-C reaches the whole process group, env worker processes included: the workers ignore it,
    the trainer stops after the update with a checkpoint (exit 130), and the run resumes. Long
    rollouts and one short epoch: the signal lands while the workers are stepping."""
    run_dir = tmp_path / "run"
    overrides = ["env.vectorization=async", "env.num_envs=2", "agent.n_steps=512", "agent.n_epochs=1",
                 "agent.batch_size=1024", "train.total_timesteps=10240", "train.eval_episodes=1"]
    process = start(tmp_path, *overrides, f"hydra.run.dir={run_dir}", new_session=True)
    wait_for_progress(process, 20)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGINT, out + err
    assert "Traceback" not in out + err and "Resume with" in out + err
    status, output = run(tmp_path, f"resume={run_dir}", "train.progress=false")
    assert status == 0, output
    assert loss_steps(read_scalars(run_dir)) == list(range(1024, 10240 + 1, 1024))


@pytest.mark.slow
def test_resume_with_a_larger_budget_trains_on(tmp_path):
    """A finished run resumed with a larger train.total_timesteps continues to the new budget and
    records it in its checkpoint; .hydra/config.yaml keeps the first command's config."""
    from omegaconf import OmegaConf

    run_dir = tmp_path / "run"
    status, output = run(tmp_path, "env.num_envs=8", "train.total_timesteps=512", "train.eval_episodes=1",
                         "train.progress=false", f"hydra.run.dir={run_dir}")  # rollouts of 32 x 8 = 256 steps
    assert status == 0, output
    status, output = run(tmp_path, f"resume={run_dir}", "train.total_timesteps=1024")
    assert status == 0, output
    assert loss_steps(read_scalars(run_dir)) == [256, 512, 768, 1024]
    assert load_checkpoint(run_dir)["config"]["train"]["total_timesteps"] == 1024
    assert OmegaConf.load(run_dir / ".hydra" / "config.yaml").train.total_timesteps == 512  # the first command's


@pytest.mark.slow
def test_diverging_run_is_one_line_exit_3(tmp_path):
    """An absurd learning rate makes the losses NaN: the CLI names the update, exits 3 (a failing
    status a sweep records), prints no traceback and keeps the run dir with its logs."""
    run_dir = tmp_path / "run"
    status, output = run(tmp_path, "agent.lr=1e30", "env.num_envs=8", "train.progress=false", f"hydra.run.dir={run_dir}")
    assert status == 3, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "training diverged at update 1 (env step 256)" in lines[0], output
    assert "no checkpoint was written" in lines[0]
    assert run_dir.is_dir() and not (run_dir / "metrics.json").exists()


# ---------------------------------------------------------------------------------------------
# train() in this process
# ---------------------------------------------------------------------------------------------


def toy_config(total=96, checkpoint_every=1, env_id=TERMINATE_ID, normalize=False) -> Config:
    """The 3-step toy env in next-step mode: an episode takes 4 vector steps (3 and the reset step),
    so 4-step rollouts start right after a reset. 12 updates of 4 x 2 steps; lr annealed;
    ``normalize``: observations and rewards normalized."""
    return Config(
        agent=AgentConfig(n_steps=4, batch_size=4, n_epochs=2, lr=0.01, anneal_lr=True),
        network=NetworkConfig(hidden_sizes=[8]),
        env=EnvConfig(id=env_id, num_envs=2, vectorization="sync", normalize_observations=normalize,
                      normalize_rewards=normalize),
        train=TrainConfig(total_timesteps=total, eval_episodes=2, checkpoint_every=checkpoint_every, progress=False),
        seed=3,
    )


def stop_at(monkeypatch, step, signum=signal.SIGTERM):
    """Send this process ``signum`` when the loop reports ``step`` (from its progress hook)."""
    def update(self, global_step, mean_score):
        if global_step == step:
            signal.raise_signal(signum)

    monkeypatch.setattr(Progress, "update", update)


def without_timing(scalars):
    return {tag: points for tag, points in scalars.items() if tag not in TIMING_TAGS}


@pytest.fixture(scope="module", params=[False, True], ids=["raw", "normalized"])
def toy_reference(request, tmp_path_factory):
    """The uninterrupted toy run, without and with normalization: (run dir, metrics, scalars, normalize)."""
    run_dir = tmp_path_factory.mktemp("toy")
    metrics = train(toy_config(normalize=request.param), run_dir)
    return run_dir, metrics, read_scalars(run_dir), request.param


def test_sigterm_in_train_returns_interrupted_with_a_checkpoint(tmp_path, monkeypatch):
    """SIGTERM during update 5: train() finishes that update, saves a checkpoint, returns
    interrupted without evaluating, and puts the previous signal handler back."""
    before = signal.getsignal(signal.SIGTERM)
    stop_at(monkeypatch, 5 * 8)
    metrics = train(toy_config(checkpoint_every=0), tmp_path)
    assert metrics == {"interrupted": "SIGTERM", "global_step": 40, "update": 5}
    assert signal.getsignal(signal.SIGTERM) is before
    saved = load_checkpoint(tmp_path)
    assert (saved["update"], saved["global_step"], saved["finished"]) == (5, 40, False)
    assert not (tmp_path / "metrics.json").exists()


def test_resume_after_sigterm_reproduces_the_uninterrupted_run_exactly(tmp_path, monkeypatch, toy_reference):
    """Stopped by SIGTERM after update 5 and resumed: every logged loss, diagnostic, episode and the
    final evaluation equal the uninterrupted run's, so the networks, both Adams, the sampling and
    shuffling generator, the lr schedule, the episode statistics and (normalized) the observation
    and return statistics were all restored exactly."""
    _, reference_metrics, reference, normalize = toy_reference
    stop_at(monkeypatch, 5 * 8)
    train(toy_config(normalize=normalize), tmp_path)
    monkeypatch.undo()
    metrics = train(toy_config(normalize=normalize), tmp_path, resume=True)
    assert without_timing(read_scalars(tmp_path)) == without_timing(reference)
    timing = {"train_seconds", "steps_per_second", "seconds_to_solve", "phase_seconds"}
    assert {k: v for k, v in metrics.items() if k not in timing} == \
           {k: v for k, v in reference_metrics.items() if k not in timing}


def test_resume_after_a_crash_purges_the_points_logged_after_the_checkpoint(tmp_path, monkeypatch, toy_reference):
    """A run that crashed after logging past its last checkpoint (here: the reference run, rolled back
    to its update-5 checkpoint) resumes without duplicate points: TensorBoard shows exactly the
    uninterrupted run."""
    reference_dir, _, reference, normalize = toy_reference
    run_dir = tmp_path / "run"
    shutil.copytree(reference_dir, run_dir)
    (run_dir / "metrics.json").unlink()
    snapshot = tmp_path / "update5.pt"
    save = ppo.state.save_checkpoint

    def save_and_snapshot(path, state):  # replay the reference run to grab its update-5 checkpoint
        save(path, state)
        if state["update"] == 5:
            shutil.copy(path, snapshot)

    monkeypatch.setattr(ppo.state, "save_checkpoint", save_and_snapshot)
    train(toy_config(normalize=normalize), tmp_path / "replay")
    shutil.copy(snapshot, run_dir / "checkpoints" / "last.pt")
    monkeypatch.undo()
    train(toy_config(normalize=normalize), run_dir, resume=True)
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 2
    assert without_timing(read_scalars(run_dir)) == without_timing(reference)


def same(a, b) -> bool:
    """Deep equality of checkpoint contents: dicts, lists, tensors and plain values."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and torch.equal(a, b)
    return type(a) is type(b) and a == b


def test_training_state_round_trips_every_field(tmp_path):
    """A checkpoint is TrainingState.state_dict() plus the config and spaces. Every field of it
    differs in a fresh state, and equals the checkpoint's once loaded: nothing a run carries
    between updates is left out of save or restore."""
    config = toy_config(total=64, normalize=True)
    train(config, tmp_path)
    saved = load_checkpoint(tmp_path)
    envs = make_envs(config.env)
    fresh = TrainingState.create(config, envs, torch.device("cpu"))
    envs.close()
    before = fresh.state_dict()
    assert set(before) <= set(saved)
    torch.manual_seed(12345)  # the global RNG is part of the state
    assert [key for key in before if same(before[key], saved[key])] == []
    fresh.load_state_dict(saved, "checkpoint")
    after = fresh.state_dict()
    assert [key for key in after if not same(after[key], saved[key])] == []


def test_two_resumes_from_one_checkpoint_are_identical(tmp_path, monkeypatch):
    """On CartPole (episodes in progress restart with a seed derived from the seed and the update),
    resuming one checkpoint twice gives the same run."""
    from conftest import make_config

    config = make_config(["env.num_envs=8", "train.total_timesteps=2048", "train.eval_episodes=1",
                          "train.progress=false", "train.checkpoint_every=0"])
    stop_at(monkeypatch, 3 * 256)
    train(config, tmp_path / "a")
    monkeypatch.undo()
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    for name in "ab":
        train(config, tmp_path / name, resume=True)
    a, b = (without_timing(read_scalars(tmp_path / name)) for name in "ab")
    assert a == b and loss_steps(a) == list(range(256, 2048 + 1, 256))


class ExplodingRewardEnv(gym.Env):
    """Reward 1 for the first 60 steps of the env's life, then 1e30: the critic's squared error
    overflows float32, as a badly scaled reward would."""

    def __init__(self):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.steps = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        self.steps += 1
        reward = 1.0 if self.steps <= 60 else 1e30
        return np.full(2, self.steps % 2, dtype=np.float32), reward, self.steps % 10 == 0, False, {}


EXPLODING_ID = "TestExplodingReward-v0"
if EXPLODING_ID not in gym.registry:
    gym.register(EXPLODING_ID, entry_point=ExplodingRewardEnv)


def test_divergence_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    """Rewards of 1e30 from each env's step 61 on make the critic loss infinite: step 61 is vector
    step 67 (six reset steps came before it, after steps 10, 20, ..., 60), in update 17 of 4-step
    rollouts. TrainingDiverged names that update and the checkpoint of update 16 (written every
    update), which stays finite and is not overwritten; no metrics.json."""
    with pytest.raises(TrainingDiverged) as err:
        train(toy_config(total=200, env_id=EXPLODING_ID), tmp_path)
    message = str(err.value)
    assert "training diverged at update 17 (env step 136): loss/critic not finite" in message
    assert f"the last good checkpoint is {tmp_path / 'checkpoints' / 'last.pt'} (update 16, env step 128)" in message
    saved = load_checkpoint(tmp_path)
    assert saved["update"] == 16
    assert all(torch.isfinite(t).all() for name in ("actor", "critic") for t in saved[name].values())
    assert not (tmp_path / "metrics.json").exists()


def test_checkpoint_of_another_env_cannot_be_resumed(tmp_path):
    """A checkpoint saved for 1 observation and 2 actions refuses a run whose env differs, naming both."""
    train(toy_config(total=32), tmp_path)
    other = toy_config(total=64, env_id=EXPLODING_ID)  # 2 observations
    with pytest.raises(ConfigError, match=r"saved for 1 observations and Discrete\(2\) actions .* has 2 and Discrete\(2\)"):
        train(other, tmp_path, resume=True)


def test_checkpoint_of_another_network_shape_is_a_clear_error(tmp_path):
    """load_policy with a run config of other hidden sizes names the tensor and both shapes."""
    from ppo.checkpoint import load_policy

    train(toy_config(total=32), tmp_path)
    config = toy_config()
    config.network.hidden_sizes = [16]
    with pytest.raises(ConfigError, match=r"actor body.0.weight has shape \(8, 1\) in the checkpoint, \(16, 1\) here"):
        load_policy(tmp_path, config=config)


def test_a_normalizing_run_cannot_resume_from_a_checkpoint_without_statistics(tmp_path):
    """Resuming a run that normalizes from a checkpoint that holds no statistics would restart them
    silently: a ConfigError names the option instead."""
    from ppo.checkpoint import save_checkpoint

    train(toy_config(total=32, normalize=True), tmp_path)
    state = load_checkpoint(tmp_path)
    state["normalizer"] = {}
    save_checkpoint(tmp_path / "checkpoints" / "last.pt", state)
    with pytest.raises(ConfigError, match="env.normalize_observations"):
        train(toy_config(total=64, normalize=True), tmp_path, resume=True)


def test_a_checkpoint_of_another_format_is_one_clear_error(tmp_path):
    """A checkpoint that lacks fields this version saves (another version's, say) is refused naming
    them, for resume and for loading the policy, instead of a KeyError."""
    from ppo.checkpoint import load_policy, save_checkpoint

    train(toy_config(total=32), tmp_path)
    state = load_checkpoint(tmp_path)
    del state["run_stats"], state["obs_shape"]
    save_checkpoint(tmp_path / "checkpoints" / "last.pt", state)
    with pytest.raises(ConfigError, match="cannot be resumed: it lacks run_stats, obs_shape"):
        train(toy_config(total=64), tmp_path, resume=True)
    with pytest.raises(ConfigError, match="cannot be loaded as a policy: it lacks obs_shape"):
        load_policy(tmp_path)
