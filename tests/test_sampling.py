"""The world model's sampler (`worldmodel.sampling`), as the metrics call it: explicit noise, any batch, grads."""

from __future__ import annotations

import pytest
import torch

from tests.wm_fixtures import tiny_world_model
from worldmodel.sampling import imagine_latents, rollout_noise

torch.set_num_threads(1)


def _context(b: int = 2, t: int = 2) -> torch.Tensor:
    return torch.randn(b, t, 4, 4, 192, generator=torch.Generator().manual_seed(0))


def test_a_silent_residual_network_copies_the_last_context_latent_past_the_window():
    wm = tiny_world_model(residual=True, max_frames=3)
    for p in wm.dit.head.parameters():
        p.data.zero_()
    context = _context()
    noise = rollout_noise(2, 5, (4, 4, 192), seed=1)
    with torch.no_grad():
        latents = imagine_latents(wm, context, torch.rand(2, 5, 2), noise)
    assert torch.allclose(latents, context[:, -1:].expand(-1, 5, -1, -1, -1), atol=1e-5)


def test_the_window_slides_at_absolute_positions_and_context_frames_are_clean():
    wm = tiny_world_model(max_frames=3)
    seen: list[tuple[list[int], list[float]]] = []

    def record(module, args, kwargs):  # noqa: ANN001, ANN202
        seen.append((kwargs["frame_pos"].tolist(), args[1][0].tolist()))

    hook = wm.dit.register_forward_pre_hook(record, with_kwargs=True)
    try:
        with torch.no_grad():
            imagine_latents(wm, _context(t=4), torch.rand(2, 3, 2), rollout_noise(2, 3, (4, 4, 192), seed=0))
    finally:
        hook.remove()
    steps = wm.objective.timesteps()
    assert len(seen) == 3 * (len(steps) - 1)  # one DiT call per denoising step per frame
    level = wm.objective.config.context_level
    for j in range(3):  # the 2 newest frames (real ones first, then imagined ones) and the new one
        for s, (positions, times) in enumerate(seen[j * (len(steps) - 1) : (j + 1) * (len(steps) - 1)]):
            assert positions == [j, j + 1, j + 2]
            assert times == pytest.approx([level, level, steps[s]])


def test_the_noise_and_the_actions_decide_the_frames_and_gradients_reach_the_actions():
    wm = tiny_world_model(max_frames=4)
    context = _context()
    actions = torch.rand(2, 3, 2, requires_grad=True)
    latents = imagine_latents(wm, context, actions, rollout_noise(2, 3, (4, 4, 192), seed=0))
    latents.square().sum().backward()
    assert actions.grad is not None and actions.grad.abs().sum() > 0
    with torch.no_grad():
        again = imagine_latents(wm, context, actions, rollout_noise(2, 3, (4, 4, 192), seed=0))
        other_noise = imagine_latents(wm, context, actions, rollout_noise(2, 3, (4, 4, 192), seed=1))
    assert torch.equal(latents.detach(), again)
    assert not torch.allclose(latents.detach(), other_noise)
