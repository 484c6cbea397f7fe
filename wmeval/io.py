"""Crash-safe file output for commands: everything is written to a temporary name, then renamed into place."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from wmeval.errors import WmevalError
from wmeval.logs import LOG_FILE, attach_run_log, detach_run_log, is_only_run_log
from worldmodel.io import atomic_path

__all__ = ["atomic_path", "prepare_out_dir", "remove_empty_out_dirs", "write_json", "write_text"]

#: directories `prepare_out_dir` created in this process, so a failed command leaves no empty ones behind
_created_out_dirs: list[Path] = []


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
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise WmevalError(
                f"out={path} exists and is not empty: pass overwrite=true to replace it, or choose another out=DIR"
            )
        shutil.rmtree(path)
    _make_out_dir(path)
    attach_run_log(path)
    return path


def resume_out_dir(out: str | None) -> Path:
    """The run directory `resume=true` continues, created when it does not exist yet: a long job can say
    `resume=true` from its first start, which then begins at step 0."""
    if out is None or str(out) == "":
        raise WmevalError("resume=true needs out=DIR: the run directory to continue")
    path = Path(os.fspath(out))
    _make_out_dir(path)
    return path


def _make_out_dir(path: Path) -> None:
    """Create `path` (remembered for `remove_empty_out_dirs` when new) and check it takes files."""
    if path.exists() and not path.is_dir():
        raise WmevalError(f"out={path} is a file, not a directory: choose another out=DIR")
    existed = path.is_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WmevalError(
            f"out={path} cannot be created ({err.strerror}): choose a writable out=DIR"
        ) from err
    if not os.access(path, os.W_OK):
        raise WmevalError(f"out={path} is not writable: choose a writable out=DIR")
    if not existed:
        _created_out_dirs.append(path)


def link_latest(out: Path) -> None:
    """`<out's parent>/latest` -> `out` (a relative symlink, replaced atomically; skipped where links are not
    allowed), so the newest run of a command is always at `outputs/<command>/latest`."""
    latest = out.parent / "latest"
    tmp = out.parent / f".latest.{os.getpid()}"
    try:
        tmp.symlink_to(out.name)
        os.replace(tmp, latest)
    except OSError:
        tmp.unlink(missing_ok=True)


def remove_empty_out_dirs() -> None:
    """After a failed command: remove the output directories it created and never wrote into (its run log
    aside)."""
    detach_run_log()
    while _created_out_dirs:
        path = _created_out_dirs.pop()
        if path.is_dir() and is_only_run_log(path):
            (path / LOG_FILE).unlink()
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def to_json_safe(obj: Any) -> Any:
    """A copy of `obj` that strict JSON can hold: NaN and ±inf become None (JSON `null`).

    Python's json writes NaN as the non-standard token `NaN`, which browsers and jq reject; an undefined
    statistic (e.g. Spearman of a constant vector) must read as `null`, not as a number. Also turns numpy
    scalars and arrays, tuples, sets, Paths and dataclasses into their plain JSON equivalents.
    """
    import dataclasses
    import math

    if isinstance(obj, bool) or obj is None or isinstance(obj, str | int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_json_safe(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [to_json_safe(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy scalars and arrays, torch tensors
        return to_json_safe(obj.tolist())
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")
