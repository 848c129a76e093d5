"""The suite's and the Atari benchmark's tables (our scores over seeds beside RL Zoo's and CleanRL's,
from finished run dirs), and what the suite records in its docs page's data."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from omegaconf import OmegaConf

from benchmarks import atari, pages, suite


def fake_run(out: Path, env: str, seed: int, mean: float, std: float, best_mean: float | None) -> None:
    """A finished run dir as the CLI leaves it: .hydra/config.yaml and metrics.json."""
    run_dir = out / env / f"seed_{seed}"
    (run_dir / ".hydra").mkdir(parents=True)
    config = {"env": {"id": "Pendulum-v1", "solved_score": -200.0},
              "train": {"total_timesteps": 100_000, "eval_episodes": 20}}
    OmegaConf.save(OmegaConf.create(config), run_dir / ".hydra" / "config.yaml")
    (run_dir / "metrics.json").write_text(json.dumps({
        "final_score": mean, "final_score_std": std, "best_mean_score_100": best_mean, "train_seconds": 30.0}))


def test_the_table_pools_seeds_and_stands_beside_rl_zoo(tmp_path):
    """Two seeds scoring -150 ± 30 and -250 ± 40 over 20 episodes each: mean -200, std over seeds
    70.7 (sample std of the two means), all 40 episodes pooled sqrt((30² + 40²)/2 + 50²) = 61.2;
    one seed reaches the solved score -200 (the other is below); RL Zoo's Pendulum row beside it."""
    fake_run(tmp_path, "pendulum", 1, -150.0, 30.0, -190.0)
    fake_run(tmp_path, "pendulum", 2, -250.0, 40.0, None)  # fewer than 100 training episodes
    rows, table = suite.write_report(tmp_path, ["pendulum", "cartpole"], [1, 2])
    assert [row["seed_scores"] for row in rows] == [[-150.0, -250.0]]
    row = next(line for line in table.splitlines() if line.startswith("| Pendulum-v1"))
    assert "-200.0 ± 70.7 (2 seeds)" in row
    assert f"-200.0 ± {math.sqrt((30**2 + 40**2) / 2 + 50**2):.1f} (40 episodes)" in row
    assert "1/2 (≥ -200)" in row and "| -190.0 |" in row
    assert "-172.2 ± 104.2 (Pendulum-v1, 100,000 steps)" in row
    assert "CartPole" not in table  # no finished run: no row
    assert "0088472b8cb622732bdbc4aa3d0d0abde86c67ed" in table
    assert (tmp_path / "suite.csv").read_text().count("\n") == 2


def fake_mujoco_run(out: Path, env: str, env_id: str, seed: int, curve: list[tuple[int, float]],
                    metrics: dict | None) -> None:
    """A MuJoCo run dir: its config (solved_score null: gymnasium's threshold applies), TensorBoard
    events of its 100-episode mean, and metrics.json only if it finished."""
    from torch.utils.tensorboard import SummaryWriter

    run_dir = out / env / f"seed_{seed}"
    (run_dir / ".hydra").mkdir(parents=True)
    config = {"seed": seed, "env": {"id": env_id, "solved_score": None},
              "train": {"total_timesteps": 1_000_000, "eval_episodes": 20}}
    OmegaConf.save(OmegaConf.create(config), run_dir / ".hydra" / "config.yaml")
    with SummaryWriter(str(run_dir)) as writer:
        for step, value in curve:
            writer.add_scalar("episode/mean_score_100", value, step)
    if metrics is not None:
        (run_dir / "metrics.json").write_text(json.dumps(metrics))


def test_the_mujoco_table_reports_unfinished_runs_apart_as_partial(tmp_path):
    """HalfCheetah: seeds 1 and 2 finished at 5000 ± 100 and 4000 ± 100 (one of them at or above
    gymnasium's threshold 4800), seed 3 stopped at step 300,000 with a 100-episode mean of 2,500: the row
    pools seeds 1 and 2 beside RL Zoo's v3 score, and seed 3 is listed below as partial. Hopper has
    only an unfinished run: no row, a partial line, and its panel in the plot."""
    finished = {"best_mean_score_100": 4500.0, "train_seconds": 900.0}
    fake_mujoco_run(tmp_path, "half_cheetah", "HalfCheetah-v5", 1, [(100_000, 1000.0), (1_000_000, 4900.0)],
                    {"final_score": 5000.0, "final_score_std": 100.0, **finished})
    fake_mujoco_run(tmp_path, "half_cheetah", "HalfCheetah-v5", 2, [(100_000, 900.0), (1_000_000, 3900.0)],
                    {"final_score": 4000.0, "final_score_std": 100.0, **finished})
    fake_mujoco_run(tmp_path, "half_cheetah", "HalfCheetah-v5", 3, [(100_000, 800.0), (300_000, 2500.0)], None)
    fake_mujoco_run(tmp_path, "hopper", "Hopper-v5", 1, [(50_000, 300.0), (200_000, 1234.5)], None)
    _, table = suite.write_report(tmp_path, ["half_cheetah", "hopper", "walker2d"], [1, 2, 3])
    row = next(line for line in table.splitlines() if line.startswith("| HalfCheetah-v5"))
    assert "4500.0 ± 707.1 (2 seeds)" in row and "(40 episodes)" in row
    assert "1/2 (≥ 4800)" in row
    assert "5819.1 ± 663.5 (HalfCheetah-v3, 1,000,000 steps)" in row
    assert "- HalfCheetah-v5 seed 3: 2,500.0 at env step 300,000 of 1,000,000" in table
    assert "- Hopper-v5 seed 1: 1,234.5 at env step 200,000 of 1,000,000" in table
    assert not any(line.startswith(("| Hopper", "| Walker2d")) for line in table.splitlines())
    assert (tmp_path / "learning_curves.png").stat().st_size > 0


