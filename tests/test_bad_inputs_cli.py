"""Bad input through the CLI: exit code 2 and one line `error: ...` naming the key and the fix (a traceback
only with verbose=true), and nothing half-written. The full catalogue is docs/reliability.md."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from tests.wm_fixtures import record_pusht
from wmeval.cli import main
from wmeval.data.lerobot_episodes import load_episodes
from worldmodel.data.latent_cache import build_latent_cache
from worldmodel.encoders import load_encoder

pytestmark = pytest.mark.usefixtures("one_thread")


def user_error(capsys, *args: str) -> str:
    """Run the CLI, check it failed the way a user error must (progress bars may precede), return the message."""
    code = main(list(args))
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]
    assert code == 2 and last.startswith("error: ") and "Traceback" not in err, err
    return last


def files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.exists() else []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "data=x", "optim.setps=3"], "unknown key 'optim.setps': did you mean optim.steps?"),
        (["record", "episodez=1"], "unknown key 'episodez': did you mean episodes?"),
        (["train"], "data is required: pass data=..."),
        (["rank", "episodes=abc"], "episodes='abc' must be an integer, like its default episodes=16"),
        (["rank", "progress=1"], "progress=1 must be true or false"),
        (["rank", "videos=-1"], "videos=-1 must be an integer >= 0"),
        (["train", "data=x", "optim.lr=fast"], "optim.lr='fast' must be a number"),
        (
            ["train", "data=x", "dit.patch_size=[1,wide]"],
            "must be an integer >= 0 or a list of them, e.g. [1,8]",
        ),
        (["train", "data=x", "optim=3"], "optim holds keys (steps, "),
        (["train", "data=x", "encoder=nope"], "Could not find 'encoder/nope': choose encoder= one of "),
        (
            ["train", "data=x", "dit.size=XXL"],
            "dit.size='XXL' is unknown: choose one of micro, tiny, small, S, B",
        ),
        (["train", "data=x", "dit=S"], "dit holds keys (size, patch_size, "),
        (["train", "data=x", "dit=S"], "set one of them, e.g. dit.size='S'"),
        (["train", "data=x", "resume=true"], "resume=true needs out=DIR"),
        (["trian"], "unknown command 'trian'"),
        (["demo", "world_model=x"], "'world_model' is now 'world_models', a list: pass world_models=[DIR]"),
        (["metrics", "wm=x", "data=x"], "'wm' is now 'world_models', a list: pass world_models=[DIR]"),
        (
            ["metrics", "world_models=[a,b]", "data=x"],
            "metrics measures one world model: pass world_models=[DIR]",
        ),
        (["demo", "data=x"], "the demo records its own episodes; use wmeval rank data=DIR"),
    ],
)
def test_config_mistakes(capsys, tmp_path, monkeypatch, args, message) -> None:
    monkeypatch.chdir(tmp_path)  # a default out= would land here
    assert message in user_error(capsys, *args)
    assert files_under(tmp_path) == []


def test_traceback_only_with_verbose(capsys) -> None:
    assert main(["train", "verbose=true"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error: data is required")


def test_data_that_is_not_a_dataset(capsys, tmp_path) -> None:
    out = tmp_path / "run"
    (tmp_path / "empty").mkdir()
    message = user_error(capsys, "train", f"data={tmp_path / 'empty'}", f"out={out}")
    assert f"data={tmp_path / 'empty'} is not a LeRobotDataset directory" in message
    assert not out.exists()  # the directory the failed command created is removed again
    message = user_error(capsys, "train", f"data={tmp_path / 'nope'}", f"out={out}")
    assert f"data={tmp_path / 'nope'} does not exist: pass a LeRobotDataset directory" in message
    assert not out.exists()


def test_out_that_is_a_file_or_cannot_be_created(capsys, tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("keep")
    assert "is a file, not a directory" in user_error(capsys, "train", "data=x", f"out={blocker}")
    message = user_error(capsys, "train", "data=x", f"out={blocker / 'run'}")
    assert "cannot be created (Not a directory)" in message and "out=DIR" in message
    assert blocker.read_text() == "keep"


def _fails_with(code: int):  # noqa: ANN202
    def fail(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError(code, os.strerror(code))

    return fail


def test_read_only_out(capsys, tmp_path, monkeypatch) -> None:
    """Simulated (tests may run as root, which ignores permissions): the temporary dir cannot be made."""
    monkeypatch.setattr("worldmodel.io.tempfile.mkdtemp", _fails_with(errno.EROFS))
    out = tmp_path / "ds"
    args = ["record", "policy=pusht/idle", "episodes=1", "max_steps=2", "progress=false", f"out={out}"]
    message = user_error(capsys, *args)
    assert f"cannot write {out}: Read-only file system" in message and "out=DIR" in message
    assert files_under(tmp_path) == []


def test_disk_full_while_recording(capsys, tmp_path, monkeypatch) -> None:
    """Simulated: the last file of the dataset hits a full disk after a partial write."""
    write_text = Path.write_text

    def full_disk(self: Path, text: str, *args, **kwargs) -> int:  # noqa: ANN002, ANN003
        if self.name != "wmeval_record.json":
            return write_text(self, text, *args, **kwargs)
        write_text(self, text[:10])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_text", full_disk)
    out = tmp_path / "ds"
    args = ["record", "policy=pusht/idle", "episodes=1", "max_steps=2", "progress=false", f"out={out}"]
    message = user_error(capsys, *args)
    assert f"cannot write {out}: No space left on device" in message and "free disk space" in message
    assert list(tmp_path.iterdir()) == []


def test_latent_cache_of_another_encoder(capsys, tmp_path) -> None:
    data = record_pusht(tmp_path / "data", max_steps=6)
    episodes = load_episodes(data, progress=False)
    cache = tmp_path / "other.h5"
    build_latent_cache(cache, episodes[:1], load_encoder("pixels", image_size=64, factor=4), progress=False)
    out = tmp_path / "run"
    args = ["train", f"data={data}", f"cache={cache}", "heldout_episodes=1", f"out={out}"]
    message = user_error(capsys, *args)
    assert f"latent cache {cache}" in message and "rebuild the cache with this encoder" in message
    assert files_under(out) == []
