"""World models on the Hub: a saved model laid into a Hugging Face cache loads by id offline and imagines the
same frames; it carries a model card; `push_to_hub` uploads the folder with its card. Nothing touches the network."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch

from tests.wm_fixtures import IMAGE, tiny_world_model
from worldmodel import WorldModel
from worldmodel.errors import MissingWeightsError

REPO = "someone/tiny-world-model"
COMMIT = "0123456789abcdef0123456789abcdef01234567"

pytestmark = pytest.mark.usefixtures("offline_hub", "one_thread")


def lay_into_hub_cache(folder: Path, repo_id: str, commit: str, refs: tuple[str, ...] = ("main",)) -> Path:
    """Put `folder` into the Hugging Face cache as `repo_id` at `commit`, in the layout huggingface_hub writes
    (blobs named by content hash, snapshot files linking to them, refs naming the commit)."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    repo_dir = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model")
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        blob = repo_dir / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo_dir / "snapshots" / commit / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    for ref in refs:
        (repo_dir / "refs").mkdir(exist_ok=True)
        (repo_dir / "refs" / ref).write_text(commit)
    return repo_dir


def _imagine(wm: WorldModel) -> torch.Tensor:
    start = torch.rand(2, 2, 3, IMAGE, IMAGE, generator=torch.Generator().manual_seed(0))
    wm.reset(start, seed=5)
    return wm.step(torch.rand(2, 3, 2, generator=torch.Generator().manual_seed(1)) * 32)


def test_a_cached_hub_id_loads_offline_and_imagines_the_same_frames(tmp_path) -> None:
    from huggingface_hub import scan_cache_dir

    wm = tiny_world_model()
    wm.config.meta = {
        "data": "someone/pusht-recording",
        "steps": 7,
        "heldout": {"psnr_model": 30.5},
        "fidelity": {"spearman": 0.75, "mmrv": 0.05},
    }
    folder = wm.save_pretrained(tmp_path / "model")
    repo_dir = lay_into_hub_cache(folder, REPO, COMMIT, refs=("main", "v1"))
    cached = scan_cache_dir(repo_dir.parent)
    assert not cached.warnings and [r.repo_id for r in cached.repos] == [REPO]  # huggingface_hub reads it

    expected = _imagine(wm)
    for spec, revision in ((REPO, None), (f"{REPO}@v1", None), (REPO, COMMIT)):
        loaded = WorldModel.from_pretrained(spec, revision=revision)
        assert loaded.directory == repo_dir / "snapshots" / COMMIT
        assert torch.equal(_imagine(loaded), expected)

    card = (repo_dir / "snapshots" / COMMIT / "README.md").read_text()
    assert (
        card.startswith("---\n")
        and "library_name: wmeval" in card
        and "| data | someone/pusht-recording |" in card
    )
    assert "## Training" in card and "psnr_model | 30.5" in card
    assert "## Policy-ranking fidelity" in card and "| spearman | 0.75 |" in card


def test_rank_resolves_a_cached_hub_id_to_a_named_model(tmp_path) -> None:
    from wmeval.ranking.inputs import resolve_world_models

    folder = tiny_world_model().save_pretrained(tmp_path / "model")
    lay_into_hub_cache(folder, REPO, COMMIT)
    models = resolve_world_models([REPO], baseline=True, device="cpu")
    assert list(models) == ["tiny-world-model", "copy_last"]
    assert models["tiny-world-model"].directory.name == COMMIT


def test_an_uncached_hub_id_offline_names_the_id_and_the_fix() -> None:
    with pytest.raises(
        MissingWeightsError, match=f"'{REPO}' at revision v2 is not in the local.*--revision v2"
    ):
        WorldModel.from_pretrained(f"{REPO}@v2")


def test_push_to_hub_uploads_the_saved_folder_with_its_card(tmp_path, monkeypatch) -> None:
    from huggingface_hub import HfApi

    calls: dict[str, object] = {}

    def create_repo(self, repo_id, **kwargs):  # noqa: ANN001, ANN003, ANN202
        calls["created"] = repo_id

    def upload_folder(self, *, repo_id, folder_path, revision=None, **kwargs):  # noqa: ANN001, ANN003, ANN202
        root = Path(folder_path)
        calls["files"] = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        calls["card"] = (root / "README.md").read_text()
        calls["revision"] = revision
        return "https://huggingface.co/someone/tiny-world-model/commit/abc"

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    url = tiny_world_model().push_to_hub(REPO, revision="v1")
    assert url.endswith("/commit/abc") and calls["created"] == REPO and calls["revision"] == "v1"
    assert {"README.md", "world_model.json", "dit.safetensors"} <= set(calls["files"])
    assert f"# {REPO}" in calls["card"]


def test_ranking_and_metrics_by_hub_id_match_the_directory(tmp_path) -> None:
    """`wmeval rank` (recorded behaviours) and `wmeval metrics` give the same numbers by id as by directory."""
    import json

    from tests.rlds_fixtures import rlds_episodes
    from tests.test_own_data import KEYS, TINY
    from wmeval.cli import main
    from wmeval.data.rlds_convert import PRESETS, write_lerobot

    data = tmp_path / "widowx"
    write_lerobot(
        [(ep, None) for ep in rlds_episodes(12, seed=0)],
        data,
        PRESETS["bridge_v2"],
        repo_id="local/widowx",
        use_videos=False,
    )
    assert main(["train", f"data={data}", f"out={tmp_path / 'train'}", *KEYS, *TINY]) == 0
    lay_into_hub_cache(tmp_path / "train" / "model", REPO, COMMIT)

    def ranking(spec: str, out: str) -> dict:
        args = ["rank", f"data={data}", f"world_models=[{spec}]", f"out={tmp_path / out}", *KEYS]
        assert main([*args, "group_by=task", "horizon=2", "n_boot=20", "progress=false"]) == 0
        return json.loads((tmp_path / out / "report.json").read_text())["ranking"]

    assert ranking(REPO, "by_id") == ranking(str(tmp_path / "train" / "model"), "by_dir")
    args = ["metrics", f"world_models=[{REPO}]", f"data={data}", f"out={tmp_path / 'metrics'}", *KEYS]
    assert (
        main([*args, "metrics=[video]", "video.metrics=[psnr]", "episodes=2", "horizon=2", "progress=false"])
        == 0
    )
    report = json.loads((tmp_path / "metrics" / "metrics.json").read_text())
    assert report["run"]["world_model"]["path"] == REPO
