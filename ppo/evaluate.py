"""``python -m ppo.evaluate <run dir> [episodes=N] [checkpoint=PATH] [seed=S]``: greedy episodes of a
trained policy, reported as mean ± std.

The env and network come from the run's config (``<run dir>/.hydra/config.yaml``, else the one saved
in its checkpoint); the weights from ``checkpoint`` (default ``<run dir>/checkpoints/last.pt``). The
default seed is the one of the run's own final evaluation, so that with the run's number of episodes
this prints the ``final_score`` of its ``metrics.json``. A missing or corrupt checkpoint, or one of
another env or network shape, is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from ppo.config import Config, ConfigError, EnvConfig, to_config
from ppo.envs import make_envs

EVAL_SEED_OFFSET = 1_000_000  # the greedy evaluation's envs are seeded with seed + this

OPTIONS = {"episodes": int, "checkpoint": str, "seed": int}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ppo.evaluate", description="Play greedy episodes with a trained policy.",
        epilog="options: episodes=N (default: the run's train.eval_episodes, else 10), checkpoint=PATH "
               "(default: <run dir>/checkpoints/last.pt), seed=S (default: the run's seed + 1000000, as its "
               "final evaluation)")
    parser.add_argument("run_dir", help="a run directory (or a checkpoint file)")
    parser.add_argument("options", nargs="*", default=[], metavar="key=value")
    args = parser.parse_args(argv)
    try:
        options = parse_options(args.options)
        evaluation = evaluate_run(args.run_dir, **options)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    scores = evaluation["scores"]
    print(f"{evaluation['env_id']}: {scores.mean():.1f} ± {scores.std():.1f} over {len(scores)} greedy episodes "
          f"(checkpoint {evaluation['checkpoint']}: update {evaluation['update']}, env step {evaluation['global_step']})")
    return 0


def parse_options(options: list[str]) -> dict[str, int | str]:
    """``["episodes=5", "seed=3"]`` -> ``{"episodes": 5, "seed": 3}``; anything else is a ConfigError."""
    parsed: dict[str, int | str] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key not in OPTIONS:
            raise ConfigError(f"{option!r} is not an option; expected {', '.join(f'{k}=...' for k in OPTIONS)}")
        if OPTIONS[key] is int:
            try:
                parsed[key] = int(value)
            except ValueError:
                raise ConfigError(f"{key}={value!r} is not allowed: an integer") from None
        else:
            parsed[key] = value
    if "episodes" in parsed and parsed["episodes"] < 1:
        raise ConfigError(f"episodes={parsed['episodes']} is not allowed: an integer >= 1")
    if "seed" in parsed and not 0 <= parsed["seed"] < 2**32:
        raise ConfigError(f"seed={parsed['seed']} is not allowed: an integer in [0, 2**32)")
    return parsed


def evaluate_run(run_dir: str | Path, episodes: int | None = None, checkpoint: str | Path | None = None,
                 seed: int | None = None) -> dict:
    """Scores of ``episodes`` greedy episodes of the run's policy, with what was evaluated:
    ``{"scores", "env_id", "checkpoint", "update", "global_step"}``. Raises :class:`ConfigError`."""
    from ppo.checkpoint import checkpoint_path, load_checkpoint, policy_from_checkpoint  # torch

    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ConfigError(f"run_dir={str(run_dir)!r} is not allowed: no such run directory or checkpoint")
    path = checkpoint_path(checkpoint if checkpoint is not None else run_dir)
    config = run_config(run_dir)  # None: the checkpoint's own config
    state = load_checkpoint(path)
    policy, config = policy_from_checkpoint(state, str(path), config=config)
    episodes = episodes or config.train.eval_episodes or 10
    seed = config.seed + EVAL_SEED_OFFSET if seed is None else seed
    return {"scores": evaluate(policy, config.env, episodes, seed=seed), "env_id": config.env.id,
            "checkpoint": str(path), "update": state["update"], "global_step": state["global_step"]}


def evaluate(policy, env: EnvConfig, episodes: int, seed: int) -> np.ndarray:
    """Scores of ``episodes`` greedy episodes of ``policy`` (a :class:`ppo.networks.Policy`: the most
    likely action, or the Gaussian's mean), one per sub-env of a fresh vector env."""
    if episodes == 0:
        return np.zeros(0)
    envs = make_envs(env, num_envs=episodes)
    try:
        next_obs, _ = envs.reset(seed=seed)
        scores = np.zeros(episodes)
        running = np.ones(episodes, dtype=bool)
        while running.any():
            next_obs, reward, term, trunc, _ = envs.step(policy(next_obs))
            scores += reward * running
            running &= ~(term | trunc)
    finally:
        envs.close()
    return scores


def run_config(run_dir: Path) -> Config | None:
    """The config a run dir records in ``.hydra/config.yaml``; None where there is none (a run made by
    :func:`ppo.train.train` from Python, or a checkpoint file)."""
    path = run_dir / ".hydra" / "config.yaml"
    if not path.is_file():
        return None
    try:
        cfg = OmegaConf.load(path)
    except Exception as err:  # a hand-edited file that is no longer YAML
        raise ConfigError(f"run_dir={str(run_dir)!r} is not allowed: unreadable .hydra/config.yaml ({err})") from None
    return to_config(cfg)


if __name__ == "__main__":
    sys.exit(main())
