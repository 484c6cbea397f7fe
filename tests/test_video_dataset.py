"""A video-backed LeRobotDataset (the usual Hub layout), encoded by LeRobot itself, read by the fast PyAV path.

`wmeval record storage=video` writes through `LeRobotDataset.add_frame` / `save_episode`, so the MP4 files,
their timestamps and the episode metadata are LeRobot's own. The reader must give the very frames LeRobot's
own decoder gives, episode by episode, and `wmeval train` must train on them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.wm_fixtures import TINY_TRAIN
from wmeval.cli import main
from wmeval.data.lerobot_episodes import dataset_info, load_episodes, open_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def video_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("video") / "ds"
    args = ["record", "env=pusht", "policy=pusht/expert", "episodes=2", "max_steps=6", "storage=video"]
    assert main([*args, "seed=2", "progress=false", f"out={out}"]) == 0
    return out


def test_the_reader_gives_lerobots_own_decoded_frames(video_dataset):
    info = dataset_info(video_dataset)
    assert info["features"]["observation.image"]["dtype"] == "video"
    assert list(video_dataset.glob("videos/observation.image/*/*.mp4"))
    episodes = load_episodes(video_dataset, progress=False)
    dataset = open_dataset(video_dataset)
    assert [len(e["frames"]) for e in episodes] == [6, 6] and dataset.num_frames == 12  # a row per step
    index = 0
    for episode in episodes:
        for frame in episode["frames"]:
            item = dataset[index]
            index += 1
            theirs = (item["observation.image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            np.testing.assert_array_equal(frame, theirs)
        assert np.abs(episode["frames"][-1].astype(int) - episode["frames"][0]).max() > 0  # the agent moved


def test_train_reads_the_video_dataset(video_dataset, tmp_path):
    out = tmp_path / "run"
    args = ["train", f"data={video_dataset}", f"out={out}", *TINY_TRAIN, "optim.steps=2"]
    assert main(args) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    step, loss = summary["loss_history"][-1]
    assert step == 2 and np.isfinite(loss)
    assert (out / "model" / "dit.safetensors").is_file()
