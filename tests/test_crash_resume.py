"""Crash safety: training killed with SIGKILL at random moments (mid-step or mid-checkpoint) resumes from its
last complete checkpoint and ends with exactly the parameters of an uninterrupted run; no file on disk is
ever a half-written checkpoint; and every file the packages write goes through a temporary name."""

from __future__ import annotations

import ast
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.source_tree import ancestors, calls, enclosing, parse_sources
from tests.train_script import main as train_tiny
from worldmodel.training.checkpoint import checkpoints

ROOT = Path(__file__).resolve().parents[1]
STEPS = 48  # checkpoints every 4 steps (tests/train_script.py)
# Writers handed a temporary path by a caller that holds the `atomic_path`.
WRITE_INTO_A_TEMPORARY = {
    ("policies/pusht/state_estimator.py", "save_pretrained"),  # `wmeval train-estimator` passes its temporary
    (
        "wmeval/data/lerobot_writer.py",
        "write_rollouts",
    ),  # `wmeval record` writes inside the dataset's temporary
    ("wmeval/report/rerun.py", "open_recording"),  # the `atomic_path` sits on the session's exit stack
}


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def start_training(out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tests.train_script", str(out), str(STEPS)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def newest_step(ckpt_dir: Path) -> int:
    found = checkpoints(ckpt_dir)
    return int(found[-1].name.removeprefix("step_")) if found else 0


def writing_checkpoint(ckpt_dir: Path) -> bool:
    return ckpt_dir.is_dir() and any(p.name.startswith(".step_") for p in ckpt_dir.iterdir())


def assert_checkpoints_complete(ckpt_dir: Path) -> None:
    """Every checkpoint a reader can see has all its files, and each one parses."""
    for ckpt in checkpoints(ckpt_dir):
        assert json.loads((ckpt / "state.json").read_text())["step"] == int(ckpt.name.removeprefix("step_"))
        for name in ("model", "ema", "trainer"):
            assert load_file(ckpt / f"{name}.safetensors"), ckpt / name


def kill_at_a_random_moment(out: Path, rng: random.Random, mid_write: bool) -> bool:
    """Start training, wait until it has made progress (or is writing a checkpoint), then SIGKILL it.

    Returns whether the kill interrupted it (rather than finding it finished)."""
    ckpt_dir = out / "checkpoints"
    before = newest_step(ckpt_dir)
    proc = start_training(out)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if (mid_write and writing_checkpoint(ckpt_dir)) or newest_step(ckpt_dir) > before:
            break
        time.sleep(0.001)
    if not mid_write:
        time.sleep(rng.uniform(0.0, 0.1))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode in (0, -signal.SIGKILL), proc.stderr.read().decode()[-2000:]
    return proc.returncode == -signal.SIGKILL


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path) -> None:
    out = tmp_path / "killed"
    rng = random.Random(0)
    interrupted = 0
    for mid_write in (True, False, True, False):
        interrupted += kill_at_a_random_moment(out, rng, mid_write)
        assert_checkpoints_complete(out / "checkpoints")
    assert interrupted >= 3
    proc = start_training(out)
    assert proc.wait() == 0, proc.stderr.read().decode()[-2000:]
    assert_checkpoints_complete(out / "checkpoints")
    assert list(out.rglob(".*")) == []  # what the killed runs were writing was cleared on resume

    train_tiny(str(tmp_path / "straight"), steps=STEPS)
    killed = checkpoints(out / "checkpoints")[-1]
    straight = checkpoints(tmp_path / "straight" / "checkpoints")[-1]
    assert killed.name == straight.name == f"step_{STEPS:08d}"
    for name in ("model", "ema", "trainer"):
        a, b = load_file(killed / f"{name}.safetensors"), load_file(straight / f"{name}.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_every_file_is_written_through_a_temporary() -> None:
    """A direct write (not inside `with atomic_path(...)`) would leave a half-written file when killed."""
    direct = []
    for path, tree in parse_sources().items():
        parents = ancestors(tree)
        for _, call in calls(tree):
            if not writes_a_file(call):
                continue
            around = list(enclosing(call, parents))
            function = next((n.name for n in around if isinstance(n, ast.FunctionDef)), None)
            atomic = any(
                isinstance(n, ast.With) and any("atomic_path" in ast.unparse(i.context_expr) for i in n.items)
                for n in around
            )
            if not atomic and (path, function) not in WRITE_INTO_A_TEMPORARY:
                direct.append(f"{path}:{call.lineno} {ast.unparse(call)[:60]}")
    assert direct == []


def writes_a_file(call: ast.Call) -> bool:
    """Path/stream writes, safetensors/torch/numpy saves, and `open`/`h5py.File` in a writing mode.

    A bare `write_text(...)` / `write_json(...)` is `wmeval.io`'s, which is atomic itself."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr in (
        "write_text",
        "write_bytes",
        "save",
        "savefig",
        "mimsave",
    ):
        return True
    if ast.unparse(func) == "save_file":
        return True
    mode = (
        call.args[1]
        if len(call.args) > 1
        else next((k.value for k in call.keywords if k.arg == "mode"), None)
    )
    writing = isinstance(mode, ast.Constant) and bool(set(str(mode.value)) & set("wax+"))
    return ast.unparse(func) in ("open", "h5py.File") and writing
