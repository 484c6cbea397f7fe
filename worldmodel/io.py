"""Crash-safe output for the world-model library (it may not import `wmeval.io`, so it keeps its own).

Everything is written under a temporary name beside the target and renamed into place only when complete,
so a reader never sees a half-written checkpoint or cache.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from worldmodel.errors import InputError


@contextlib.contextmanager
def atomic_path(path: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path` (file or directory); move it onto `path` if the block succeeds.

    On any error the temporary is removed and an existing `path` is left untouched. With `overwrite=False`
    an existing non-empty target is refused up front, so nobody loses a trained model by accident.
    """
    path = Path(path)
    if not overwrite and path.exists() and (path.is_file() or any(path.iterdir())):
        raise InputError(f"{path} already exists: choose another path or pass overwrite=True")
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
