"""Bad input through the Python API: one clear error naming the field and the fix, and nothing half-written.

The catalogue with every row (these tests and the older ones they complement) is docs/reliability.md.
"""

from __future__ import annotations

import ast
import errno
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.train_script import main as train_tiny
from tests.wm_fixtures import tiny_lerobot_dataset, tiny_world_model
from wmeval.data.lerobot_episodes import load_episodes
from wmeval.errors import WmevalError
from wmeval.io import write_json
from worldmodel import WorldModel
from worldmodel.data.latent_cache import build_latent_cache
from worldmodel.encoders import load_encoder
from worldmodel.errors import InputError, OutputError
from worldmodel.training.checkpoint import checkpoints

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- checkpoints ---------------------------------------------------------------------------------------------
def test_dit_weights_of_another_architecture_are_refused(tmp_path) -> None:
    tiny_world_model().save_pretrained(tmp_path / "a")
    tiny_world_model(hidden_size=16).save_pretrained(tmp_path / "b")
    shutil.copy(tmp_path / "b" / "dit.safetensors", tmp_path / "a" / "dit.safetensors")
    with pytest.raises(InputError, match="dit.safetensors does not match.*another architecture"):
        WorldModel.from_pretrained(tmp_path / "a")


def test_world_model_of_another_format_version_is_refused(tmp_path) -> None:
    tiny_world_model().save_pretrained(tmp_path / "wm")
    config = tmp_path / "wm" / "world_model.json"
    config.write_text(config.read_text().replace('"format_version": 1', '"format_version": 99'))
    with pytest.raises(InputError, match="format_version 99, expected 1"):
        WorldModel.from_pretrained(tmp_path / "wm")


def test_truncated_training_checkpoint_names_the_file_and_the_fix(tmp_path) -> None:
    train_tiny(str(tmp_path), steps=4)
    weights = checkpoints(tmp_path / "checkpoints")[-1] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(InputError, match="step_00000004.*cannot be read.*delete .*step_00000004 to resume"):
        train_tiny(str(tmp_path), steps=8)


def test_resuming_with_another_architecture_is_refused(tmp_path) -> None:
    train_tiny(str(tmp_path), steps=4)
    with pytest.raises(
        InputError, match="another (model|architecture).*resume with the settings it was trained with"
    ):
        train_tiny(str(tmp_path), steps=8, hidden_size=16)


# ---- datasets ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("datasets")
    return {
        "good": tiny_lerobot_dataset(root / "good", [3, 3]),
        "single_frame": tiny_lerobot_dataset(root / "single_frame", [3, 1]),
        "empty": tiny_lerobot_dataset(root / "empty", []),
    }


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("good", {"action_key": "action.joints"}, r"action_key='action.joints' is not in data=.*keys are"),
        ("good", {"camera_key": "observation.images.top"}, r"camera_key='observation.images.top' is not in"),
        ("empty", {}, "holds no episodes: record some first"),
        ("single_frame", {}, "episode 1 .* has 1 frame.*at least 2 are needed: drop that episode"),
    ],
)
def test_dataset_without_keys_empty_or_with_a_single_frame(datasets, name, kwargs, message) -> None:
    with pytest.raises(WmevalError, match=message):
        load_episodes(datasets[name], progress=False, **kwargs)


def test_a_directory_that_is_not_a_dataset(tmp_path) -> None:
    with pytest.raises(WmevalError, match="not a LeRobotDataset directory.*wmeval record"):
        load_episodes(tmp_path, progress=False)


# ---- disk full while writing (simulated: the low-level writer fails after writing part of the file) ------------
def _disk_full(path: str | os.PathLike) -> None:
    Path(path).write_bytes(b"\0" * 64)  # a partial file, as a real full disk leaves
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def _save_model(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setattr("worldmodel.world_model.save_file", lambda tensors, path, **kw: _disk_full(path))
    tiny_world_model().save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def _save_checkpoint(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setattr(
        "worldmodel.training.checkpoint.save_file", lambda tensors, path, **kw: _disk_full(path)
    )
    train_tiny(str(tmp_path), steps=4)
    return tmp_path / "checkpoints" / "step_00000004"


def _build_cache(tmp_path: Path, monkeypatch) -> Path:
    import h5py

    def full(group, name, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(h5py.Group, "create_dataset", full)
    episode = {"frames": np.zeros((3, 16, 16, 3), np.uint8), "actions": np.zeros((3, 2), np.float32)}
    build_latent_cache(tmp_path / "latents.h5", [episode], load_encoder("pixels", image_size=16, factor=4))
    return tmp_path / "latents.h5"


def _write_report(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setattr(Path, "write_text", lambda self, text, **kw: _disk_full(self))
    write_json(tmp_path / "report.json", {"ranking": {}})
    return tmp_path / "report.json"


@pytest.mark.parametrize("write", [_save_model, _save_checkpoint, _build_cache, _write_report])
def test_disk_full_names_the_path_and_leaves_nothing_behind(tmp_path, monkeypatch, write) -> None:
    with pytest.raises(OutputError, match="cannot write .*: No space left on device.*free disk space"):
        write(tmp_path, monkeypatch)
    leftovers = [p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == [], leftovers


def test_disk_full_keeps_the_previous_version(tmp_path, monkeypatch) -> None:
    tiny_world_model(seed=1).save_pretrained(tmp_path / "model")
    before = (tmp_path / "model" / "dit.safetensors").read_bytes()
    with pytest.raises(OutputError):
        _save_model(tmp_path, monkeypatch)
    assert (tmp_path / "model" / "dit.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_the_catalogue_names_existing_tests() -> None:
    """Every row of the bad-input table in docs/reliability.md points at a test that exists."""
    root = Path(__file__).resolve().parents[1]
    doc = (root / "docs" / "reliability.md").read_text()
    rows = [
        line for line in doc.split("## Bad input")[1].split("\n## ")[0].splitlines() if line.startswith("| ")
    ]
    refs = [re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", row) for row in rows[2:]]
    assert len(refs) >= 25 and all(refs)
    for path, name in (ref for row in refs for ref in row):
        tree = ast.parse((root / path).read_text())
        assert name in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, f"{path}::{name}"
