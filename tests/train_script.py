"""Train a tiny DiT on moving-square episodes; run directly or under torchrun (tests use both)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from tests.wm_fixtures import moving_square_episodes
from worldmodel.data.clips import ClipSampler, ClipSpec
from worldmodel.dit import DiT, DiTConfig
from worldmodel.encoders import load_encoder
from worldmodel.objectives import build_objective
from worldmodel.training import TrainConfig, cleanup_distributed, setup_distributed, train


def main(
    out: str, steps: int, batch_size: int = 8, hidden_size: int = 32, objective: str = "flow_matching"
) -> dict:
    torch.set_num_threads(1)
    dist = setup_distributed("cpu")
    torch.manual_seed(0)
    encoder = load_encoder("pixels", image_size=(32, 32), factor=8)
    episodes = [
        {
            "latents": encoder.encode(torch.from_numpy(ep["frames"]).permute(0, 3, 1, 2) / 255.0).numpy() * 2,
            "actions": ep["actions"],
        }
        for ep in moving_square_episodes(n=6, length=24)
    ]
    h, w, d = encoder.latent_shape
    dit = DiT(
        DiTConfig(
            in_channels=d,
            grid=(h, w),
            action_dim=2,
            hidden_size=hidden_size,
            depth=2,
            num_heads=2,
            max_frames=4,
        )
    )
    sampler = ClipSampler(episodes, ClipSpec(n_frames=4, max_history=2), [16, 16], [16, 16], seed=dist.rank)
    config = TrainConfig(
        steps=steps, batch_size=batch_size, lr=3e-3, warmup_steps=5, checkpoint_every=4, log_every=1
    )
    summary = train(
        dit, build_objective({"type": objective}, h * w, d), sampler, config, Path(out), dist, progress=False
    )
    cleanup_distributed()
    if dist.is_main:
        Path(out, "losses.json").write_text(json.dumps(summary["loss_history"]))
    return summary


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
