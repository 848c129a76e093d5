"""``python -m ppo.evaluate <run dir> [episodes=N] [checkpoint=PATH] [seed=S] [video=true]``: greedy
episodes of a trained policy, reported as mean ± std; ``video=true`` also records one as an mp4 in
``<run dir>/videos`` and into the run's TensorBoard events.

The env and network come from the run's config (``<run dir>/.hydra/config.yaml``, else the one saved
in its checkpoint); the weights from ``checkpoint`` (default ``<run dir>/checkpoints/last.pt``); the
precision from its ``device.precision``, chosen as the run chose it (:mod:`ppo.precision`). The
default seed is the one of the run's own final evaluation, so that with the run's number of episodes
this prints the ``final_score`` of its ``metrics.json``. A missing or corrupt checkpoint, or one of
another env or network shape, is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from ppo.config import Config, EnvConfig, require_seed, to_config
from ppo.errors import ConfigError
from ppo.envs import ATARI_FRAME_SKIP, is_atari, make_envs, make_render_env
from ppo.rundir import CHECKPOINT_FILE

EVAL_SEED_OFFSET = 1_000_000  # the greedy evaluation's envs are seeded with seed + this

OPTIONS = {"episodes": int, "checkpoint": str, "seed": int, "video": bool}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ppo.evaluate", description="Play greedy episodes with a trained policy.",
        epilog="options: episodes=N (default: the run's train.eval_episodes, else 10), checkpoint=PATH "
               "(default: <run dir>/checkpoints/last.pt), seed=S (default: the run's seed + 1000000, as its "
               "final evaluation), video=true (record the first episode as <run dir>/videos/*.mp4 and into "
               "TensorBoard; needs ppo[video])")
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
          f"(checkpoint {evaluation['checkpoint']}: update {evaluation['update']}, "
          f"env step {evaluation['global_step']})")
    if "video" in evaluation:
        print(f"video: {evaluation['video']}")
    return 0


def parse_options(options: list[str]) -> dict[str, int | str]:
    """``["episodes=5", "seed=3"]`` -> ``{"episodes": 5, "seed": 3}``; anything else is a ConfigError."""
    parsed: dict[str, int | str] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key not in OPTIONS:
            raise ConfigError(f"{option!r} is not an option; expected {', '.join(f'{k}=...' for k in OPTIONS)}")
        if OPTIONS[key] is bool:
            if value.lower() not in ("true", "false"):
                raise ConfigError(f"{key}={value!r} is not allowed: true or false")
            parsed[key] = value.lower() == "true"
        elif OPTIONS[key] is int:
            try:
                parsed[key] = int(value)
            except ValueError:
                raise ConfigError(f"{key}={value!r} is not allowed: an integer") from None
        else:
            parsed[key] = value
    if "episodes" in parsed and parsed["episodes"] < 1:
        raise ConfigError(f"episodes={parsed['episodes']} is not allowed: an integer >= 1")
    if "seed" in parsed:
        require_seed(parsed["seed"])
    return parsed


def evaluate_run(run_dir: str | Path, episodes: int | None = None, checkpoint: str | Path | None = None,
                 seed: int | None = None, video: bool = False) -> dict:
    """Scores of ``episodes`` greedy episodes of the run's policy, with what was evaluated:
    ``{"scores", "env_id", "checkpoint", "update", "global_step"}``, and ``"video"``, the mp4 of
    the episode of ``seed`` recorded with ``video=True``. Raises :class:`ConfigError`."""
    if video:
        require_video("video=true")
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
    evaluation = {"scores": evaluate(policy, config.env, episodes, seed=seed), "env_id": config.env.id,
                  "checkpoint": str(path), "update": state["update"], "global_step": state["global_step"]}
    if video:
        from torch.utils.tensorboard import SummaryWriter

        # the run dir, also when given a checkpoint file inside it
        out_dir = run_dir if run_dir.is_dir() else path.parent
        if out_dir.name == CHECKPOINT_FILE.parent.name:
            out_dir = out_dir.parent
        writer = SummaryWriter(str(out_dir))
        try:
            evaluation["video"] = str(record_video(policy, config.env, out_dir / "videos", seed, writer,
                                                   state["global_step"]))
        finally:
            writer.close()
    return evaluation


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


MAX_VIDEO_STEPS = 10_000  # a greedy policy that never ends its episode still gives a finite video
MIN_VIDEO_SIDE = 160  # smaller frames (MinAtar's 10x10) are scaled up by whole pixels to at least this
TENSORBOARD_MAX_SIDE = 160  # TensorBoard's copy is a GIF held in memory: frames at most this large...
TENSORBOARD_MAX_FRAMES = 600  # ...and this many


def require_video(key: str) -> None:
    """Raise :class:`ConfigError` naming ``key`` unless moviepy, which writes the mp4 files and
    TensorBoard's GIFs, is installed: checked before any work, not after training."""
    if importlib.util.find_spec("moviepy") is None:
        raise ConfigError(f'{key} is not available here: it needs moviepy; install it with pip install "ppo[video]"')


