"""Rollouts as a Rerun recording: real and imagined episodes side by side on one timeline.

Seeing a world model disagree with the simulator (the block drifts, the success curve rises too early)
explains a bad ranking number faster than any statistic. Layout of the recording, per policy x episode:

    /<policy>/ep<idx>/<world>/image            JPEG/PNG frames, one per step
    /<policy>/ep<idx>/<world>/image/points     tracked points drawn on the frames (optional)
    /<policy>/ep<idx>/<world>/action/<dim>     actions as scalars
    /<policy>/ep<idx>/<world>/state/<dim>      true (real) or estimated (imagined) state (optional)
    /<policy>/ep<idx>/<world>/score            the judge's per-step output (optional)
    /<policy>/ep<idx>/info                     policy, seed and final scores (markdown)

<world> is "real", "imagined" or a world model's name. Timelines: `step` (frame index) and `sim_time`
(seconds, when an fps is known).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rerun as rr
import rerun.blueprint as rrb

from wmeval.errors import WmevalError
from wmeval.io import atomic_path
from wmeval.report import viewer
from wmeval.report.episodes import REAL, EpisodeView, WorldTrace, as_episode_view, episodes_from_rollouts

__all__ = [
    "REAL",
    "EpisodeView",
    "RecordingSession",
    "WorldTrace",
    "as_episode_view",
    "default_blueprint",
    "episodes_from_rollouts",
    "log_rollouts",
    "open_recording",
]

STEP = "step"
SIM_TIME = "sim_time"
#: Real is blue, the first imagined world orange, then more tab10 colours.
COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
ImageFormat = Literal["jpeg", "png"]
Mode = Literal["spawn", "serve", "save"]


def log_rollouts(
    path_or_stream: str | Path | rr.RecordingStream,
    episodes: Iterable[Any],
    *,
    application_id: str = "wmeval",
    blueprint: bool = True,
    image_format: ImageFormat = "jpeg",
    jpeg_quality: int = 90,
    max_tabs: int = 32,
) -> Path | None:
    """Log episodes to an `.rrd` file (written atomically; returns its path) or to an open stream.

    `blueprint=True` also sends the default layout (one tab per episode, the first `max_tabs`:
    real | imagined | plots). JPEG keeps files small; PNG is lossless for pixel-exact inspection.
    """
    views = [as_episode_view(e) for e in episodes]
    bp = default_blueprint(views, max_tabs=max_tabs) if blueprint else None
    if isinstance(path_or_stream, rr.RecordingStream):
        if bp is not None:
            path_or_stream.send_blueprint(bp)
        _log_all(path_or_stream, views, image_format, jpeg_quality)
        path_or_stream.flush()
        return None
    path = Path(path_or_stream)
    with atomic_path(path) as tmp:
        stream = rr.RecordingStream(application_id, recording_id=uuid.uuid4(), default_enabled=True)
        if not rr.is_enabled(stream):
            raise WmevalError(
                "Rerun logging is disabled (RERUN=off in the environment): unset it to write .rrd files"
            )
        stream.save(tmp, default_blueprint=bp)
        try:
            _log_all(stream, views, image_format, jpeg_quality)
        finally:
            stream.flush()
            stream.disconnect()
    return path


def _log_all(
    stream: rr.RecordingStream, views: Sequence[EpisodeView], fmt: ImageFormat, quality: int
) -> None:
    for view in views:
        _log_episode(stream, view, fmt, quality)


def _log_episode(stream: rr.RecordingStream, ep: EpisodeView, fmt: ImageFormat, quality: int) -> None:
    """Everything about one episode, sent as columns (one call per entity, not one per step)."""
    fps = next((t.fps for t in ep.worlds.values() if t.fps), None)
    stream.log(
        f"{_base(ep)}/info", rr.TextDocument(_info_markdown(ep), media_type="text/markdown"), static=True
    )
    for i, (world, trace) in enumerate(_real_first(ep)):
        root, color = f"{_base(ep)}/{rr.escape_entity_path_part(world)}", COLORS[i % len(COLORS)]
        n = trace.frames.shape[0]
        idx = _indexes(np.arange(n), trace.fps or fps)
        blobs = [_encode(frame, fmt, quality) for frame in trace.frames]
        media = "image/jpeg" if fmt == "jpeg" else "image/png"
        stream.send_columns(
            f"{root}/image", indexes=idx, columns=rr.EncodedImage.columns(blob=blobs, media_type=[media] * n)
        )
        if trace.points is not None:
            _log_points(stream, f"{root}/image/points", trace.points, idx)
        series = [("action", trace.actions), ("state", trace.states)]
        for kind, values in series:
            if values is None:
                continue
            steps = np.arange(values.shape[0])
            for d in range(values.shape[1]):
                path = f"{root}/{kind}/{d}"
                stream.log(path, rr.SeriesLines(colors=[color], names=[f"{world} {kind}[{d}]"]), static=True)
                stream.send_columns(
                    path, indexes=_indexes(steps, trace.fps or fps), columns=_scalars(values[:, d])
                )
        if trace.scores is not None:
            path = f"{root}/score"
            stream.log(path, rr.SeriesLines(colors=[color], names=[f"{world} {ep.score_name}"]), static=True)
            stream.send_columns(path, indexes=idx, columns=_scalars(trace.scores))


def _real_first(ep: EpisodeView) -> list[tuple[str, WorldTrace]]:
    """The episode's worlds with the real one first: it always sits left and is always blue."""
    return sorted(ep.worlds.items(), key=lambda kv: kv[0] != REAL)


