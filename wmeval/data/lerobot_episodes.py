"""Read a recorded LeRobotDataset v3 back into per-episode numpy arrays, fast.

World-model training and the latent cache want whole episodes as arrays, not LeRobot's per-frame items, so this
reads the parquet files with pyarrow and decodes frames in bulk: embedded PNGs with OpenCV, videos sequentially
with PyAV (one pass per file, no seeking). Episode metadata (policy, seed, success) comes from wmeval's sidecar
`meta/wmeval_episodes.jsonl` when present, else from the task string and `next.success`.

Two row layouts are read alike. LeRobot's (wmeval's recordings since it adopted it): T rows for T steps, row t
= observation t and the action taken at it. wmeval's older one: T + 1 rows, the last (`is_final_observation`)
holding the final observation and a never-executed repeat of the last action. In both, `actions[t]` is taken
at `frames[t]` and leads to `frames[t + 1]` where that frame exists. Columns an older recording of a task lacks
are derived from the ones it has, as the task declares (`wmeval.envs.registry.recording_upgrades`, keyed by the
dataset's `robot_type`): an old PushT recording reads with the 16-d keypoints as `observation.environment_state`
and its 5-d state as `observation.pose`, like a new one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from wmeval.envs.registry import Upgrades, recording_upgrades
from wmeval.errors import WmevalError

EPISODES_FILE = "meta/wmeval_episodes.jsonl"
#: the older wmeval layout's marker column (T + 1 rows, the last holding the final observation)
FINAL_OBSERVATION = "is_final_observation"


def open_dataset(data: str | Path, repo_id: str | None = None) -> Any:
    """A LeRobotDataset from a local directory (decoding videos with PyAV, which needs no system FFmpeg)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = Path(data)
    dataset_info(root)
    return LeRobotDataset(repo_id or f"local/{root.name}", root=root, video_backend="pyav")


def dataset_info(root: str | Path) -> dict[str, Any]:
    """meta/info.json of a local LeRobotDataset v3, or a one-line error saying what is wrong."""
    root = Path(root)
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise WmevalError(
            f"data={root} is not a LeRobotDataset directory (meta/info.json is missing): "
            "record one with `wmeval record out=DIR`"
        )
    info = json.loads(info_path.read_text())
    if not str(info.get("codebase_version", "")).startswith("v3"):
        raise WmevalError(
            f"data={root} is LeRobotDataset {info.get('codebase_version')}; only v3 is supported"
        )
    return info


