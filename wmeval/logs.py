"""Status messages through `logging`: to the terminal (stderr) and to a per-run log file in the command's output
directory, so a finished run keeps what it said next to what it wrote. Final summaries stay prints on stdout.

The CLI calls `setup_console`; `prepare_out_dir` calls `attach_run_log` once the output directory exists. Library
use (no CLI) configures nothing: messages go wherever the caller's logging sends them.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

LOG_FILE = "wmeval.log"
LOGGER = logging.getLogger("wmeval")


class _Console(logging.StreamHandler):
    """Writes to the current `sys.stderr` (looked up per message, so redirected streams are honoured)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # noqa: ANN001
        pass


class _RunFile(logging.FileHandler):
    """The per-run log file; at most one is attached at a time."""


_command_line: list[str] = []  # what the CLI was asked, the first line of each run log


def setup_console(verbose: bool = False, command_line: str = "") -> None:
    """Status messages of `wmeval.*` loggers on stderr, as bare lines (DEBUG too with `verbose`)."""
    _command_line[:] = [command_line] if command_line else []
    LOGGER.setLevel(logging.DEBUG)
    if not any(isinstance(h, _Console) for h in LOGGER.handlers):
        console = _Console()
        console.setFormatter(logging.Formatter("%(message)s"))
        LOGGER.addHandler(console)
    for handler in LOGGER.handlers:
        if isinstance(handler, _Console):
            handler.setLevel(logging.DEBUG if verbose else logging.INFO)


def attach_run_log(out: Path) -> Path | None:
    """Log `wmeval.*` messages of this run (timestamped, DEBUG and up) to `out/wmeval.log`.

    Only the main process of a torchrun job writes it (others would interleave their lines into one file).
    """
    if int(os.environ.get("RANK", "0")) != 0:
        return None
    path = Path(out) / LOG_FILE
    if any(isinstance(h, _RunFile) and Path(h.baseFilename) == path.resolve() for h in LOGGER.handlers):
        return path
    detach_run_log()
    handler = _RunFile(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    LOGGER.setLevel(logging.DEBUG)
    LOGGER.addHandler(handler)
    LOGGER.debug("run log of %s: %s", path.parent, _command_line[0] if _command_line else "library call")
    return path


def error_to_run_log(message: str) -> None:
    """The error a run ended with, into its log file only (the terminal already shows it)."""
    record = LOGGER.makeRecord(LOGGER.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in LOGGER.handlers:
        if isinstance(handler, _RunFile):
            handler.handle(record)


def detach_run_log() -> None:
    for handler in [h for h in LOGGER.handlers if isinstance(h, _RunFile)]:
        LOGGER.removeHandler(handler)
        handler.close()


def is_only_run_log(path: Path) -> bool:
    """True for a directory holding nothing but its run log (a run that failed before writing anything)."""
    entries = list(path.iterdir())
    return len(entries) == 1 and entries[0].name == LOG_FILE
