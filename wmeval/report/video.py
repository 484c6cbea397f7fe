"""Real | imagined side by side: sample GIFs during training, and `lerobot-eval`-style MP4s of ranked rollouts."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from wmeval.io import atomic_path
from wmeval.report.episodes import REAL, EpisodeView
from wmeval.report.eval_info import file_name

VIDEOS_DIR = "videos"


def side_by_side(real: np.ndarray, imagined: np.ndarray) -> np.ndarray:
    """Float `[N, T, 3, H, W]` pairs -> uint8 frames `[T, N*H, 2*W + 2, 3]` (a white bar between the worlds)."""
    n, t, _, h, w = real.shape
    bar = np.ones((n, t, 3, h, 2), dtype=real.dtype)
    rows = np.concatenate((real, bar, imagined), axis=-1)  # [N, T, 3, H, 2W+2]
    grid = rows.transpose(1, 0, 3, 4, 2).reshape(t, n * h, 2 * w + 2, 3)
    return (np.clip(grid, 0, 1) * 255).round().astype(np.uint8)


def write_side_by_side_gif(
    path: str | Path, real: np.ndarray, imagined: np.ndarray, fps: float = 4.0
) -> Path:
    frames = side_by_side(real, imagined)
    with atomic_path(path) as tmp:
        imageio.mimsave(tmp, list(frames), format="GIF", duration=1000 / fps, loop=0)
    return Path(path)


def _held(frames: np.ndarray, length: int) -> np.ndarray:
    """uint8 `[T, H, W, 3]` -> float `[length, 3, H, W]` in [0, 1], holding the last frame after the end."""
    frames = np.concatenate([frames, np.repeat(frames[-1:], length - len(frames), axis=0)])
    return frames.transpose(0, 3, 1, 2).astype(np.float32) / 255.0


def _write_mp4(path: Path, frames: np.ndarray, fps: float) -> None:
    """uint8 `[T, H, W, 3]` -> H.264 MP4. x264's `ultrafast` preset on one thread: its default preset spends
    about ten times longer per video for a smaller file, which a demo writing dozens of clips cannot afford."""
    import av

    with atomic_path(path) as tmp, av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        stream.height, stream.width = (
            frames.shape[1] - frames.shape[1] % 2,
            frames.shape[2] - frames.shape[2] % 2,
        )
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "threads": "1"}
        for frame in frames[:, : stream.height, : stream.width]:
            container.mux(
                stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24"))
            )
        container.mux(stream.encode())


def write_episode_videos(
    out: Path, views: Iterable[EpisodeView], fps: float
) -> dict[str, dict[str, list[str]]]:
    """`out/videos/<world>/<policy>/episode_<i>.mp4`: the real episode | world's imagined one, per imagined world.

    H.264 (plays anywhere) through PyAV, the library LeRobot encodes its dataset videos with: in process and at
    the frames' own size, where imageio's ffmpeg writer would rescale them to multiples of 16. The shorter
    episode holds its last frame. Returns world -> policy -> paths relative to `out`, for `eval_info`'s
    `video_paths`.
    """
    paths: dict[str, dict[str, list[str]]] = {}
    for view in views:
        real = view.worlds[REAL].frames
        for world, trace in view.worlds.items():
            if world == REAL:
                continue
            length = max(len(real), len(trace.frames))
            frames = side_by_side(_held(real, length)[None], _held(trace.frames, length)[None])
            rel = (
                Path(VIDEOS_DIR)
                / file_name(world)
                / file_name(view.policy)
                / f"episode_{view.episode_index}.mp4"
            )
            _write_mp4(out / rel, frames, fps)
            paths.setdefault(world, {}).setdefault(view.policy, []).append(str(rel))
    return paths
