"""Your own env through gymnasium's ``module:EnvId``: ``env.id=corridor_envs:Corridor-v0`` imports
``corridor_envs``, which registers ``Corridor-v0``, in every process that reads the id: training,
``ppo.evaluate``, resuming and a sweep's workers, each a fresh process through the real command line.
The module is written into a tmp dir that PYTHONPATH names, as a user's module would sit in theirs."""

from __future__ import annotations

import importlib
import json
import os
import shutil

import pytest

from conftest import make_config, require_modules, run_cli
from ppo.envs import make_envs, solved_score
from ppo.errors import ConfigError

CORRIDOR_MODULE = '''
import gymnasium as gym
import numpy as np


class Corridor(gym.Env):
    """Cells 0..length, the agent's cell one-hot; actions 0 (left) and 1 (right); reward 1 on reaching
    the last cell, which ends the episode. A greedy policy scores 1 only if it goes right in every cell.
    Rendered as a row of pixels, the agent's white."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, length=10, render_mode=None):
        self.length = length
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(0.0, 1.0, (length + 1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = 0
        return np.eye(self.length + 1, dtype=np.float32)[self.position], {}

    def step(self, action):
        self.position = max(0, self.position + (1 if action == 1 else -1))
        at_goal = self.position == self.length
        return np.eye(self.length + 1, dtype=np.float32)[self.position], float(at_goal), at_goal, False, {}

    def render(self):
        frame = np.zeros((1, self.length + 1, 3), np.uint8)
        frame[0, self.position] = 255
        return frame


gym.register("Corridor-v0", entry_point=Corridor, max_episode_steps=50, reward_threshold=1.0)
'''

ENV_ID = "corridor_envs:Corridor-v0"
# 10 cells learnt in 16 rollouts: the greedy policy reached the goal for each of seeds 1-30 (after one rollout:
# 1 seed in 10), at about 0.4 s of training.
TRAIN = ["train.total_timesteps=8192", "train.progress=false"]


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory):
    """A dir holding ``corridor_envs.py``, and ``broken_envs.py``, which fails while it is imported."""
    path = tmp_path_factory.mktemp("own_envs")
    (path / "corridor_envs.py").write_text(CORRIDOR_MODULE)
    (path / "broken_envs.py").write_text("raise RuntimeError('no corridor today')\n")
    return path


def put_on_path(module_dir, monkeypatch) -> None:
    """Make the env modules importable by the CLI's subprocesses (PYTHONPATH) and by this process (sys.path)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(module_dir), os.environ.get("PYTHONPATH")])))
    monkeypatch.syspath_prepend(str(module_dir))


@pytest.fixture
def on_path(module_dir, monkeypatch):
    put_on_path(module_dir, monkeypatch)


@pytest.fixture(scope="module")
def trained_run(module_dir, tmp_path_factory):
    """A CLI run on the corridor: its run dir and the subprocess's result."""
    tmp_path = tmp_path_factory.mktemp("trained")
    run_dir = tmp_path / "run"
    with pytest.MonkeyPatch.context() as monkeypatch:
        put_on_path(module_dir, monkeypatch)
        result = run_cli(tmp_path, f"env.id={ENV_ID}", *TRAIN, f"hydra.run.dir={run_dir}")
    return run_dir, result


def read_metrics(run_dir) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.slow
def test_own_env_trains_to_its_best_score_and_evaluates_in_a_fresh_process(trained_run, on_path):
    """The greedy policy walks straight to the goal (return 1, the most there is); gymnasium's
    reward_threshold of the id is the solved score; ppo.evaluate replays the final evaluation."""
    run_dir, result = trained_run
    assert result.returncode == 0, result.stderr
    metrics = read_metrics(run_dir)
    assert metrics["final_score"] == 1.0 and metrics["final_score_std"] == 0.0
    assert metrics["solved_score"] == 1.0
    evaluation = run_cli(run_dir.parent, str(run_dir), module="ppo.evaluate")
    assert evaluation.returncode == 0, evaluation.stderr
    assert evaluation.stdout.startswith(f"{ENV_ID}: 1.0 ± 0.0 over 10 greedy episodes")


@pytest.mark.slow
def test_own_env_video_from_a_fresh_process(trained_run, on_path, tmp_path):
    """The render env goes through the id's module too; the file name keeps no ':'."""
    require_modules("moviepy", extras="video")
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run[0], run_dir)
    result = run_cli(tmp_path, str(run_dir), "video=true", module="ppo.evaluate")
    assert result.returncode == 0, result.stderr
    assert (run_dir / "videos" / "corridor_envs-Corridor-v0-step8192-seed1000001.mp4").is_file()


