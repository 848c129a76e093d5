"""benchmarks/suite.py's table: our scores over seeds beside RL Zoo's, from finished run dirs."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

SUITE = Path(__file__).resolve().parents[1] / "benchmarks" / "suite.py"


@pytest.fixture(scope="module")
def suite():
    """benchmarks/suite.py as a module (benchmarks/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("suite", SUITE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["suite"] = module  # its dataclasses look their module up while it loads
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["suite"]
    return module


def fake_run(out: Path, env: str, seed: int, mean: float, std: float, best_mean: float | None) -> None:
    """A finished run dir as the CLI leaves it: .hydra/config.yaml and metrics.json."""
    run_dir = out / env / f"seed_{seed}"
    (run_dir / ".hydra").mkdir(parents=True)
    config = {"env": {"id": "Pendulum-v1", "solved_score": -200.0},
              "train": {"total_timesteps": 100_000, "eval_episodes": 20}}
    OmegaConf.save(OmegaConf.create(config), run_dir / ".hydra" / "config.yaml")
    (run_dir / "metrics.json").write_text(json.dumps({
        "final_score": mean, "final_score_std": std, "best_mean_score_100": best_mean, "train_seconds": 30.0}))


def test_the_table_pools_seeds_and_stands_beside_rl_zoo(tmp_path, suite):
    """Two seeds scoring -150 ± 30 and -250 ± 40 over 20 episodes each: mean -200, std over seeds
    70.7 (sample std of the two means), all 40 episodes pooled sqrt((30² + 40²)/2 + 50²) = 61.2;
    one seed reaches the solved score -200 (the other is below); RL Zoo's Pendulum row beside it."""
    fake_run(tmp_path, "pendulum", 1, -150.0, 30.0, -190.0)
    fake_run(tmp_path, "pendulum", 2, -250.0, 40.0, None)  # fewer than 100 training episodes
    table = suite.write_report(tmp_path, ["pendulum", "cartpole"], [1, 2])
    row = next(line for line in table.splitlines() if line.startswith("| Pendulum-v1"))
    assert "-200.0 ± 70.7 (2 seeds)" in row
    assert f"-200.0 ± {math.sqrt((30**2 + 40**2) / 2 + 50**2):.1f} (40 episodes)" in row
    assert "1/2 (≥ -200)" in row and "| -190.0 |" in row
    assert "-172.2 ± 104.2 (Pendulum-v1, 100,000 steps)" in row
    assert "CartPole" not in table  # no finished run: no row
    assert "0088472b8cb622732bdbc4aa3d0d0abde86c67ed" in table
    assert (tmp_path / "suite.csv").read_text().count("\n") == 2
