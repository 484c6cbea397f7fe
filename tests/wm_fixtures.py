"""Tiny world-model pieces for tests: a few random-but-structured episodes, a tiny DiT config, tiny datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from worldmodel.adapters import build_adapter
from worldmodel.dit import DiT, DiTConfig
from worldmodel.encoders import load_encoder
from worldmodel.objectives import FlowMatchingConfig
from worldmodel.world_model import WorldModel, WorldModelConfig

IMAGE = 32


# a DiT run small enough for a shared 2-core CPU: 3-frame clips, 2 steps
TINY_TRAIN = [
    "heldout_episodes=1",
    "clips.n_frames=3",
    "clips.sim_steps_per_frame=2",
    "optim.batch_size=2",
    "optim.warmup_steps=1",
    "eval.episodes=1",
    "eval.horizon=2",
    "threads=1",
]


def moving_square_episodes(n: int = 4, length: int = 30, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """A white square that moves to the commanded position: action-following is learnable and checkable."""
    rng = np.random.default_rng(seed)
    episodes = []
    for _ in range(n):
        actions = rng.uniform(4, IMAGE - 4, size=(length, 2)).astype(np.float32)
        pos = actions[:1].copy()
        frames = np.zeros((length, IMAGE, IMAGE, 3), np.uint8)
        for t in range(length):
            if t > 0:
                pos = actions[t - 1 : t]
            y, x = pos[0].astype(int)
            frames[t, max(0, y - 3) : y + 3, max(0, x - 3) : x + 3] = 255
        episodes.append({"frames": frames, "actions": actions})
    return episodes


def tiny_world_model(
    sim_steps_per_frame: int = 1,
    max_frames: int = 6,
    seed: int = 0,
    hidden_size: int = 32,
    residual: bool = False,
    objective: dict | None = None,
) -> WorldModel:
    torch.manual_seed(seed)
    encoder = load_encoder("pixels", image_size=(IMAGE, IMAGE), factor=8)
    h, w, d = encoder.latent_shape
    dit_config = DiTConfig(
        in_channels=d,
        grid=(h, w),
        action_dim=2 * sim_steps_per_frame,
        hidden_size=hidden_size,
        depth=2,
        num_heads=2,
        max_frames=max_frames,
    )
    dit = DiT(dit_config)
    for p in dit.parameters():  # leave the zero init so outputs depend on inputs everywhere
        p.data.add_(0.05 * torch.randn_like(p))
    config = WorldModelConfig(
        encoder=encoder.get_config(),
        adapter={"type": "identity", "in_dim": d},
        dit=dit_config.to_dict(),
        objective=objective
        or {"type": "flow_matching", **FlowMatchingConfig(num_steps=2, residual=residual).to_dict()},
        latent_mean=[0.0] * d,
        latent_std=[1.0] * d,
        action_offset=[16.0, 16.0],
        action_scale=[16.0, 16.0],
        sim_steps_per_frame=sim_steps_per_frame,
    )
    return WorldModel(config, encoder, build_adapter("identity", in_dim=d), dit).eval()


def pusht_shaped_world_model(directory, seed: int = 0, meta: dict | None = None) -> str:  # noqa: ANN001
    """An untrained world model with PushT's interface (64 px frames, 5 sim steps x 2-d actions), saved;
    `meta` is its training manifest (e.g. `training_policies`)."""
    torch.manual_seed(seed)
    encoder = load_encoder("pixels", image_size=(64, 64), factor=8)
    h, w, d = encoder.latent_shape
    dit_config = DiTConfig(
        in_channels=d, grid=(h, w), action_dim=10, hidden_size=32, depth=1, num_heads=2, max_frames=4
    )
    config = WorldModelConfig(
        encoder=encoder.get_config(),
        adapter={"type": "identity", "in_dim": d},
        dit=dit_config.to_dict(),
        objective={"type": "flow_matching", **FlowMatchingConfig(num_steps=1).to_dict()},
        latent_mean=[0.0] * d,
        latent_std=[1.0] * d,
        action_offset=[256.0, 256.0],
        action_scale=[256.0, 256.0],
        sim_steps_per_frame=5,
        meta=dict(meta or {}),
    )
    wm = WorldModel(config, encoder, build_adapter("identity", in_dim=d), DiT(dit_config))
    wm.save_pretrained(directory)
    return str(directory)


def tiny_lerobot_dataset(root: Path, lengths: list[int], size: int = 16) -> Path:
    """A LeRobotDataset v3 (camera `observation.image`, 2-d `action`), one episode per length; `[]` is empty."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    image = {"dtype": "image", "shape": (size, size, 3), "names": ["height", "width", "channels"]}
    features = {"observation.image": image, "action": {"dtype": "float32", "shape": (2,), "names": None}}
    ds = LeRobotDataset.create(repo_id="local/tiny", fps=10, features=features, root=root, use_videos=False)
    rng = np.random.default_rng(0)
    for length in lengths:
        for _ in range(length):
            frame = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            ds.add_frame(
                {"observation.image": frame, "action": rng.normal(size=2).astype(np.float32), "task": "tiny"}
            )
        ds.save_episode()
    ds.finalize()
    return root


def record_pusht(out: Path, seed: int = 0, episodes: int = 2, max_steps: int = 10) -> Path:
    """`wmeval record` of the PushT expert: a small real dataset for command-level tests."""
    from wmeval.cli import main

    args = ["record", "env=pusht", "policy=pusht/expert", f"episodes={episodes}", f"max_steps={max_steps}"]
    assert main([*args, f"seed={seed}", "progress=false", f"out={out}"]) == 0
    return out
