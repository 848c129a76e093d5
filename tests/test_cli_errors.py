"""Bad inputs on the real command line: every one exits non-zero, prints no traceback and names the key.
A value out of range, or of the wrong type, is one line ``error: key=value is not allowed: ...`` and exit
status 2; a command line Hydra cannot compose (an unknown key or preset, a malformed override) gets
Hydra's own message and exit status 1. Nothing trains: the run directory holds no checkpoint.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from ppo.checkpoint import save_checkpoint

CHECKOUT = os.path.join(os.path.dirname(__file__), os.pardir)


def cli(cwd, module, *args, timeout=120):
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


# (override, what the one-line message must name): one entry per way a command line goes wrong.
BAD_INPUTS = [
    # out of range, one or more per key
    ("agent.policy_clip=0", "agent.policy_clip"),
    ("agent.policy_clip=1.5", "agent.policy_clip"),
    ("agent.gae_lambda=1.1", "agent.gae_lambda"),
    ("agent.gamma=0", "agent.gamma"),
    ("agent.gamma=1.5", "agent.gamma"),
    ("agent.lr=-0.001", "agent.lr"),
    ("agent.lr=inf", "agent.lr"),
    ("agent.batch_size=0", "agent.batch_size"),
    ("agent.batch_size=1000", "agent.batch_size"),  # larger than the rollout memory, 32 x 16 = 512
    ("agent.n_steps=0", "agent.n_steps"),
    ("agent.n_epochs=0", "agent.n_epochs"),
    ("agent.max_grad_norm=-1", "agent.max_grad_norm"),
    ("agent.entropy_coef=-0.1", "agent.entropy_coef"),
    ("network.hidden_sizes=[64,0]", "network.hidden_sizes"),
    ("network.activation=gelu", "network.activation"),
    ("env.num_envs=0", "env.num_envs"),
    ("env.vectorization=threads", "env.vectorization"),
    ("env.clip_observations=0", "env.clip_observations"),
    ("env.clip_rewards=-5", "env.clip_rewards"),
    ("network.log_std_init=inf", "network.log_std_init"),
    ("device.type=tpu", "device.type"),
    ("device.torch_threads=-2", "device.torch_threads"),
    ("train.total_timesteps=0", "train.total_timesteps"),
    ("train.checkpoint_every=-1", "train.checkpoint_every"),
    ("seed=-1", "seed"),
    # wrong types
    ("agent.n_epochs=abc", "agent.n_epochs"),
    ("agent.n_epochs=2.5", "agent.n_epochs"),
    ("seed=null", "seed"),
    ("agent.lr=fast", "agent.lr"),
    ("agent.anneal_lr=maybe", "agent.anneal_lr"),
    ("network.hidden_sizes=[a,b]", "network.hidden_sizes"),
    ("train.total_timesteps=1.5", "train.total_timesteps"),
    # keys that compose but are not in the schema, env ids the registry lacks or the agent cannot handle
    ("+agent.polcy_clip=0.1", "agent.policy_clip"),  # with the close match
    ("train.objective=loss", "train.objective"),
    ("env.id=CartPol-v1", "CartPole-v1"),
    ("env.id=Blackjack-v1", "flat Box observations"),  # a Tuple observation space: not supported
    ("resume=does/not/exist", "resume"),
]

# (override, what Hydra's message must name): command lines Hydra refuses while composing.
UNCOMPOSABLE = [
    ("agent.polcy_clip=0.1", "agent.polcy_clip"),
    ("trian.total_timesteps=5", "trian"),
    ("env=nope", "cartpole"),  # the valid presets are listed
    ("agent=ppo2", "rl_zoo"),
    ("experiment=nope", "tutorial"),
    ("agent.lr=[1,2", "[1,2"),  # not even an override
]


@pytest.mark.slow
@pytest.mark.parametrize("override, named", BAD_INPUTS)
def test_bad_value_is_one_line_and_exit_2(tmp_path, override, named):
    run_dir = tmp_path / "run"
    result = cli(tmp_path, "ppo.run", override, f"hydra.run.dir={run_dir}")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert named in lines[0] and override.lstrip("+").split(".")[0].split("=")[0] in lines[0]
    assert not (run_dir / "checkpoints").exists()


@pytest.mark.slow
@pytest.mark.parametrize("override, named", UNCOMPOSABLE)
def test_uncomposable_command_line_is_hydras_message_and_exit_1(tmp_path, override, named):
    run_dir = tmp_path / "run"
    result = cli(tmp_path, "ppo.run", override, f"hydra.run.dir={run_dir}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert named in result.stderr
    assert not run_dir.exists()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A tiny finished CartPole run made by the CLI: its run dir."""
    tmp_path = tmp_path_factory.mktemp("finished")
    run_dir = tmp_path / "run"
    result = cli(tmp_path, "ppo.run", "train.total_timesteps=256", "train.eval_episodes=1", "train.progress=false",
                 f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr
    return run_dir


def corrupt_run(tmp_path, finished_run, content: bytes):
    """A copy of ``finished_run``'s dir whose checkpoint holds ``content``."""
    import shutil

    run_dir = tmp_path / "corrupt"
    shutil.copytree(finished_run, run_dir)
    (run_dir / "checkpoints" / "last.pt").write_bytes(content)
    return run_dir


RESUME_ERRORS = [
    # (command-line arguments after resume=<run dir>, the checkpoint's content or None to keep it, named)
    ([], b"", "resume"),  # an empty (corrupt) checkpoint
    ([], b"\x80\x02not a checkpoint" * 20, "resume"),
    ([], "delete", "resume"),  # a run dir without a checkpoint
    (["agent.lr=0.1"], None, "agent.lr"),  # a resumed run keeps its config
    (["env=acrobot"], None, "env"),
    (["train.total_timesteps=100"], None, "train.total_timesteps"),  # the budget may only grow
    ([], None, "train.total_timesteps"),  # the run finished: only a larger budget trains it further
]


@pytest.mark.slow
@pytest.mark.parametrize("args, content, named", RESUME_ERRORS)
def test_bad_resume_is_one_line_and_exit_2(tmp_path, finished_run, args, content, named):
    run_dir = finished_run
    if content == "delete":
        run_dir = corrupt_run(tmp_path, finished_run, b"")
        (run_dir / "checkpoints" / "last.pt").unlink()
    elif content is not None:
        run_dir = corrupt_run(tmp_path, finished_run, content)
    def run_files():  # all but Hydra's record of the resuming commands
        return sorted(p.name for p in run_dir.rglob("*") if "resumed" not in p.relative_to(run_dir).parts)

    before = run_files()
    result = cli(tmp_path, "ppo.run", f"resume={run_dir}", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], result.stderr
    assert not (tmp_path / "outputs").exists()  # no new run dir: the command went on in the run's own
    assert run_files() == before  # the run itself untouched


@pytest.mark.slow
def test_evaluate_errors_are_one_line_and_exit_2(tmp_path, finished_run, capsys):
    """ppo.evaluate (its main, in this process): a missing run dir, a corrupt or missing checkpoint,
    a checkpoint of another env, bad options. One subprocess checks the real command's exit status."""
    from ppo.evaluate import main

    other_env = tmp_path / "acrobot.pt"
    state = torch.load(finished_run / "checkpoints" / "last.pt", weights_only=True)
    state["config"]["env"]["id"] = "Acrobot-v1"
    save_checkpoint(other_env, state)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"garbage" * 10)
    cases = [
        ([str(tmp_path / "nope")], "run_dir"),
        ([str(finished_run), f"checkpoint={corrupt}"], "checkpoint"),
        ([str(finished_run), f"checkpoint={tmp_path / 'missing.pt'}"], "checkpoint"),
        ([str(finished_run), f"checkpoint={other_env}"], "Acrobot-v1"),
        ([str(finished_run), "episodes=0"], "episodes"),
        ([str(finished_run), "episodes=many"], "episodes"),
        ([str(finished_run), "epsiodes=3"], "epsiodes"),
    ]
    for args, named in cases:
        assert main(args) == 2, args
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], (args, err)
        assert out == ""
    result = cli(tmp_path, "ppo.evaluate", str(finished_run), f"checkpoint={corrupt}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: checkpoint={str(corrupt)!r} is not allowed: not a "
                                                  "readable checkpoint (refused by the weights-only loader: "
                                                  "Unsupported operand 103)"]


@pytest.mark.slow
def test_evaluate_prints_mean_and_std_of_the_run_final_score(finished_run, capsys):
    """With the run's defaults (its eval episodes and seed) ppo.evaluate replays its final evaluation."""
    import json

    from ppo.evaluate import main

    result = cli(finished_run.parent, "ppo.evaluate", str(finished_run))
    assert result.returncode == 0, result.stderr
    final_score = json.loads((finished_run / "metrics.json").read_text())["final_score"]
    assert result.stdout.startswith(f"CartPole-v1: {final_score:.1f} ± 0.0 over 1 greedy episodes")
    assert main([str(finished_run), "episodes=3", "seed=7"]) == 0
    assert "over 3 greedy episodes" in capsys.readouterr().out