def _base(ep: EpisodeView) -> str:
    """Entity path of an episode: `/<policy>/ep<idx>`, the policy name escaped (it may hold `/` or spaces)."""
    return f"/{rr.escape_entity_path_part(ep.policy)}/ep{int(ep.episode_index)}"


def _indexes(steps: np.ndarray, fps: float | None) -> list[rr.TimeColumn]:
    cols = [rr.TimeColumn(STEP, sequence=steps.astype(np.int64))]
    if fps:
        cols.append(rr.TimeColumn(SIM_TIME, duration=steps / float(fps)))
    return cols


def _scalars(values: np.ndarray) -> Any:
    return rr.Scalars.columns(scalars=np.asarray(values, dtype=np.float64))


def _log_points(stream: rr.RecordingStream, path: str, points: np.ndarray, idx: list[rr.TimeColumn]) -> None:
    """Tracked points per frame; a point keeps its colour across frames and worlds so tracks can be compared."""
    k = points.shape[1]
    palette = np.array([COLORS[(j + 2) % len(COLORS)] for j in range(k)], dtype=np.uint8)
    visible = np.isfinite(points).all(axis=-1)
    positions = points[visible].astype(np.float32)
    colors = np.broadcast_to(palette, points.shape[:2] + (3,))[visible]
    ids = np.broadcast_to(np.arange(k), points.shape[:2])[visible]
    cols = rr.Points2D.columns(positions=positions, colors=colors, keypoint_ids=ids)
    stream.send_columns(path, indexes=idx, columns=cols.partition(visible.sum(axis=1)))


def _encode(frame: np.ndarray, fmt: ImageFormat, quality: int) -> bytes:
    """RGB uint8 -> JPEG/PNG bytes with OpenCV (which expects BGR)."""
    import cv2

    bgr = np.ascontiguousarray(frame[..., ::-1])
    if fmt == "jpeg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    elif fmt == "png":
        ok, buf = cv2.imencode(".png", bgr)
    else:
        raise WmevalError(f"image_format={fmt!r} must be 'jpeg' or 'png'")
    if not ok:
        raise WmevalError(f"OpenCV could not encode a {frame.shape} frame as {fmt}")
    return buf.tobytes()


def _info_markdown(ep: EpisodeView) -> str:
    lines = [f"# {ep.policy}, episode {ep.episode_index}", "", f"- seed: {ep.seed}"]
    for world, trace in ep.worlds.items():
        final = "n/a" if trace.scores is None else f"{float(trace.scores[-1]):.3f}"
        lines.append(f"- {world}: {trace.frames.shape[0] - 1} steps, final {ep.score_name} {final}")
    lines += [f"- {k}: {v}" for k, v in ep.extra.items()]
    return "\n".join(lines)