def record_video(policy, env: EnvConfig, video_dir: Path, seed: int, writer=None, step: int = 0) -> Path:
    """Play one greedy episode of ``policy`` (a :class:`ppo.networks.Policy`) on ``env``, reset with
    ``seed``, rendering RGB frames: write them to ``video_dir/<env>-step<step>-seed<seed>.mp4`` and,
    given a SummaryWriter, add them to TensorBoard as ``eval/video`` at ``step``. Returns the mp4's path.

    The env is a fresh copy that renders, with the observations of training (Atari's preprocessing
    as gymnasium wrappers), so the episode is the one the policy plays; frames stream to the file,
    and TensorBoard gets a smaller copy (:data:`TENSORBOARD_MAX_SIDE`, :data:`TENSORBOARD_MAX_FRAMES`).
    """
    from moviepy.video.io.ffmpeg_writer import FFMPEG_VideoWriter

    require_video("video=true")
    envs = make_render_env(env)
    # One frame per agent step, in real time: the Atari 2600 draws 60 frames a second, 4 to a step.
    fps = 60 / ATARI_FRAME_SKIP if is_atari(env.id) else envs.envs[0].metadata.get("render_fps") or 30
    video_dir.mkdir(parents=True, exist_ok=True)
    # the '/' of ALE/Pong-v5 would make a subdirectory; Windows refuses the ':' of my_envs:Corridor-v0
    path = video_dir / f"{env.id.replace('/', '-').replace(':', '-')}-step{step}-seed{seed}.mp4"
    writer_mp4 = None
    small_frames = []
    try:
        obs, _ = envs.reset(seed=seed)
        for _ in range(MAX_VIDEO_STEPS):
            frame = _video_frame(envs.render()[0], env.id)
            if writer_mp4 is None:
                writer_mp4 = FFMPEG_VideoWriter(str(path), (frame.shape[1], frame.shape[0]), fps)
            writer_mp4.write_frame(frame)
            if len(small_frames) < TENSORBOARD_MAX_FRAMES:
                stride = -(-max(frame.shape[:2]) // TENSORBOARD_MAX_SIDE)  # ceil
                small_frames.append(frame[::stride, ::stride])
            obs, _, term, trunc, _ = envs.step(policy(obs))
            if term[0] or trunc[0]:
                writer_mp4.write_frame(_video_frame(envs.render()[0], env.id))
                break
    finally:
        envs.close()
        if writer_mp4 is not None:
            writer_mp4.close()
    if writer is not None and small_frames:
        # (N, T, C, H, W) uint8, as add_video takes it
        frames = np.stack(small_frames).transpose(0, 3, 1, 2)[None]
        writer.add_video("eval/video", frames, step, fps=max(1, round(fps)))
    return path


def _video_frame(frame, env_id: str) -> np.ndarray:
    """An env's rendered frame as (H, W, 3) uint8 with even sides (H.264 needs them): floats in [0, 1]
    (MinAtar's) scaled to 0-255, small frames scaled up by whole pixels."""
    if frame is None:
        raise ConfigError(f"video=true is not allowed for env.id={env_id!r}: it renders no rgb_array frames")
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        frame = (np.clip(frame, 0.0, 1.0) * 255).astype(np.uint8)
    scale = -(-MIN_VIDEO_SIDE // min(frame.shape[:2]))  # ceil; 1 for frames of at least MIN_VIDEO_SIDE
    if scale > 1:
        frame = frame.repeat(scale, axis=0).repeat(scale, axis=1)
    return np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)))


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
