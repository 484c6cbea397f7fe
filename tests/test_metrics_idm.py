"""IDM action recoverability: a toy linear system whose actions are exactly recoverable gives r ~ 1."""

from __future__ import annotations

import numpy as np
import torch

from wmeval.metrics.idm import IDMConfig, idm_recoverability, pearson_per_dim

torch.set_num_threads(1)

SHAPE = (2, 2, 16)


def _linear_episodes(n: int, length: int, seed: int, b: torch.Tensor):
    """z_{t+1} = z_t / 2 + B a_t (a 3-d action spread over a 2x2x16 latent grid): a_t = pinv(B)(z_{t+1} - z_t / 2)."""
    gen = torch.Generator().manual_seed(seed)
    latents, actions = [], []
    for _ in range(n):
        a = torch.rand(length, 3, generator=gen) * 2 - 1
        a[0] = 0  # row 0: nothing led into the first frame
        z = [torch.randn(b.shape[1], generator=gen)]
        for t in range(1, length):
            z.append(0.5 * z[-1] + a[t] @ b)
        latents.append(torch.stack(z).reshape(length, *SHAPE))
        actions.append(a)
    return latents, actions


def test_pearson_known_values():
    x = np.arange(10.0)[:, None, None].repeat(2, axis=2)
    r = pearson_per_dim(x, np.concatenate([2 * x[..., :1] + 1, -x[..., 1:]], axis=-1))
    assert np.allclose(r, [1.0, -1.0])
    assert np.isnan(pearson_per_dim(x, np.ones_like(x))).all()


def test_idm_recovers_a_linear_system_and_drops_on_a_bad_world_model():
    b = torch.randn(3, int(np.prod(SHAPE)), generator=torch.Generator().manual_seed(0))
    train = _linear_episodes(32, 12, seed=1, b=b)
    real, actions = _linear_episodes(4, 10, seed=2, b=b)
    # a "world model" that keeps the context but generates frames unrelated to the actions
    noise = torch.Generator().manual_seed(3)
    imagined = [torch.cat((z[:1], torch.randn(len(z) - 1, *SHAPE, generator=noise))) for z in real]
    cfg = IDMConfig(width=32, depth=1, heads=2, patch_size=1, steps=300, batch_size=64, lr=1e-3, dropout=0.0)
    out = idm_recoverability(train, real, imagined, actions, ks=[1, 4], context=1, cfg=cfg)
    for k in ("k1", "k4"):
        block = out["values"][k]
        assert block["real"]["pearson_r"] > 0.95, block["real"]
        assert block["world_model"]["pearson_r"] < 0.5
        assert block["drop"] > 0.45
        assert abs(block["baseline"]["copy_last"]["pearson_r"]) < 0.5
    assert out["values"]["k4"]["real"]["windows"] == 4 * (10 - 4)


def test_idm_is_deterministic_for_a_seed():
    b = torch.randn(3, int(np.prod(SHAPE)), generator=torch.Generator().manual_seed(0))
    train = _linear_episodes(4, 8, seed=1, b=b)
    real, actions = _linear_episodes(2, 6, seed=2, b=b)
    cfg = IDMConfig(width=16, depth=1, heads=2, steps=15, batch_size=16, dropout=0.1)
    runs = [idm_recoverability(train, real, real, actions, ks=[2], context=2, cfg=cfg) for _ in range(2)]
    assert runs[0]["values"] == runs[1]["values"]
    assert runs[0]["values"]["k2"]["drop"] == 0.0  # imagined == real