def load_episodes(
    data: str | Path,
    *,
    camera_key: str = "observation.image",
    camera_keys: list[str] | None = None,
    action_key: str = "action",
    state_key: str | list[str] | None = "observation.pose",
    episodes: list[int] | None = None,
    with_frames: bool = True,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Episodes of the dataset at `data`, in episode order.

    Each is a dict: `frames` uint8 [T, H, W, 3] (None if with_frames=False), `camera_frames` {key: frames} for
    every camera read (`camera_keys` when given, else just `camera_key`; `frames` is then the first one's),
    `actions` float32 [T, A]
    (`actions[t]` taken at frame t; in older wmeval recordings the last row holds the final observation and
    its action is a never-executed repeat), `states` float32 [T, S] (the `state_key` column, read or derived
    as the module docstring says; falls back to `observation.state`; absent if neither exists; a list of keys
    gives their columns side by side, each required), `coverage` [T]
    or None, `success` bool, `policy` str (the sidecar's, else the task), `task` str (LeRobot's task of the
    first frame: the language instruction), `seed` int or None, `episode_index`, `length` (executed steps: the
    rows, less the final-observation row of the older layout), `fps`, `meta` (the sidecar line). Keys are
    checked before any decoding; episodes with fewer than 2 frames (no transition) are refused.
    """
    import pyarrow.parquet as pq

    root = Path(data)
    info = dataset_info(root)
    features = info["features"]
    cameras = [str(k) for k in camera_keys] if camera_keys else [camera_key]
    if len(set(cameras)) != len(cameras):
        raise WmevalError(f"camera_keys={cameras} names a camera twice: list each camera once")
    camera_field = "camera_keys" if camera_keys else "camera_key"
    for field, key in [*((camera_field, k) for k in cameras), ("action_key", action_key)]:
        if key not in features:
            raise WmevalError(f"{field}={key!r} is not in data={data}; its keys are {', '.join(features)}")
    upgrades = recording_upgrades(info.get("robot_type"), features)
    state = _state_columns(state_key, features, upgrades, data)
    final_row = FINAL_OBSERVATION in features
    if int(info.get("total_episodes", 0)) == 0:
        raise WmevalError(f"data={data} holds no episodes: record some first")
    files = sorted((root / "data").glob("chunk-*/file-*.parquet"))
    if not files:
        raise WmevalError(f"data={data} has no data parquet files: the recording did not finish")
    is_video = any(features[k]["dtype"] == "video" for k in cameras)
    read = list(dict.fromkeys(column for column, _ in state or ()))  # old layouts derive several from one
    optional = [k for k in (*read, "coverage", "next.success") if k in features]
    columns = ["episode_index", "frame_index", "task_index", action_key, *optional]
    if with_frames:
        columns += [k for k in cameras if features[k]["dtype"] != "video"]
    sidecar, tasks = _sidecar(root), _tasks(root)
    episode_meta = _episode_meta(root) if with_frames and is_video else {}
    select = None if episodes is None else {int(e) for e in episodes}
    video_cache: dict[tuple[str, int, int], tuple[np.ndarray, np.ndarray]] = {}
    bar = tqdm(
        total=len(select) if select else int(info["total_episodes"]),
        desc="read episodes",
        disable=not progress,
    )
    out: list[dict[str, Any]] = []
    for path in files:
        table = pq.read_table(path, columns=columns)
        ep_col = _column(table, "episode_index")
        for ep in np.unique(ep_col):
            if select is not None and int(ep) not in select:
                continue
            sub = table.take(np.flatnonzero(ep_col == ep))
            sub = sub.take(np.argsort(_column(sub, "frame_index")))
            if len(sub) < 2:
                raise WmevalError(
                    f"episode {ep} of data={data} has {len(sub)} frame(s); at least 2 are needed: "
                    "drop that episode from the dataset or record longer ones"
                )
            keys = (cameras, action_key, state, final_row)
            out.append(
                _episode(
                    root,
                    info,
                    sub,
                    int(ep),
                    keys,
                    with_frames,
                    columns,
                    sidecar,
                    tasks,
                    episode_meta,
                    video_cache,
                )
            )
            bar.update(1)
    bar.close()
    out.sort(key=lambda e: e["episode_index"])
    if select is not None and len(out) != len(select):
        missing = sorted(select - {e["episode_index"] for e in out})
        raise WmevalError(f"episodes {missing} are not in data={data} (it has {info.get('total_episodes')})")
    return out


def _episode(
    root: Path,
    info: dict[str, Any],
    sub: Any,
    ep: int,
    keys: tuple[list[str], str, list[tuple[str, Any]] | None, bool],
    with_frames: bool,
    columns: list[str],
    sidecar: dict[int, dict[str, Any]],
    tasks: dict[int, str],
    episode_meta: dict[int, dict[str, Any]],
    video_cache: dict[tuple[str, int, int], tuple[np.ndarray, np.ndarray]],
) -> dict[str, Any]:
    """One episode's arrays from its rows `sub` (sorted by frame index)."""
    cameras, action_key, state, final_row = keys
    meta = sidecar.get(ep, {})
    task = tasks.get(int(_column(sub, "task_index")[0]), "")  # LeRobot's per-frame task: the instruction
    succ = _column(sub, "next.success").astype(bool) if "next.success" in columns else np.zeros(1, bool)
    episode: dict[str, Any] = {
        "episode_index": ep,
        "actions": _column(sub, action_key).astype(np.float32).reshape(len(sub), -1),
        "coverage": _column(sub, "coverage").astype(np.float32).reshape(-1)
        if "coverage" in columns
        else None,
        "success": bool(meta.get("success", succ.any())),
        "policy": str(meta.get("policy", task)),
        "task": task,
        "seed": meta.get("seed"),
        "length": int(meta.get("length", len(sub) - int(final_row))),
        "fps": float(info.get("fps", 10)),
        "meta": meta,
    }
    if state:
        parts = [
            convert(_column(sub, column).astype(np.float32).reshape(len(sub), -1))
            for column, convert in state
        ]
        episode["states"] = np.concatenate([np.asarray(p, dtype=np.float32) for p in parts], -1)
    if not with_frames:
        episode["frames"], episode["camera_frames"] = None, {}
        return episode
    views: dict[str, np.ndarray] = {}
    for key in cameras:
        if info["features"][key]["dtype"] == "video":
            views[key] = _video_frames(root, info, key, episode_meta[ep], len(sub), video_cache)
        else:
            blobs = sub.column(key).combine_chunks().field("bytes").to_pylist()
            views[key] = np.stack([_decode_png(b) for b in blobs])
    episode["frames"], episode["camera_frames"] = views[cameras[0]], views
    return episode


def _state_columns(
    key: str | list[str] | None, features: dict[str, Any], upgrades: Upgrades, data: str | Path
) -> list[tuple[str, Any]] | None:
    """[(column to read, converter of its rows)] for the state `key`: the column itself or its derivation from
    an older layout's column; one key falls back to `observation.state` (None if there is no state to read),
    each key of a list must be there."""
    if key is None:
        return None
    if not isinstance(key, str):
        found = [_state_column(str(k), features, upgrades) for k in key]
        missing = [str(k) for k, f in zip(key, found, strict=True) if f is None]
        if missing or not found:
            raise WmevalError(
                f"state_key={list(key)}: {', '.join(missing) or 'an empty list'} is not in data={data}; "
                f"its keys are {', '.join(features)}"
            )
        return found  # type: ignore[return-value]
    for name in (key, "observation.state"):
        found = _state_column(name, features, upgrades)
        if found is not None:
            return [found]
    return None


def _state_column(name: str, features: dict[str, Any], upgrades: Upgrades) -> tuple[str, Any] | None:
    """The column `name` itself, or its derivation from an older layout's column; None if neither exists."""
    if name in upgrades:
        return upgrades[name]
    if name in features:
        return name, lambda rows: rows
    return None


def _column(table: Any, name: str) -> np.ndarray:
    col = table.column(name).combine_chunks()
    if hasattr(col.type, "list_size"):  # fixed_size_list<float>[n]
        return col.values.to_numpy(zero_copy_only=False).reshape(len(col), col.type.list_size)
    return col.to_numpy(zero_copy_only=False)


def _decode_png(blob: bytes) -> np.ndarray:
    import cv2

    img = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise WmevalError("an embedded image could not be decoded: the dataset is corrupt, record it again")
    return np.ascontiguousarray(img[..., ::-1])  # BGR -> RGB


def _decode_video(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """All frames [N, H, W, 3] of a video file with their timestamps (s)."""
    import av

    frames, stamps = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            stamps.append(float(frame.pts * stream.time_base) if frame.pts is not None else len(stamps))
    return np.stack(frames), np.asarray(stamps)


def _video_frames(
    root: Path,
    info: dict[str, Any],
    key: str,
    meta: dict[str, Any],
    n: int,
    cache: dict[tuple[str, int, int], tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    chunk, file = int(meta[f"videos/{key}/chunk_index"]), int(meta[f"videos/{key}/file_index"])
    if (key, chunk, file) not in cache:
        path = root / info["video_path"].format(video_key=key, chunk_index=chunk, file_index=file)
        for old in [k for k in cache if k[0] == key]:  # one decoded file per camera keeps memory bounded
            del cache[old]
        cache[(key, chunk, file)] = _decode_video(path)
    frames, stamps = cache[(key, chunk, file)]
    first = int(np.argmin(np.abs(stamps - float(meta[f"videos/{key}/from_timestamp"]))))
    if first + n > len(frames):
        raise WmevalError(f"video {key} of episode {meta['episode_index']} is shorter than its {n} rows")
    return frames[first : first + n]


def _sidecar(root: Path) -> dict[int, dict[str, Any]]:
    path = root / EPISODES_FILE
    if not path.is_file():
        return {}
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {int(d["episode_index"]): d for d in lines}


def _tasks(root: Path) -> dict[int, str]:
    import pyarrow.parquet as pq

    path = root / "meta" / "tasks.parquet"
    if not path.is_file():
        return {}
    df = pq.read_table(path).to_pandas()
    if "task_index" not in df.columns:
        return {}
    return {int(i): str(t) for t, i in zip(df.index, df["task_index"], strict=True)}


def _episode_meta(root: Path) -> dict[int, dict[str, Any]]:
    import pyarrow.parquet as pq

    rows: dict[int, dict[str, Any]] = {}
    for f in sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet")):
        table = pq.read_table(f)
        cols = [c for c in table.column_names if not c.startswith("stats/")]
        for row in table.select(cols).to_pylist():
            rows[int(row["episode_index"])] = row
    return rows
