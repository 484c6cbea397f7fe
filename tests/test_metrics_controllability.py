"""Controllability: action recovery on a toy differentiable model with a known answer, and on a tiny DiT."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.wm_fixtures import tiny_world_model
from wmeval.metrics.controllability import ControllabilityConfig, Windows, controllability, sample_windows
from wmeval.metrics.imagine import world_model_predictor

torch.set_num_threads(1)


def _toy(action_dim: int = 2, channels: int = 6, seed: int = 0):
    """z_{j+1} = z_j + W a_j on a 1x1 latent grid: the latent change identifies the action exactly."""
    w = torch.randn(action_dim, channels, generator=torch.Generator().manual_seed(seed))

    def predict(context: torch.Tensor, actions: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        z, out = context[:, -1], []
        for j in range(actions.shape[1]):
            z = z + (actions[:, j] @ w)[:, None, None] + 0.01 * noise[:, j]
            out.append(z)
        return torch.stack(out, 1)

    return predict, w


def _toy_windows(predict, n: int = 6, k: int = 4, action_dim: int = 2, channels: int = 6) -> Windows:
    gen = torch.Generator().manual_seed(1)
    context = torch.randn(n, 2, 1, 1, channels, generator=gen)
    actions = torch.rand(n, k, action_dim, generator=gen) * 1.6 - 0.8
    targets = predict(context, actions, torch.zeros(n, k, 1, 1, channels))
    return Windows(context, targets, actions, [(0, i) for i in range(n)])


@pytest.mark.parametrize("method", ["cem", "gradient", "grid"])
def test_recovers_the_true_action_better_than_a_random_guess(method):
    predict, _ = _toy()
    windows = _toy_windows(predict)
    cfg = ControllabilityConfig(
        methods=[method], ks=[1, 4], population=64, elites=8, iterations=4, grad_lr=0.05, grid_points=21
    )
    block = controllability(predict, windows, cfg)
    for k in ("k1", "k4"):
        res, base = block["values"][k][method], block["values"][k]["baseline"]
        assert res["action_l2"] < 0.35 * base["random_action_l2"], (k, res, base)
        assert len(res["action_abs_error_per_dim"]) == 2
        # the floor: true actions reproduce the targets up to the (fixed, small) noise
        assert block["values"][k]["floor_latent_mse_true_action"] < 1e-3 < base["random_action_latent_mse"]
        assert res["latent_mse"] < base["random_action_latent_mse"]
    assert block["windows"] == 6


def test_same_seed_same_numbers_and_search_dims_respected():
    predict, _ = _toy()
    windows = _toy_windows(predict)
    cfg = ControllabilityConfig(ks=[1], population=32, elites=4, iterations=2, search_dims=[1])
    a, b = controllability(predict, windows, cfg), controllability(predict, windows, cfg)
    assert a["values"] == b["values"]
    assert len(a["values"]["k1"]["cem"]["action_abs_error_per_dim"]) == 1
    assert a["settings"]["searched_dims"] == [1]


def test_one_dit_call_per_denoising_step_for_all_candidates():
    wm = tiny_world_model(max_frames=6)
    steps = wm.objective.config.num_steps
    latents = [torch.randn(8, 4, 4, 192, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    actions = [torch.rand(8, 2) * 2 - 1 for _ in range(2)]
    windows = sample_windows(latents, actions, count=3, context=2, k=2, seed=0)
    calls: list[int] = []
    hook = wm.dit.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    cfg = ControllabilityConfig(ks=[2], population=10, elites=3, iterations=2)
    try:
        block = controllability(world_model_predictor(wm), windows, cfg)
    finally:
        hook.remove()
    # baselines (true + random per window) + 2 CEM iterations + the final plan, each k=2 frames x steps calls
    assert len(calls) == 4 * 2 * steps
    assert calls.count(3 * 10) == 2 * 2 * steps  # every CEM evaluation: all candidates x windows in one batch
    assert np.isfinite(block["values"]["k2"]["cem"]["action_l2"])
