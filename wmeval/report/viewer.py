"""Starting and stopping the Rerun viewer and server as child processes, bound to localhost by default.

Why not `rr.serve_grpc` / `rr.spawn`? In rerun-sdk 0.26 both listen on 0.0.0.0 with no way to choose the
address, which would publish every rollout to the local network. The bundled `rerun` CLI takes `--bind`,
so wmeval runs it as a child process and connects to it (or hands it the `.rrd` file).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO
from urllib.parse import quote

from wmeval.errors import WmevalError

DEFAULT_HOST = "127.0.0.1"
GRPC_PORT = 9876
WEB_PORT = 9090
_WILDCARD = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


def rerun_executable() -> str:
    """Path to the `rerun` binary shipped inside rerun-sdk (honours `RERUN_CLI_PATH`, like rerun itself)."""
    override = os.environ.get("RERUN_CLI_PATH")
    if override:
        return override
    try:
        import rerun_cli
    except ImportError as err:  # pragma: no cover - rerun-sdk is a hard dependency
        raise WmevalError("rerun-sdk is not installed: pip install 'rerun-sdk>=0.24,<0.27'") from err
    exe = Path(rerun_cli.__file__).with_name("rerun.exe" if sys.platform.startswith("win") else "rerun")
    if not exe.exists():
        raise WmevalError(f"the Rerun viewer binary is missing at {exe}: reinstall rerun-sdk")
    return str(exe)


def has_display() -> bool:
    """Whether a native window can open: always on macOS/Windows, on Linux only with X11 or Wayland."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _url_host(host: str) -> str:
    """The address a local client should dial for a server bound to `host` (a wildcard means loopback)."""
    host = _WILDCARD.get(host, host)
    return f"[{host}]" if ":" in host else host


def grpc_url(host: str = DEFAULT_HOST, grpc_port: int = GRPC_PORT) -> str:
    """`rerun+http://HOST:PORT/proxy`, the address the SDK and the native viewer connect to."""
    return f"rerun+http://{_url_host(host)}:{grpc_port}/proxy"


def web_url(host: str = DEFAULT_HOST, grpc_port: int = GRPC_PORT, web_port: int = WEB_PORT) -> str:
    """The browser URL of the web viewer, already pointed at the gRPC server."""
    return f"http://{_url_host(host)}:{web_port}/?url={quote(grpc_url(host, grpc_port), safe='')}"


def serve_command(
    host: str, grpc_port: int, web_port: int, paths: Sequence[str | Path] = (), web: bool = True
) -> list[str]:
    """The `rerun` command line that serves `paths` (or an empty server for SDKs) on `host` only."""
    cmd = [rerun_executable(), "--serve-web" if web else "--serve-grpc", "--bind", host]
    cmd += ["--port", str(grpc_port)]
    if web:
        cmd += ["--web-viewer-port", str(web_port)]
    return cmd + [str(p) for p in paths]


def is_exposed(host: str) -> bool:
    """True when `host` is not a loopback address, i.e. other machines can reach the server."""
    return not (host in ("localhost", "::1") or host.startswith("127."))


def start(cmd: Sequence[str], *, detach: bool = False) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    """Start `cmd` with its output in a temporary file (read back only to explain a failure).

    A file, not a pipe, so a long-lived server never blocks on a full pipe nobody reads.
    `detach` puts a viewer in its own session so that it outlives this process, as `rr.spawn` does.
    """
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        list(cmd),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=detach,
        preexec_fn=None if detach else _die_with_parent(),
    )
    return proc, log


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, a child that gets SIGTERM when wmeval dies, even by SIGKILL: no orphan server keeps a port."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - no libc to ask
        return None

    def set_pdeathsig() -> None:
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return set_pdeathsig


def wait_for_port(
    proc: subprocess.Popen[bytes], log: IO[bytes], host: str, port: int, timeout_s: float = 30.0
) -> None:
    """Block until `proc` accepts TCP connections on `port`; a clear error if it exits or never listens."""
    deadline = time.monotonic() + timeout_s
    dial = _WILDCARD.get(host, host)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise WmevalError(
                f"the Rerun server exited with code {proc.returncode} ({last_line(log)}): "
                "if the port is in use, pass grpc_port= / web_port="
            )
        try:
            with socket.create_connection((dial, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    stop(proc)
    raise WmevalError(f"the Rerun server did not listen on {dial}:{port} within {timeout_s:.0f}s")


def last_line(log: IO[bytes]) -> str:
    """The last non-empty line a child wrote, for one-line error messages."""
    log.seek(0)
    lines = [ln.strip() for ln in log.read().decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 5.0) -> int | None:
    """Ask a child to stop (SIGINT, as Ctrl-C would), then kill it if it does not; returns its exit code."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGINT if sys.platform != "win32" else signal.SIGTERM)
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout_s)
    return proc.returncode


def free_port(host: str = DEFAULT_HOST) -> int:
    """A currently unused TCP port on `host` (for tests and for running several servers side by side)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
