"""Crash-safe output for the world-model library (it may not import `wmeval.io`, so it keeps its own).

Everything is written under a temporary name beside the target and renamed into place only when complete,
so a reader never sees a half-written checkpoint or cache. A process killed with SIGKILL runs no cleanup,
so its temporary (a dot-prefixed `.tmp` directory) stays behind until `remove_temporaries` clears it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from worldmodel.errors import InputError, OutputError

#: errors of the machine, not of the program: reported as one line with the fix, not as a traceback
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
#: `tempfile.mkdtemp(prefix=".<name>.", suffix=".tmp")` names: `.<name>.<8 random characters>.tmp`
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


@contextlib.contextmanager
def atomic_path(path: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path` (file or directory); move it onto `path` if the block succeeds.

    On any error the temporary is removed and an existing `path` is left untouched. With `overwrite=False`
    an existing non-empty target is refused up front, so nobody loses a trained model by accident. A full
    disk, a read-only filesystem or a missing permission becomes an `OutputError` naming the path.
    """
    path = Path(path)
    if not overwrite and path.exists() and (path.is_file() or any(path.iterdir())):
        raise InputError(f"{path} already exists: choose another path or pass overwrite=True")
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        target = tmp / path.name
        yield target
        if not target.exists():
            raise RuntimeError(f"nothing was written to the temporary path for {path}")
        if path.is_dir() and not path.is_symlink():  # moved aside, not deleted: the gap is two renames
            os.replace(path, tmp / f"{path.name}.old")
        os.replace(target, path)
    except Exception as err:
        code = _storage_errno(err)
        if code is None or isinstance(err, OutputError):
            raise
        raise OutputError(
            f"cannot write {path}: {os.strerror(code)}; nothing was written: free disk space or choose a "
            "writable output location (out=DIR)"
        ) from err
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _storage_errno(err: Exception) -> int | None:
    """The errno of a full disk, read-only filesystem or missing permission, else None.

    safetensors reports I/O failures as `SafetensorError("... (os error 28)")`, not as OSError.
    """
    code = err.errno if isinstance(err, OSError) else None
    if code is None:
        match = re.search(r"\(os error (\d+)\)", str(err))
        code = int(match.group(1)) if match else None
    return code if code in _STORAGE_ERRNOS else None


def remove_temporaries(directory: str | Path) -> list[Path]:
    """Delete the temporaries `atomic_path` left in `directory` when its process was killed; returns them.

    Only for a directory that no other process is writing into (a run directory being resumed).
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    stale = [p for p in directory.iterdir() if p.is_dir() and _TEMPORARY.match(p.name)]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return stale
