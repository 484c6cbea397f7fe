"""`wmeval convert-rlds`: Bridge V2, SOAR or another RLDS dataset -> a local LeRobotDataset v3.

Needs the optional extra `pip install -e .[rlds]` (TensorFlow Datasets); see `wmeval.data.rlds_convert`.
    wmeval convert-rlds preset=bridge_v2 rlds_dirs=[~/data/bridge_dataset/1.0.0] out=datasets/bridge_v2
    wmeval convert-rlds preset=soar rlds_dirs=[~/data/soar/rlds/success/1.0.0,~/data/soar/rlds/failure/1.0.0] \\
        out=datasets/soar
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from wmeval.data.rlds_convert import PRESETS, read_rlds, write_lerobot
from wmeval.errors import ConfigError
from wmeval.io import write_json


def run(cfg: DictConfig) -> dict[str, Any]:
    if cfg.preset not in PRESETS:
        raise ConfigError(f"preset={cfg.preset!r} is unknown: choose one of {', '.join(PRESETS)}")
    if not cfg.rlds_dirs:
        raise ConfigError(
            "rlds_dirs is empty: pass rlds_dirs=[DIR,...] (TFDS builder dirs with dataset_info.json)"
        )
    if cfg.out is None:
        raise ConfigError(f"out is required: e.g. out=datasets/{cfg.preset}")
    layout = PRESETS[str(cfg.preset)]
    if cfg.cameras:
        layout = replace(layout, cameras={str(k): f"observation.images.{k}" for k in cfg.cameras})
    if cfg.fps:
        layout = replace(layout, fps=float(cfg.fps))
    dirs = [str(Path(str(d)).expanduser()) for d in cfg.rlds_dirs]
    counts = write_lerobot(
        read_rlds(dirs, str(cfg.split)),
        cfg.out,
        layout,
        repo_id=str(cfg.repo_id or f"local/{cfg.preset}"),
        use_videos=str(cfg.storage) == "video",
        max_episodes=cfg.max_episodes,
    )
    summary = {"rlds_dirs": dirs, "split": str(cfg.split), "layout": asdict(layout), **counts}
    write_json(Path(str(cfg.out)) / "meta" / "wmeval_convert.json", summary)
    print(json.dumps(counts))
    print(
        f"LeRobotDataset written to {cfg.out}; train on it with: wmeval train data={cfg.out} card={cfg.preset}"
    )
    return summary
