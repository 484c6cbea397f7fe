"""Two-process torchrun launches (gloo on CPU) for the multi-process tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

GLOO_TEARDOWN_ABORT = "terminate called without an active exception"


def torchrun(args: list[str], port: int, outputs: Path, **kwargs: Any) -> subprocess.CompletedProcess:
    """`python -m torch.distributed.run --nproc_per_node=2 --master_port=PORT ARGS`, output captured.

    gloo's CPU teardown now and then aborts a rank after the run's work is done (about one run in 50 on a
    loaded 2-core machine, outputs already written); then `outputs` is removed and the run repeated once,
    so these tests check the project's code rather than that race.
    """
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={port}",
        *args,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)
    if result.returncode != 0 and GLOO_TEARDOWN_ABORT in result.stderr:
        shutil.rmtree(outputs, ignore_errors=True)
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)
    return result


def failure(result: subprocess.CompletedProcess) -> str:
    """What a failed launch printed: the ranks' own errors come first in stderr, the launcher's summary last."""
    return result.stdout[-2000:] + result.stderr[:4000]
