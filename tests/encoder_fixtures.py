"""Helpers shared by the pretrained-encoder-family tests (`test_encoder_families*.py`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from worldmodel.encoders import load_encoder
from worldmodel.encoders.base import NoDecoderError

#: offline with an empty Hugging Face cache (nothing can download), one thread, no oneDNN kernel warm-up
FAMILY_TEST_SETTINGS = pytest.mark.usefixtures("offline_hub", "no_onednn", "one_thread")


def uint8_frames(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Smooth random colour gradients + noise, [n, size, size, 3] uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = rng.uniform(0, 255, (n, 1, 1, 3)) * yy[None, ..., None] + rng.uniform(0, 255, (n, 1, 1, 3)) * (
        1 - xx[None, ..., None]
    )
    return (0.7 * base + rng.uniform(0, 70, (n, size, size, 3))).clip(0, 255).astype(np.uint8)


def as_input(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0


def rebuilt(enc):
    """`load_encoder(**config)` after a JSON round trip, as a latent cache or checkpoint would do it."""
    return load_encoder(**json.loads(json.dumps(enc.get_config())))


def assert_frozen_semantic(enc) -> None:
    enc.train()
    assert not enc.training and not any(p.requires_grad for p in enc.parameters())
    assert not enc.has_decoder
    with pytest.raises(NoDecoderError, match="adapter"):
        enc.decode(torch.zeros(1, *enc.latent_shape))