def default_blueprint(episodes: Sequence[EpisodeView], *, max_tabs: int = 32) -> rrb.Blueprint:
    """One tab per episode: a 2D view per world (real first), then score, action and state plots."""
    tabs = []
    for ep in episodes[:max_tabs]:
        worlds = [w for w, _ in _real_first(ep)]
        roots = [f"{_base(ep)}/{rr.escape_entity_path_part(w)}" for w in worlds]
        images = [
            rrb.Spatial2DView(origin=f"{root}/image", contents="$origin/**", name=w)
            for w, root in zip(worlds, roots, strict=True)
        ]
        plots = [rrb.TimeSeriesView(name=ep.score_name, contents=[f"{r}/score" for r in roots])]
        plots.append(rrb.TimeSeriesView(name="actions", contents=[f"{r}/action/**" for r in roots]))
        if any(t.states is not None for t in ep.worlds.values()):
            plots.append(
                rrb.TimeSeriesView(name="state: true vs estimated", contents=[f"{r}/state/**" for r in roots])
            )
        tabs.append(rrb.Horizontal(*images, rrb.Vertical(*plots), name=f"{ep.policy} ep{ep.episode_index}"))
    return rrb.Blueprint(rrb.Tabs(*tabs) if tabs else rrb.Tabs(), rrb.SelectionPanel(state="collapsed"))


# --------------------------------------------------------------------------------------------------
# Where a recording goes: a viewer window, a localhost server, or a file
# --------------------------------------------------------------------------------------------------


class RecordingSession(contextlib.AbstractContextManager["RecordingSession"]):
    """An open recording stream plus whatever it feeds (a file, a viewer or a server process).

    `close()` finishes the file (renamed into place only on success) or stops a server; a spawned
    viewer window stays open. `wait()` keeps a server alive until Ctrl-C.
    """

    def __init__(
        self, stream: rr.RecordingStream, mode: Mode, path: Path | None = None, url: str | None = None
    ):
        self.stream, self.mode, self.path, self.url = stream, mode, path, url
        self._stack = contextlib.ExitStack()
        self._server: Any = None

    def wait(self) -> None:
        """Block while a served recording is being watched; returns on Ctrl-C or when the server exits."""
        self.stream.flush()
        if self._server is not None:
            with contextlib.suppress(KeyboardInterrupt):
                self._server.wait()

    def close(self, exc: BaseException | None = None) -> None:
        self.stream.flush()
        self.stream.disconnect()
        if self._server is not None:
            viewer.stop(self._server)
        if exc is None:
            self._stack.close()
        else:
            self._stack.__exit__(type(exc), exc, exc.__traceback__)

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.close(exc)


def open_recording(
    mode: Mode,
    path: str | Path | None = None,
    *,
    application_id: str = "wmeval",
    blueprint: rrb.Blueprint | None = None,
    host: str = viewer.DEFAULT_HOST,
    grpc_port: int = viewer.GRPC_PORT,
    web_port: int = viewer.WEB_PORT,
) -> RecordingSession:
    """Open a stream for `rerun=spawn|serve|save`.

    spawn: a native viewer window (needs a display), listening on `host` only.
    serve: a gRPC + web-viewer server on `host` (127.0.0.1 by default; `session.url` is the browser URL).
    save:  an `.rrd` at `path`, written atomically when the session closes without error.
    """
    stream = rr.RecordingStream(application_id, recording_id=uuid.uuid4(), default_enabled=True)
    if not rr.is_enabled(stream):
        raise WmevalError(
            "Rerun logging is disabled (RERUN=off in the environment): unset it, or use rerun=off"
        )
    if mode == "save":
        if path is None:
            raise WmevalError("rerun=save needs a path to write the .rrd to")
        session = RecordingSession(stream, mode, path=Path(path))
        tmp = session._stack.enter_context(atomic_path(Path(path)))
        stream.save(tmp, default_blueprint=blueprint)
        return session
    if mode == "serve":
        cmd = viewer.serve_command(host, grpc_port, web_port)
        url = viewer.web_url(host, grpc_port, web_port)
    elif mode == "spawn":
        if not viewer.has_display():
            raise WmevalError("rerun=spawn needs a display (none found): use rerun=serve or rerun=save")
        cmd = [viewer.rerun_executable(), "--bind", host, "--port", str(grpc_port), "--expect-data-soon"]
        url = viewer.grpc_url(host, grpc_port)
    else:
        raise WmevalError(f"rerun={mode!r} must be one of spawn, serve, save")
    proc, log = viewer.start(cmd, detach=mode == "spawn")
    session = RecordingSession(stream, mode, url=url)
    session._stack.callback(log.close)
    if mode == "serve":
        session._server = proc
    try:
        for port in (grpc_port, web_port) if mode == "serve" else (grpc_port,):
            viewer.wait_for_port(proc, log, host, port)
        stream.connect_grpc(viewer.grpc_url(host, grpc_port), default_blueprint=blueprint)
    except BaseException:
        viewer.stop(proc)
        session._stack.close()
        raise
    return session
