"""The RLDS converter's pure-Python parts (TensorFlow is an optional extra, absent from CI) and dataset cards."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tests.rlds_fixtures import TASKS, rlds_episodes
from wmeval.cli import main
from wmeval.data.cards import action_layout, load_card
from wmeval.data.lerobot_episodes import load_episodes
from wmeval.data.rlds_convert import (
    PRESETS,
    RLDSLayout,
    episode_language,
    episode_rows,
    episode_success,
    read_rlds,
    step_action,
    write_lerobot,
)
from wmeval.errors import ConfigError, WmevalError

HAS_TFDS = importlib.util.find_spec("tensorflow_datasets") is not None


def test_language_and_success_extraction() -> None:
    steps = [{"language_instruction": b""}, {"language_instruction": np.array(b" open the drawer ")}]
    assert episode_language(steps, "language_instruction") == "open the drawer"
    assert episode_language([{"observation": {"instruction": "wipe"}}], "instruction") == "wipe"
    assert episode_success({"success": np.bool_(False)}, "soar/rlds/success/1.0.0") is False  # metadata wins
    assert episode_success({}, "soar/rlds/success/1.0.0") is True
    assert episode_success(None, "/d/soar/rlds/failure/1.0.0") is False
    assert episode_success({}, "/d/bridge_dataset/1.0.0") is None


def test_dict_actions_concatenate_in_the_named_order() -> None:
    step = {"action": {"world_vector": [1, 2, 3], "rotation_delta": [4, 5, 6], "open_gripper": True}}
    oxe = RLDSLayout(
        cameras={"image": "observation.images.image"},
        fps=5,
        action_parts=["world_vector", "rotation_delta", "open_gripper"],
    )
    np.testing.assert_array_equal(step_action(step, oxe), [1, 2, 3, 4, 5, 6, 1])
    with pytest.raises(ConfigError, match="action_parts"):
        step_action(step, PRESETS["bridge_v2"])


def test_steps_become_rows_and_blank_cameras_skip_the_episode() -> None:
    episode = rlds_episodes(1)[0]
    rows = episode_rows(episode, PRESETS["bridge_v2"])
    assert len(rows) == 10 and rows[0]["task"] == TASKS[0]
    assert rows[0]["observation.images.image_1"].shape == (32, 32, 3) and rows[0]["action"].shape == (7,)
    flags = [bool(r["next.success"][0]) for r in rows]
    assert flags[:-1] == [False] * 9 and flags[-1] == bool(episode["episode_metadata"]["success"])
    for step in episode["steps"]:
        step["observation"]["image_1"] = np.zeros_like(step["observation"]["image_1"])
    assert episode_rows(episode, PRESETS["bridge_v2"]) == []


def test_write_lerobot_round_trips_through_load_episodes(tmp_path) -> None:
    episodes = rlds_episodes(4, seed=1)
    blank = rlds_episodes(1, seed=2)[0]
    for step in blank["steps"]:
        step["observation"]["image_1"][:] = 0
    pairs = [(episodes[0], None), (blank, None), *((ep, "soar/rlds/failure/1.0.0") for ep in episodes[1:])]
    counts = write_lerobot(pairs, tmp_path / "ds", PRESETS["bridge_v2"], repo_id="local/t", use_videos=False)
    assert counts["episodes"] == 4 and counts["skipped_missing_camera"] == 1 and counts["frames"] == 40
    eps = load_episodes(tmp_path / "ds", camera_keys=list(PRESETS["bridge_v2"].cameras.values()))
    assert [ep["task"] for ep in eps] == [TASKS[i % 3] for i in range(4)]
    assert [ep["success"] for ep in eps][0] == bool(episodes[0]["episode_metadata"]["success"])
    with pytest.raises(WmevalError, match="already exists"):
        write_lerobot(pairs, tmp_path / "ds", PRESETS["bridge_v2"], repo_id="local/t", use_videos=False)


@pytest.mark.skipif(
    HAS_TFDS, reason="TensorFlow Datasets is installed: the missing-extra message cannot show"
)
def test_reading_rlds_without_the_extra_names_the_install_command(tmp_path) -> None:
    with pytest.raises(WmevalError, match=r"pip install -e \.\[rlds\]"):
        next(read_rlds([str(tmp_path)], "train"))
    assert main(["convert-rlds", f"rlds_dirs=[{tmp_path}]", f"out={tmp_path / 'out'}"]) == 2


@pytest.mark.skipif(
    not HAS_TFDS,
    reason="a real TFDS fixture needs TensorFlow, which is too heavy for CI: install `pip install -e .[rlds]` "
    "to run it; the converter's pure-Python parts are tested above with RLDS-shaped dicts",
)
def test_a_tfds_builder_written_here_converts(tmp_path) -> None:  # pragma: no cover - needs the rlds extra
    import tensorflow_datasets as tfds

    episodes = rlds_episodes(2)
    features = tfds.features.FeaturesDict(
        {
            "steps": tfds.features.Dataset(
                {
                    "observation": {
                        "image_0": tfds.features.Image(shape=(32, 32, 3)),
                        "image_1": tfds.features.Image(shape=(32, 32, 3)),
                        "state": tfds.features.Tensor(shape=(7,), dtype=np.float32),
                    },
                    "action": tfds.features.Tensor(shape=(7,), dtype=np.float32),
                    "language_instruction": tfds.features.Text(),
                    "is_first": np.bool_,
                    "is_last": np.bool_,
                }
            ),
            "episode_metadata": {"success": np.bool_},
        }
    )
    builder_dir = tmp_path / "builder"
    tfds.dataset_builders.store_as_tfds_dataset(
        name="toy",
        version="1.0.0",
        features=features,
        split_datasets={"train": list(enumerate(episodes))},  # (key, example) pairs
        data_dir=builder_dir,
    )
    dirs = [str(p.parent) for p in builder_dir.rglob("dataset_info.json")]
    counts = write_lerobot(
        read_rlds(dirs, "train"), tmp_path / "ds", PRESETS["bridge_v2"], repo_id="local/t", use_videos=False
    )
    assert counts["episodes"] == 2 and counts["frames"] == 20
    # what TFDS stored and gave back is what the fixture wrote (in the order the shards hold it)
    eps = load_episodes(
        tmp_path / "ds", camera_keys=list(PRESETS["bridge_v2"].cameras.values()), progress=False
    )
    by_task = {ep["task"]: ep for ep in eps}
    assert set(by_task) == {TASKS[0], TASKS[1]}
    for source in episodes:
        ep = by_task[source["steps"][1]["language_instruction"].decode()]
        np.testing.assert_allclose(ep["actions"][:, :2], np.stack([s["action"][:2] for s in source["steps"]]))
        assert ep["success"] == bool(source["episode_metadata"]["success"])
        for rlds_key, camera in PRESETS["bridge_v2"].cameras.items():  # PNG both ways: every pixel survives
            images = np.stack([s["observation"][rlds_key] for s in source["steps"]])
            np.testing.assert_array_equal(ep["camera_frames"][camera], images)


def test_cards_scale_actions_and_refuse_unknown_fields(tmp_path) -> None:
    bridge = action_layout(load_card("bridge_v2"), np.zeros((2, 7)), {}, "action")
    assert load_card("soar")["action"] == load_card("bridge_v2")["action"]  # same_as, not a copy
    raw = np.array([[0.025, 0.0, 0.0, -0.125, 0.0, 0.0, 0.0]], np.float32)
    np.testing.assert_allclose(bridge.normalize(raw), [[0.875, 0, 0, -0.7, 0, 0, 1.0]], atol=1e-6)

    stats = {"action": {"mean": [1.0, 2.0], "std": [2.0, 0.0], "min": [0.0, 0.0], "max": [4.0, 4.0]}}
    plain = tmp_path / "plain.yaml"
    plain.write_text("name: plain\naction:\n  names: [a, b]\n  normalization: mean_std\n")
    layout = action_layout(load_card(plain), np.zeros((2, 2)), stats, "action")
    assert layout.offset == [1.0, 2.0] and layout.scale == [2.0, 1.0]  # constant dims keep scale 1
    plain.write_text("name: plain\naction:\n  names: [a, b]\n")  # default: min/max from meta/stats.json
    layout = action_layout(load_card(plain), np.zeros((2, 2)), stats, "action")
    assert layout.offset == [2.0, 2.0] and layout.scale == [2.0, 2.0]

    for text, field in [("nmae: x\n", "nmae"), ("action:\n  ranges:\n    a: {form: [0, 1]}\n", "form")]:
        plain.write_text(text)
        with pytest.raises(ConfigError, match=field):
            load_card(plain)
    with pytest.raises(ConfigError, match="names 2 action dims"):
        action_layout(load_card("pusht"), np.zeros((2, 7)), {}, "action")
