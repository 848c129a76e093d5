"""Videos of the greedy policy: train.video=true writes an mp4 into the run dir and a clip into
TensorBoard; the frames are those of the episode the policy plays. Skipped without
``pip install -e ".[video]"``, except in CI."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import make_config, require_modules, run_cli

require_modules("moviepy", "pygame", extras="video")

from ppo.config import EnvConfig  # noqa: E402
from ppo.envs import make_render_env  # noqa: E402
from ppo.evaluate import _video_frame, evaluate  # noqa: E402
from ppo.train import train  # noqa: E402


@pytest.mark.slow
def test_train_video_writes_an_mp4_of_the_first_evaluation_episode_and_a_tensorboard_clip(tmp_path):
    import imageio
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = make_config(["train.total_timesteps=512", "train.eval_episodes=2", "train.progress=false",
                          "train.video=true"])
    metrics = train(config, tmp_path)
    (video,) = (tmp_path / "videos").glob("*.mp4")
    assert video.name == "CartPole-v1-step512-seed1000001.mp4"
    # The video's episode is the first evaluation episode (same seed): one frame per step, plus the first.
    from ppo.checkpoint import load_policy

    policy, _ = load_policy(tmp_path)
    first_episode = evaluate(policy, config.env, 1, seed=config.seed + 1_000_000)[0]
    reader = imageio.get_reader(video)
    assert reader.count_frames() == int(first_episode) + 1
    assert reader.get_data(0).shape == (400, 600, 3)
    accumulator = EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    accumulator.Reload()
    (clip,) = accumulator.Images("eval/video")
    assert clip.step == metrics["global_step"] and (clip.width, clip.height) == (150, 100)


def test_small_float_frames_become_even_sized_uint8_rgb():
    """MinAtar renders (10, 10, 3) floats in [0, 1]: scaled to 0-255 and enlarged 16x by whole pixels."""
    frame = np.zeros((10, 10, 3))
    frame[2, 3] = 1.0
    video_frame = _video_frame(frame, "MinAtar/Breakout-v1")
    assert video_frame.shape == (160, 160, 3) and video_frame.dtype == np.uint8
    assert (video_frame[32:48, 48:64] == 255).all() and video_frame.sum() == 255 * 3 * 16 * 16
    assert _video_frame(np.zeros((5, 7, 3), np.uint8), "x").shape[:2] == (160, 224)
    assert _video_frame(np.zeros((401, 600, 3), np.uint8), "x").shape[:2] == (402, 600)


@pytest.mark.slow
def test_recording_a_video_opens_no_sound_device(tmp_path, monkeypatch):
    """pygame initializes SDL's audio as it renders CartPole; on a machine without a sound card, ALSA
    printed a dozen "ALSA lib ... Unknown PCM default" lines on stderr."""
    monkeypatch.delenv("SDL_AUDIODRIVER", raising=False)
    result = run_cli(tmp_path, "train.total_timesteps=512", "train.eval_episodes=1", "train.progress=false",
                     "train.video=true", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 0, result.stderr
    assert list((tmp_path / "run" / "videos").glob("*.mp4"))
    assert not [line for line in result.stderr.splitlines() if "ALSA" in line], result.stderr


def test_render_env_silences_sdl_audio_unless_the_user_chose_a_driver(monkeypatch):
    """SDL_AUDIODRIVER=dummy is set where the render env is made, not when ppo is imported; a driver the
    user set stays."""
    env = {k: v for k, v in os.environ.items() if k != "SDL_AUDIODRIVER"}
    imported = subprocess.run([sys.executable, "-c", "import os, ppo.envs, ppo.evaluate; "
                               "print(os.environ.get('SDL_AUDIODRIVER'))"], env=env, capture_output=True, text=True)
    assert imported.stdout.strip() == "None", imported.stderr
    monkeypatch.setenv("SDL_AUDIODRIVER", "pulseaudio")
    make_render_env(EnvConfig(id="CartPole-v1", num_envs=1)).close()
    assert os.environ["SDL_AUDIODRIVER"] == "pulseaudio"
    monkeypatch.delenv("SDL_AUDIODRIVER")  # setenv above made the end of the test remove the dummy too
    make_render_env(EnvConfig(id="CartPole-v1", num_envs=1)).close()
    assert os.environ["SDL_AUDIODRIVER"] == "dummy"
