"""Rerun recordings of rollouts, and `wmeval view`: read back with Rerun's own reader; serving stays local."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rerun as rr

from wmeval.cli import compose_config, main, positional_to_override
from wmeval.errors import WmevalError
from wmeval.report import viewer
from wmeval.report.rerun import EpisodeView, WorldTrace, episodes_from_rollouts, log_rollouts, open_recording

T, H, W, A, S = 4, 16, 20, 2, 3


def _trace(rng: np.random.Generator, fps: float | None = 10.0) -> WorldTrace:
    return WorldTrace(
        frames=rng.integers(0, 256, (T + 1, H, W, 3), dtype=np.uint8),
        actions=rng.normal(size=(T, A)),
        states=rng.normal(size=(T + 1, S)),
        scores=np.linspace(0, 1, T + 1),
        points=rng.uniform(0, H, (T + 1, 3, 2)),
        fps=fps,
    )


@pytest.fixture
def episodes() -> list[EpisodeView]:
    rng = np.random.default_rng(0)
    return [
        EpisodeView(policy, i, {"real": _trace(rng), "imagined": _trace(rng, fps=None)}, seed=100 + i)
        for policy in ("diffusion", "push left/v2")
        for i in range(2)
    ]


def _columns(path: Path, contents: str = "/**") -> dict[str, list]:
    table = rr.dataframe.load_recording(path).view(index="step", contents=contents).select().read_all()
    return {name: table.column(name).to_pylist() for name in table.column_names}


def test_rrd_holds_real_and_imagined_frames_and_actions_for_every_episode(tmp_path, episodes):
    path = log_rollouts(tmp_path / "rollouts.rrd", episodes)
    recording = rr.dataframe.load_recording(path)
    entities = {c.entity_path for c in recording.schema().component_columns()}
    for ep in episodes:
        base = f"/{rr.escape_entity_path_part(ep.policy)}/ep{ep.episode_index}"
        for world in ("real", "imagined"):
            for entity in ("image", "image/points", "score", *(f"action/{d}" for d in range(A))):
                assert f"{base}/{world}/{entity}" in entities
            assert f"{base}/{world}/state/{S - 1}" in entities

    cols = _columns(path, "/diffusion/ep1/**")
    assert cols["step"] == list(range(T + 1))
    assert cols["sim_time"][0] is not None  # the real world's fps gives seconds, shared with imagined
    blobs = cols["/diffusion/ep1/imagined/image:EncodedImage:blob"]
    assert len(blobs) == T + 1 and all(b is not None for b in blobs)
    actions = [v for v in cols["/diffusion/ep1/real/action/1:Scalars:scalars"] if v is not None]
    np.testing.assert_allclose(np.ravel(actions), episodes[1].worlds["real"].actions[:, 1])


def test_png_frames_round_trip_exactly_and_lost_points_are_dropped(tmp_path, episodes):
    import cv2

    episodes[0].worlds["real"].points[2, 1] = np.nan
    path = log_rollouts(tmp_path / "r.rrd", episodes[:1], image_format="png")
    cols = _columns(path, "/diffusion/ep0/real/**")
    blob = bytes(cols["/diffusion/ep0/real/image:EncodedImage:blob"][3][0])
    decoded = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    np.testing.assert_array_equal(decoded, episodes[0].worlds["real"].frames[3])
    counts = [len(p) for p in cols["/diffusion/ep0/real/image/points:Points2D:positions"]]
    assert counts == [3, 3, 2, 3, 3]


def test_default_blueprint_is_saved_in_the_file(tmp_path, episodes):
    path = log_rollouts(tmp_path / "r.rrd", episodes)
    printed = subprocess.run(
        [viewer.rerun_executable(), "rrd", "print", str(path)], capture_output=True, text=True, timeout=60
    )
    assert "Blueprint" in printed.stdout + printed.stderr
    bare = log_rollouts(tmp_path / "bare.rrd", episodes, blueprint=False)
    printed = subprocess.run(
        [viewer.rerun_executable(), "rrd", "print", str(bare)], capture_output=True, text=True, timeout=60
    )
    assert "Blueprint" not in printed.stdout + printed.stderr


def test_save_session_is_atomic(tmp_path, episodes):
    with open_recording("save", tmp_path / "ok.rrd") as session:
        log_rollouts(session.stream, episodes[:1], blueprint=False)
    assert "/diffusion/ep0/real/image:EncodedImage:blob" in _columns(tmp_path / "ok.rrd")
    with pytest.raises(RuntimeError), open_recording("save", tmp_path / "failed.rrd") as session:
        raise RuntimeError("rollout crashed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.rrd"]


def test_world_trace_rejects_bad_shapes_naming_the_field():
    frames = np.zeros((T + 1, H, W, 3), np.uint8)
    with pytest.raises(WmevalError, match="frames"):
        WorldTrace(frames=frames.astype(np.float32))
    with pytest.raises(WmevalError, match="actions"):
        WorldTrace(frames=frames, actions=np.zeros((T + 3, A)))
    with pytest.raises(WmevalError, match="points"):
        WorldTrace(frames=frames, points=np.zeros((T + 1, 2, 3)))


def test_episodes_from_rollouts_pairs_real_and_imagined_by_start_state():
    from wmeval.rollout import Rollouts

    def runs(lengths: list[int], seed: int) -> Rollouts:
        rng = np.random.default_rng(seed)
        n = len(lengths)
        return Rollouts(
            actions=rng.normal(size=(n, T, A)).astype(np.float32),
            coverage=rng.uniform(size=(n, T + 1)),
            step_success=np.zeros((n, T), bool),
            success=np.zeros(n, bool),
            lengths=np.array(lengths),
            seeds=np.array([7, 8, 9][:n]),
            frames=rng.integers(0, 256, (n, T + 1, H, W, 3), dtype=np.uint8),
            policy_name="p",
        )

    views = episodes_from_rollouts({"p": runs([4, 2, 3], 0)}, {"wm": {"p": runs([3, 4, 4], 1)}}, per_policy=2)
    assert [(v.policy, v.episode_index, v.seed) for v in views] == [("p", 0, 7), ("p", 1, 8)]
    assert list(views[1].worlds) == ["real", "wm"]
    assert views[1].worlds["real"].frames.shape[0] == 3 and views[1].worlds["wm"].frames.shape[0] == 5
    assert views[0].worlds["wm"].actions.shape == (3, A) and views[0].score_name == "coverage"


# ------------------------------------------------------------------------------------------ wmeval view


def test_serve_addresses_are_loopback_by_default():
    assert compose_config("view", []).host == "127.0.0.1"
    url = viewer.web_url(grpc_port=1234, web_port=5678)
    assert url == "http://127.0.0.1:5678/?url=rerun%2Bhttp%3A%2F%2F127.0.0.1%3A1234%2Fproxy"
    assert viewer.grpc_url("0.0.0.0", 1) == "rerun+http://127.0.0.1:1/proxy"
    cmd = viewer.serve_command("127.0.0.1", 1234, 5678, ["x.rrd"])
    assert cmd[cmd.index("--bind") + 1] == "127.0.0.1" and cmd[-1] == "x.rrd"
    assert not viewer.is_exposed("127.0.0.1") and viewer.is_exposed("0.0.0.0")


def test_view_takes_the_path_as_first_argument():
    assert positional_to_override("view", ["my runs/it's.rrd", "mode=serve"]) == [
        "path='my runs/it\\'s.rrd'",
        "mode=serve",
    ]
    assert (
        compose_config("view", positional_to_override("view", ["my runs/it's.rrd"])).path
        == "my runs/it's.rrd"
    )
    assert positional_to_override("record", ["x"]) == ["x"]


def test_view_missing_file_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["view", str(tmp_path / "nope.rrd")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope.rrd" in err and err.startswith("error:")


def _listeners(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp*) with a LISTEN socket on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if os.path.exists(table):
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                addr, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(addr)
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/tcp")
def test_view_serves_on_localhost_and_exits_0_on_ctrl_c(tmp_path, episodes):
    path = log_rollouts(tmp_path / "r.rrd", episodes[:1])
    grpc_port, web_port = viewer.free_port(), viewer.free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    cmd = [
        sys.executable,
        "-m",
        "wmeval.cli",
        "view",
        str(path),
        f"grpc_port={grpc_port}",
        f"web_port={web_port}",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        out, deadline = "", time.monotonic() + 120
        while "Ctrl-C" not in out and time.monotonic() < deadline and proc.poll() is None:
            if select.select([proc.stdout], [], [], 1.0)[0]:  # raw reads: no buffered lines hide from select
                out += os.read(proc.stdout.fileno(), 4096).decode()
        assert "Ctrl-C" in out, (out, proc.stderr.read() if proc.poll() is not None else "")
        assert f"http://127.0.0.1:{web_port}/" in out
        for port in (grpc_port, web_port):
            assert _listeners(port) == {"0100007F"}  # 127.0.0.1 only, nothing on 0.0.0.0 or ::
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert not _listeners(grpc_port) and not _listeners(web_port)  # the server child is gone too
    finally:
        viewer.stop(proc)  # SIGINT first, so that wmeval stops its server child before it goes