@pytest.mark.slow
def test_own_env_run_resumes_with_a_larger_budget(trained_run, on_path, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run[0], run_dir)
    result = run_cli(tmp_path, f"resume={run_dir}", "train.total_timesteps=16384")
    assert result.returncode == 0, result.stderr
    metrics = read_metrics(run_dir)
    assert metrics["global_step"] == 16384 and metrics["final_score"] == 1.0


@pytest.mark.slow
def test_own_env_sweeps_through_joblib_workers(on_path, tmp_path):
    """The joblib launcher's workers are fresh processes: each imports the module to check the config."""
    require_modules("hydra_plugins.hydra_joblib_launcher")
    sweep_dir = tmp_path / "sweep"
    result = run_cli(tmp_path, "-m", "hydra/launcher=joblib", f"env.id={ENV_ID}", "seed=1,2", *TRAIN,
                     f"hydra.sweep.dir={sweep_dir}", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    for seed in (1, 2):
        assert read_metrics(sweep_dir / f"seed={seed}")["final_score"] == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("env_id, message", [
    ("corridor_envz:Corridor-v0",
     "cannot import module 'corridor_envz' (No module named 'corridor_envz')"),
    ("broken_envs:Corridor-v0",
     "cannot import module 'broken_envs' (RuntimeError: no corridor today)"),
    ("corridor_envs:Corridr-v0",
     "module 'corridor_envs' registers Corridor-v0, not Corridr-v0"),
])
def test_unimportable_module_or_unregistered_id_is_one_line_and_exit_2(on_path, tmp_path, env_id, message):
    """The message names the module and its import error, or the ids that importing the module registered."""
    run_dir = tmp_path / "run"
    result = run_cli(tmp_path, f"env.id={env_id}", f"hydra.run.dir={run_dir}")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [f"error: env.id={env_id!r} is not allowed: {message}"]
    assert not (run_dir / "checkpoints").exists()


def test_env_kwargs_reach_the_constructor_of_an_own_env(on_path):
    """``env.kwargs={length:3}``: 4 cells, and three steps right reach the goal."""
    config = make_config([f"env.id={ENV_ID}", "env.kwargs={length:3}"])
    envs = make_envs(config.env, num_envs=1)
    try:
        assert envs.single_observation_space.shape == (4,)
        envs.reset(seed=0)
        for _ in range(3):
            _, reward, terminated, _, _ = envs.step([1])
        assert reward[0] == 1.0 and terminated[0]
    finally:
        envs.close()
    assert solved_score(config.env) == 1.0
    with pytest.raises(ConfigError, match=rf"^env.kwargs=\{{'lenght': 3\}} is not allowed: .*; {ENV_ID} takes "
                                          r"length, render_mode$"):
        make_envs(make_config([f"env.id={ENV_ID}", "env.kwargs={lenght:3}"]).env)


@pytest.mark.parametrize("vectorization", ["sync", "async"])
def test_own_env_in_sync_and_async_vector_envs(on_path, vectorization):
    envs = make_envs(make_config([f"env.id={ENV_ID}", f"env.vectorization={vectorization}"]).env, num_envs=2)
    try:
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (2, 11) and obs[:, 0].all()
    finally:
        envs.close()


def test_native_vector_env_of_a_module_id():
    """``gymnasium.envs.classic_control:CartPole-v1`` is CartPole-v1 with its native vector env."""
    from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

    config = make_config(["env.id=gymnasium.envs.classic_control:CartPole-v1"])
    envs = make_envs(config.env, num_envs=2)
    try:
        assert isinstance(envs.unwrapped, CartPoleVectorEnv)
    finally:
        envs.close()
    assert solved_score(config.env) == 475.0


def test_id_of_a_module_imported_before_the_check_gets_close_matches(module_dir, on_path):
    """What a module registered is known only when ppo imported it; imported before, the message
    suggests close matches from the whole registry."""
    (module_dir / "early_envs.py").write_text(CORRIDOR_MODULE.replace("Corridor-v0", "EarlyCorridor-v0"))
    importlib.import_module("early_envs")
    with pytest.raises(ConfigError, match=r"^env.id='early_envs:EarlyCoridor-v0' is not allowed: module "
                                          r"'early_envs' is imported, but EarlyCoridor-v0 is not registered; "
                                          r"did you mean EarlyCorridor-v0"):
        make_config(["env.id=early_envs:EarlyCoridor-v0"])
