"""Which LeRobotDataset a command reads, and with which keys: `data=` (a directory or a Hub id) plus the keys
of `conf/dataset.yaml` (cameras, action, state, card), shared by train, train-adapter, train-encoder, metrics
and rank.

Hub ids are read from LeRobot's local cache (`$HF_LEROBOT_HOME/<id>`) and never downloaded at run time; the
error says how to fetch one. Several cameras become one multi-view frame: the views side by side along the
width (view 0 leftmost), the layout a multi-view `WorldModel` takes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from wmeval.data.cards import action_layout, load_card
from wmeval.data.lerobot_episodes import load_episodes
from wmeval.errors import ConfigError
from worldmodel.data.actions import ActionLayout

HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def resolve_data(data: str | Path) -> Path:
    """A local LeRobotDataset directory for `data`: the path itself, or a Hub id's copy in LeRobot's cache."""
    path = Path(str(data)).expanduser()
    if path.is_dir() or not HUB_ID.match(str(data)):
        return path
    from lerobot.utils.constants import HF_LEROBOT_HOME

    cached = HF_LEROBOT_HOME / str(data)
    if cached.is_dir():
        return cached
    raise ConfigError(
        f"data={data} is neither a local directory nor a Hub id in LeRobot's cache ({cached}); nothing is "
        f'downloaded at run time. Fetch it once with: python -c "from lerobot.datasets.lerobot_dataset import '
        f"LeRobotDataset; LeRobotDataset('{data}')\" (or pass data=DIR)"
    )


def camera_list(cfg: Any) -> list[str]:
    """`camera_keys` when given (one or several), else the single `camera_key`."""
    keys = cfg.get("camera_keys")
    return [str(k) for k in keys] if keys else [str(cfg.camera_key)]


def load_data(cfg: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Episodes of `cfg.data` with the configured keys; several cameras also give tiled `frames`."""
    cameras = camera_list(cfg)
    episodes = load_episodes(
        resolve_data(cfg.data),
        camera_key=str(cfg.camera_key),
        camera_keys=cameras if cfg.get("camera_keys") else None,
        action_key=str(cfg.action_key),
        state_key=cfg.get("state_key"),
        **kwargs,
    )
    if len(cameras) > 1 and kwargs.get("with_frames", True):
        for ep in episodes:
            ep["frames"] = tile_views([ep["camera_frames"][k] for k in cameras])
    return episodes


def view_episodes(episodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One episode per camera view (`frames` = that view): encoders and adapters learn every view alike."""
    return [{**ep, "frames": frames} for ep in episodes for frames in ep["camera_frames"].values()]


def tile_views(views: list[np.ndarray]) -> np.ndarray:
    """Per-camera frames uint8 `[T, H, W, 3]` -> `[T, H, V * W, 3]`; other sizes are resized to the first's."""
    import cv2

    h, w = views[0].shape[1:3]
    fitted = [
        v
        if v.shape[1:3] == (h, w)
        else np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in v])
        for v in views
    ]
    return np.concatenate(fitted, axis=2)


def dataset_stats(data: str | Path) -> dict[str, Any]:
    """meta/stats.json of the dataset (LeRobot's per-feature min/max/mean/std), or {} when it has none."""
    path = resolve_data(data) / "meta" / "stats.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def layout_from_config(cfg: Any, train_actions: np.ndarray) -> ActionLayout:
    """The action layout of a training run: the dataset card's when `card=` is set, else `action_norm`
    (fixed offset/scale, or the training actions' range: the behaviour before cards existed)."""
    norm = cfg.action_norm
    if cfg.get("card"):
        if norm.offset is not None or norm.scale is not None:
            raise ConfigError(
                "set either card= or action_norm.offset/scale, not both: the card scales actions"
            )
        card = load_card(cfg.card)
        return action_layout(card, train_actions, dataset_stats(cfg.data), str(cfg.action_key))
    lo, hi = train_actions.min(axis=0), train_actions.max(axis=0)
    offset = np.broadcast_to(
        np.asarray(norm.offset if norm.offset is not None else (lo + hi) / 2, np.float32), lo.shape
    )
    span = np.where(hi > lo, (hi - lo) / 2, 1.0)  # a constant dimension keeps its units
    scale = np.broadcast_to(np.asarray(norm.scale if norm.scale is not None else span, np.float32), lo.shape)
    if np.any(scale <= 0):
        raise ConfigError(f"action_norm.scale must be > 0 in every dimension, got {scale.tolist()}")
    return ActionLayout.affine(offset, scale)
