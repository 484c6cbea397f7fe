"""RLDS / TFDS episodes (Bridge V2, SOAR, any Open X-Embodiment-style dataset) -> a local LeRobotDataset v3.

Reading RLDS needs TensorFlow Datasets, which is heavy and optional (`pip install -e .[rlds]`); it is imported
only by `read_rlds`. Everything else here is plain Python on the numpy dicts TFDS yields, so it is tested
without TensorFlow: a step is `{"observation": {<image keys>, "state"}, "action", "language_instruction",
"is_first", "is_last", ...}` and an episode is `{"steps": [step, ...], "episode_metadata": {...}}`.

Row layout: RLDS step t holds observation t and the action taken at t, which is LeRobot's row t. The language
instruction becomes LeRobot's per-frame `task`; an episode's success (SOAR: `episode_metadata/success` when
present, else the builder it came from, `success/` or `failure/`) is written as `next.success` on its last row,
so `load_episodes` reads it back as the episode's flag. Episodes missing a requested camera (Bridge V2 has 1-4
cameras per episode) are skipped and counted, since a multi-view model needs every view.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wmeval.errors import ConfigError, WmevalError
from wmeval.io import atomic_path


@dataclass
class RLDSLayout:
    """Where things are in one RLDS dataset's steps, and what the LeRobot features are called."""

    cameras: dict[str, str]  # RLDS observation image key -> LeRobot camera key
    fps: float
    state: str | None = "state"  # RLDS observation key of the proprioceptive state (None: none)
    action: str = "action"  # step key of the action (a vector, or a dict of vectors concatenated)
    action_parts: list[str] = field(default_factory=list)  # dict actions: these keys, concatenated in order
    language: str = "language_instruction"  # step key (or observation key) of the instruction


PRESETS: dict[str, RLDSLayout] = {
    # rail-berkeley bridge_dataset 1.0.0 (BridgeData V2): 7-d action [xyz delta, rpy delta, gripper open 0..1]
    "bridge_v2": RLDSLayout(
        cameras={"image_0": "observation.images.image_0", "image_1": "observation.images.image_1"}, fps=5.0
    ),
    # rail-berkeley soar_dataset 1.0.0 (builders success/ and failure/): same robot and action layout
    "soar": RLDSLayout(cameras={"image_0": "observation.images.image_0"}, fps=5.0),
}


def as_text(value: Any) -> str:
    """An RLDS string (bytes, numpy bytes or str) as str."""
    if isinstance(value, np.ndarray):
        value = value.item() if value.size == 1 else b""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def episode_language(steps: list[Mapping[str, Any]], key: str) -> str:
    """The episode's instruction: the first non-empty one among its steps (step level, else observation)."""
    for step in steps:
        raw = step.get(key, step.get("observation", {}).get(key, ""))
        text = as_text(raw).strip()
        if text:
            return text
    return ""


def episode_success(metadata: Mapping[str, Any] | None, source: str | Path | None) -> bool | None:
    """SOAR's success flag: `episode_metadata/success`, else the builder directory (`success/` / `failure/`)."""
    if metadata and "success" in metadata:
        return bool(np.asarray(metadata["success"]).reshape(-1)[0])
    parts = Path(str(source)).parts if source else ()
    if "success" in parts:
        return True
    if "failure" in parts:
        return False
    return None


def step_action(step: Mapping[str, Any], layout: RLDSLayout) -> np.ndarray:
    """The step's action as float32 [A]; dict actions (OXE `bridge`: world_vector, rotation_delta, ...) concatenate."""
    action = step[layout.action]
    if isinstance(action, Mapping):
        if not layout.action_parts:
            raise ConfigError(
                f"RLDS action is a dict ({', '.join(action)}): name its parts with action_parts=[...]"
            )
        action = np.concatenate([np.asarray(action[k], np.float32).reshape(-1) for k in layout.action_parts])
    return np.asarray(action, np.float32).reshape(-1)


