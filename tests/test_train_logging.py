"""What a training run leaves besides its model: a run log, a loss-curve PNG, and (when asked) a tracker's
record; a missing tracker package is a one-line error before any work."""

from __future__ import annotations

import sys

import matplotlib.image
import pytest

from tests.wm_fixtures import TINY_TRAIN, tiny_lerobot_dataset
from wmeval.cli import main
from wmeval.logs import LOG_FILE

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_lerobot_dataset(tmp_path_factory.mktemp("data") / "ds", [12, 12, 12])


def test_train_writes_its_log_a_loss_curve_and_an_offline_wandb_run(data, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run"
    args = [
        "train",
        f"data={data}",
        f"out={out}",
        "optim.steps=4",
        "optim.log_every=1",
        "optim.checkpoint_every=2",
    ]
    assert main([*args, "logger=wandb", *TINY_TRAIN]) == 0
    image = matplotlib.image.imread(out / "loss.png")
    assert image.ndim == 3 and image.shape[0] > 100
    log = (out / LOG_FILE).read_text()
    assert "wmeval train data=" in log.splitlines()[0]  # the command line heads the log
    assert "step 2: loss" in log and "psnr_model" in log
    (run,) = (out / "wandb").glob("offline-run-*/run-*.wandb")
    record = run.read_bytes()
    assert b"heldout/psnr_model" in record and b"loss" in record and b"lr" in record


def test_a_missing_tracker_is_a_one_line_error_and_leaves_no_run(data, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    out = tmp_path / "run"
    assert main(["train", f"data={data}", f"out={out}", "logger=tensorboard", *TINY_TRAIN]) == 2
    assert "pip install 'wmeval[tensorboard]'" in capsys.readouterr().err.strip().splitlines()[-1]
    assert not out.exists()  # the directory held only its run log: removed with it


def test_tensorboard_gets_the_losses(data, tmp_path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    args = ["train", f"data={data}", f"out={out}", "optim.steps=2", "optim.log_every=1"]
    assert main([*args, "logger=tensorboard", *TINY_TRAIN]) == 0
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss")] == [1, 2]
