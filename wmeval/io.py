"""Crash-safe file output: everything is written to a temporary name, then renamed into place."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from wmeval.errors import WmevalError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    Works for files and directories alike. On any error the temporary is removed, so a reader never sees
    a half-written result and an existing `path` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
        if not target.exists():
            raise RuntimeError(f"nothing was written to the temporary path for {path}")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | Path, data: Any) -> Path:
    """Write `data` as pretty JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Write text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def prepare_out_dir(out: str | None, command: str, overwrite: bool = False) -> Path:
    """Resolve the output directory of a command and make sure it is safe to write into.

    `out=None` gives `outputs/<command>/<timestamp>/`. An existing non-empty directory is refused unless
    `overwrite` is set, so a run never silently mixes its files with an older run's.
    """
    if out is None or str(out) == "":
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = Path("outputs") / command / stamp
    else:
        path = Path(os.fspath(out))
    if path.exists() and not path.is_dir():
        raise WmevalError(f"out={path} is a file, not a directory: choose another out=DIR")
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise WmevalError(
                f"out={path} exists and is not empty: pass overwrite=true to replace it, or choose another out=DIR"
            )
        shutil.rmtree(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WmevalError(f"out={path} cannot be created ({err.strerror}): choose a writable out=DIR") from err
    if not os.access(path, os.W_OK):
        raise WmevalError(f"out={path} is not writable: choose a writable out=DIR")
    return path