def episode_rows(
    episode: Mapping[str, Any], layout: RLDSLayout, source: str | Path | None = None
) -> list[dict]:
    """LeRobot frames of one RLDS episode, or [] when a requested camera is missing (blank) in it."""
    steps = list(episode["steps"])
    if not steps:
        return []
    obs0 = steps[0]["observation"]
    for key in layout.cameras:
        if key not in obs0 or not np.asarray(obs0[key]).any():
            return []
    task = episode_language(steps, layout.language)
    success = episode_success(episode.get("episode_metadata"), source)
    rows = []
    for t, step in enumerate(steps):
        obs = step["observation"]
        row: dict[str, Any] = {lr: np.asarray(obs[k], np.uint8) for k, lr in layout.cameras.items()}
        if layout.state:
            row["observation.state"] = np.asarray(obs[layout.state], np.float32).reshape(-1)
        row["action"] = step_action(step, layout)
        row["next.success"] = np.array([bool(success) and t == len(steps) - 1])
        row["task"] = task
        rows.append(row)
    return rows


def features_of(row: Mapping[str, Any], layout: RLDSLayout, use_videos: bool) -> dict[str, dict]:
    """LeRobot feature spec from one converted row."""
    features: dict[str, dict] = {}
    for key in layout.cameras.values():
        features[key] = {
            "dtype": "video" if use_videos else "image",
            "shape": tuple(row[key].shape),
            "names": ["height", "width", "channels"],
        }
    for key in ("observation.state", "action"):
        if key in row:
            features[key] = {"dtype": "float32", "shape": tuple(row[key].shape), "names": None}
    features["next.success"] = {"dtype": "bool", "shape": (1,), "names": None}
    return features


def write_lerobot(
    episodes: Iterable[tuple[Mapping[str, Any], str | None]],
    out: str | Path,
    layout: RLDSLayout,
    *,
    repo_id: str,
    use_videos: bool = True,
    max_episodes: int | None = None,
) -> dict[str, Any]:
    """Convert `(episode, source)` pairs into a LeRobotDataset at `out` (written aside, renamed when complete)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    if Path(out).exists():
        raise WmevalError(f"out={out} already exists: choose a new directory (a conversion never merges)")
    counts = {"episodes": 0, "frames": 0, "skipped_missing_camera": 0, "success": 0, "labelled": 0}
    with atomic_path(out) as tmp:
        dataset = None
        for episode, source in episodes:
            if max_episodes is not None and counts["episodes"] >= max_episodes:
                break
            rows = episode_rows(episode, layout, source)
            if not rows:
                counts["skipped_missing_camera"] += 1
                continue
            if dataset is None:
                features = features_of(rows[0], layout, use_videos)
                dataset = LeRobotDataset.create(
                    repo_id=repo_id, fps=int(layout.fps), features=features, root=tmp, use_videos=use_videos
                )
            for row in rows:
                dataset.add_frame(row)
            dataset.save_episode()
            success = episode_success(episode.get("episode_metadata"), source)
            counts["episodes"] += 1
            counts["frames"] += len(rows)
            counts["labelled"] += success is not None
            counts["success"] += bool(success)
        if dataset is None:
            raise WmevalError(
                "no episode was converted: check the RLDS path and that it has the requested cameras"
            )
        dataset.finalize()
    return counts


def read_rlds(builder_dirs: list[str], split: str) -> Iterator[tuple[dict[str, Any], str]]:
    """`(episode, builder_dir)` as numpy dicts from TFDS builder directories (needs `pip install -e .[rlds]`)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise WmevalError(
            "reading RLDS needs TensorFlow Datasets, an optional extra: pip install -e .[rlds]"
        ) from err
    for builder_dir in builder_dirs:
        if not Path(builder_dir).is_dir():
            raise ConfigError(
                f"rlds_dirs: {builder_dir} is not a directory (a TFDS builder dir with dataset_info.json)"
            )
        dataset = tfds.builder_from_directory(builder_dir).as_dataset(split=split)
        for episode in dataset:
            steps = list(tfds.as_numpy(episode["steps"]))
            meta = tfds.as_numpy(episode["episode_metadata"]) if "episode_metadata" in episode else {}
            yield {"steps": steps, "episode_metadata": meta}, builder_dir