def test_the_mujoco_suite_runs_one_seed_of_every_env_first_and_resumes_stopped_runs(tmp_path, monkeypatch):
    """``--suite mujoco`` trains its five envs seed by seed; a finished run is skipped, and a run with a
    checkpoint but no metrics.json goes on with ``resume=<run dir>``."""
    commands = []

    def fake_subprocess_run(command, **kwargs):
        commands.append(command[3:])  # after python -m ppo.run
        return suite.subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(suite.subprocess, "run", fake_subprocess_run)
    monkeypatch.setattr(suite.importlib.util, "find_spec", lambda name: object())  # every extra installed
    (tmp_path / "hopper" / "seed_1").mkdir(parents=True)
    (tmp_path / "hopper" / "seed_1" / "metrics.json").write_text("{}")
    (tmp_path / "ant" / "seed_2" / "checkpoints").mkdir(parents=True)
    (tmp_path / "ant" / "seed_2" / "checkpoints" / "last.pt").write_bytes(b"")
    monkeypatch.setattr(suite, "write_report", lambda out, envs, seeds: ([], ""))  # nothing finished: no record
    assert suite.main(["--suite", "mujoco", "--seeds", "1", "2", "--jobs", "1", "--out", str(tmp_path)]) == 0
    started = [(args[0], args[1]) for args in commands]
    assert started == [("experiment=half_cheetah_tuned", "seed=1"), ("experiment=walker2d_tuned", "seed=1"),
                       ("experiment=ant_tuned", "seed=1"), ("experiment=swimmer_tuned", "seed=1"),
                       ("experiment=half_cheetah_tuned", "seed=2"), ("experiment=hopper_tuned", "seed=2"),
                       ("experiment=walker2d_tuned", "seed=2"),
                       (f"resume={tmp_path / 'ant' / 'seed_2'}", "train.progress=false"),
                       ("experiment=swimmer_tuned", "seed=2")]


def test_the_atari_table_reads_our_curve_at_cleanrls_steps(tmp_path):
    """Breakout finished 1M steps, its 100-episode mean 5 at 200k and 21 at 1M: at 0.25M the
    interpolated 6.0 stands beside CleanRL's 6.5, at 1M 21.0 beside 19.5, and its greedy score comes
    from metrics.json. Pong stopped at 400k: its 1M cell is empty and it is marked unfinished."""
    fake_mujoco_run(tmp_path, "breakout", "ALE/Breakout-v5", 1, [(200_000, 5.0), (1_000_000, 21.0)],
                    {"final_score": 31.5, "final_score_std": 4.5, "steps_per_second": 210.0})
    fake_mujoco_run(tmp_path, "pong", "ALE/Pong-v5", 1, [(100_000, -21.0), (400_000, -20.0)], None)
    section = atari.write_report(tmp_path, ["breakout", "pong"], [1], "python -m benchmarks.atari")
    table = (tmp_path / "atari.md").read_text()
    breakout = next(line for line in table.splitlines() if line.startswith("| ALE/Breakout-v5"))
    assert "| 6.0 / 6.5 | 11.0 / 10.9 | 21.0 / 19.5 |" in breakout
    assert "| 31.5 ± 4.5 (20) | 414.7 ± 28.1 | 210 |" in breakout
    pong = next(line for line in table.splitlines() if line.startswith("| ALE/Pong-v5"))
    assert "| — / -8.5 | unfinished (400,000 steps) |" in pong
    assert "fe8d8a03" in table
    assert [run["scores_at"][-1] for run in section["runs"]] == [21.0, None]
    assert (tmp_path / "learning_curves.png").stat().st_size > 0


def test_a_rerun_of_one_env_replaces_its_row_and_keeps_its_command(tmp_path, monkeypatch):
    """``--envs pendulum`` records the Pendulum row with its own command, renders the page with it, and
    leaves the other envs' rows and the section's command as they were."""
    shutil.copytree(pages.DATA, tmp_path / "data")
    monkeypatch.setattr(pages, "DATA", tmp_path / "data")
    monkeypatch.setattr(pages, "DOCS", tmp_path)
    before = pages.load("classic_control")["suite"]
    fake_run(tmp_path / "runs", "pendulum", 1, -150.0, 30.0, -190.0)
    fake_run(tmp_path / "runs", "pendulum", 2, -250.0, 40.0, -180.0)
    rows, _ = suite.write_report(tmp_path / "runs", ["pendulum"], [1, 2])
    suite.record("classic", rows, "python -m benchmarks.suite --envs pendulum --seeds 1 2")
    after = pages.load("classic_control")["suite"]
    assert after["command"] == before["command"]
    assert [row["env"] for row in after["rows"]] == [row["env"] for row in before["rows"]]
    pendulum = next(row for row in after["rows"] if row["env"] == "pendulum")
    assert pendulum["score_mean"] == -200.0 and pendulum["command"].endswith("--envs pendulum --seeds 1 2")
    assert [row for row in after["rows"] if row["env"] != "pendulum"] == \
        [row for row in before["rows"] if row["env"] != "pendulum"]
    page = (tmp_path / "classic_control.md").read_text()
    assert "| Pendulum-v1 | 100,000 | -200.0 ± 70.7 (2 seeds) |" in page
    assert "The Pendulum-v1 row: `python -m benchmarks.suite --envs pendulum --seeds 1 2`" in page
