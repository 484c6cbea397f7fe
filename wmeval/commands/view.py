"""`wmeval view PATH.rrd`: look at recorded rollouts, in a window or, on a headless machine, in a browser.

Headless is the common case (a GPU box over SSH), so without a display the recording is served on
127.0.0.1 and the URL printed; forward the ports with `ssh -L` rather than binding 0.0.0.0.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from wmeval.errors import ConfigError, WmevalError
from wmeval.report import viewer

MODES = ("auto", "spawn", "serve")
#: Exit codes of a child that was stopped by Ctrl-C (the terminal signals the whole process group).
_STOPPED = (0, 130, -signal.SIGINT)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Open `cfg.path`; blocks until the viewer closes or Ctrl-C (which is a normal, successful exit)."""
    path = check_path(cfg.path)
    mode = resolve_mode(str(cfg.mode))
    if mode == "spawn":
        return _spawn(path)
    return _serve(path, str(cfg.host), int(cfg.grpc_port), int(cfg.web_port))


def check_path(path: Any) -> Path:
    """The recording to open, or a one-line error naming `path=`."""
    if path is None or str(path) == "":
        raise ConfigError("path= is required: wmeval view PATH.rrd")
    p = Path(str(path)).expanduser()
    if not p.exists():
        raise WmevalError(
            f"path={p} does not exist: pass the .rrd written by `wmeval rank` (out/rollouts.rrd)"
        )
    if not p.is_file():
        raise WmevalError(f"path={p} is not a file: pass an .rrd file")
    return p


def resolve_mode(mode: str) -> str:
    """`auto` becomes `spawn` where a window can open and `serve` elsewhere."""
    if mode not in MODES:
        raise ConfigError(f"mode={mode} must be one of {', '.join(MODES)}")
    if mode == "auto":
        return "spawn" if viewer.has_display() else "serve"
    if mode == "spawn" and not viewer.has_display():
        raise WmevalError("mode=spawn needs a display (DISPLAY / WAYLAND_DISPLAY unset): use mode=serve")
    return mode


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Make Ctrl-C and SIGTERM raise KeyboardInterrupt while serving, so the server child is always stopped.

    Needed because a process started in the background by a shell inherits SIGINT as *ignored*, and a
    plain SIGTERM would otherwise kill us and orphan the server, still listening.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _spawn(path: Path) -> dict[str, Any]:
    proc = subprocess.Popen([viewer.rerun_executable(), str(path)])
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        viewer.stop(proc)
        return {"path": str(path), "mode": "spawn"}
    if code not in _STOPPED:
        raise WmevalError(
            f"the Rerun viewer exited with code {code}: try mode=serve and open the URL instead"
        )
    return {"path": str(path), "mode": "spawn"}


def _serve(path: Path, host: str, grpc_port: int, web_port: int) -> dict[str, Any]:
    url = viewer.web_url(host, grpc_port, web_port)
    if viewer.is_exposed(host):
        print(f"warning: host={host} lets other machines read this recording", file=sys.stderr)
    with _interruptible():
        proc, log = viewer.start(viewer.serve_command(host, grpc_port, web_port, [path]))
        try:
            viewer.wait_for_port(proc, log, host, grpc_port)
            viewer.wait_for_port(proc, log, host, web_port)
            print(f"Serving {path}\n  open in a browser: {url}", flush=True)
            print(f"  or a native viewer: rerun {viewer.grpc_url(host, grpc_port)}", flush=True)
            print("Press Ctrl-C to stop.", flush=True)
            code = proc.wait()
            if code not in _STOPPED:
                raise WmevalError(f"the Rerun server exited with code {code} ({viewer.last_line(log)})")
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr, flush=True)
        finally:
            viewer.stop(proc)
            log.close()
    return {"path": str(path), "mode": "serve", "url": url}
