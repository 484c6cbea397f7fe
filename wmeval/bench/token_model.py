"""A PushT-shaped world model over object tokens (random weights), for `wmeval bench` and tests.

Its shapes follow `recipe=pusht_tokens`: an `object_tokens` encoder (64 px frames, K tokens of F features),
the `micro` DiT with token geometry and the 5 agent targets of a 10-d chunk action as action points.
"""

from __future__ import annotations

import torch

from worldmodel import WorldModel, WorldModelConfig
from worldmodel.adapters import build_adapter
from worldmodel.dit import DiT, DiTConfig
from worldmodel.encoders import load_encoder
from worldmodel.objectives import FlowMatchingConfig

#: the 5 (x, y) agent targets of a 5-sim-step PushT chunk action
PUSHT_POINTS = [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]


def token_world_model(
    device: torch.device | str = "cpu",
    *,
    image_size: int = 64,
    num_tokens: int = 8,
    feature_dim: int = 8,
    encoder_arch: dict | None = None,
    size: str = "micro",
    window: int = 6,
    num_steps: int = 2,
    seed: int = 0,
) -> WorldModel:
    """Untrained token world model with PushT's interface (5 sim steps x 2-d absolute targets per frame).

    `encoder_arch` overrides the `object_tokens` architecture (tests pass a smaller one).
    """
    torch.manual_seed(seed)
    arch = {"image_size": image_size, "num_tokens": num_tokens, "feature_dim": feature_dim}
    encoder = load_encoder("object_tokens", **{**arch, **(encoder_arch or {})})
    h, w, d = encoder.latent_shape
    dit_config = DiTConfig.from_size(
        size,
        in_channels=d,
        grid=(h, w),
        action_dim=10,
        max_frames=window,
        token_geometry=True,
        action_points=PUSHT_POINTS,
    )
    config = WorldModelConfig(
        encoder=encoder.get_config(),
        adapter={"type": "identity", "in_dim": d},
        dit=dit_config.to_dict(),
        objective={
            "type": "flow_matching",
            **FlowMatchingConfig(num_steps=num_steps, residual=True).to_dict(),
        },
        latent_mean=[0.0] * d,
        latent_std=[1.0] * d,
        action_offset=[256.0, 256.0],
        action_scale=[256.0, 256.0],
        sim_steps_per_frame=5,
    )
    wm = WorldModel(config, encoder, build_adapter("identity", in_dim=d), DiT(dit_config))
    return wm.to(device).eval()
