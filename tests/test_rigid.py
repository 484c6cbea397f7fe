"""Rigid token groups: the projection, its checks, and rollouts that keep a group's shape."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from tests.wm_fixtures import tiny_world_model
from wmeval.bench.token_model import token_world_model
from worldmodel import WorldModel
from worldmodel.errors import InputError
from worldmodel.rigid import rigid_groups

pytestmark = pytest.mark.usefixtures("no_onednn", "one_thread")

MEAN, STD = [0.1, -0.2], [0.5, 0.4]


def _latents(positions: torch.Tensor, channels: int = 4) -> torch.Tensor:
    """Frame-unit positions `[B, N, 2]` -> normalised latents `[B, 1, 1, N, channels]` with random features."""
    b, n, _ = positions.shape
    latents = torch.randn(b, 1, 1, n, channels, generator=torch.Generator().manual_seed(1))
    latents[..., :2] = ((positions - torch.tensor(MEAN)) / torch.tensor(STD))[:, None, None]
    return latents


def _moved(shape: torch.Tensor, angle: float, offset: tuple[float, float]) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return shape @ torch.tensor([[c, s], [-s, c]]) + torch.tensor(offset)


def test_projection_finds_the_rigid_motion_and_touches_nothing_else():
    groups = rigid_groups([[1, 2, 3, 4]], 6, True, MEAN, STD)
    start = torch.rand(2, 6, 2, generator=torch.Generator().manual_seed(0)) - 0.5
    shapes = groups.shapes(_latents(start)[:, 0])
    moved = start.clone()
    moved[:, 1:5] = _moved(start[:, 1:5], 0.7, (0.2, -0.1))
    bent = moved.clone()
    bent[:, 2] += torch.tensor([0.03, -0.02])  # the DiT's independent error on one token
    sampled = _latents(bent)
    out = groups.project(sampled, shapes)

    positions = out[..., :2].reshape(2, 6, 2) * torch.tensor(STD) + torch.tensor(MEAN)
    group = positions[:, 1:5]
    assert torch.allclose(torch.cdist(group, group), torch.cdist(start[:, 1:5], start[:, 1:5]), atol=1e-5)
    assert (group - moved[:, 1:5]).abs().max() < 0.03  # near the true motion, not at the bent token
    assert torch.equal(out[..., 2:], sampled[..., 2:])  # features as sampled
    assert torch.equal(out[..., [0, 5], :], sampled[..., [0, 5], :])  # tokens outside the group as sampled
    # an already rigid frame comes back as it was
    assert torch.allclose(groups.project(_latents(moved), shapes), _latents(moved), atol=1e-5)


def test_a_mirrored_sample_is_fitted_by_a_rotation():
    groups = rigid_groups([[0, 1, 2]], 3, True, MEAN, STD)
    start = torch.tensor([[[0.0, 0.0], [0.4, 0.0], [0.0, 0.2]]])
    mirrored = start * torch.tensor([-1.0, 1.0])
    out = groups.project(_latents(mirrored), groups.shapes(_latents(start)[:, 0]))
    p = out[..., :2].reshape(1, 3, 2) * torch.tensor(STD) + torch.tensor(MEAN)

    def signed_area(q: torch.Tensor) -> float:
        (ax, ay), (bx, by) = (q[0, 1] - q[0, 0]).tolist(), (q[0, 2] - q[0, 0]).tolist()
        return ax * by - ay * bx

    assert signed_area(p) == pytest.approx(signed_area(start), abs=1e-5)  # same handedness as the shape


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ([[3]], "at least two distinct"),
        ([[1, 1]], "at least two distinct"),
        ([[0, 9]], r"\[9\] are outside the latent's 6 tokens"),
        ([[0, 1], [1, 2]], r"tokens \[1\] are in more than one group"),
        ([["a", "b"]], "must be a list of token indices"),
        ([3], "must be a list of token indices"),
    ],
)
def test_bad_groups_are_refused_with_the_reason(groups, message):
    with pytest.raises(InputError, match=message):
        rigid_groups(groups, 6, True, MEAN, STD)


def _distances(wm: WorldModel, latents: torch.Tensor) -> torch.Tensor:
    """Pairwise distances (frame units) of the tokens of normalised latents `[..., h, w, C]` -> `[..., N, N]`."""
    positions = latents[..., :2].flatten(-3, -2) * wm.latent_std[:2] + wm.latent_mean[:2]
    return torch.cdist(positions, positions)


def test_rollouts_keep_a_group_rigid_and_the_setting_is_saved(tmp_path):
    arch = {"image_size": 32, "num_tokens": 3, "feature_dim": 4, "width": 16, "decoder_channels": (16, 8, 8)}
    wm = token_world_model(encoder_arch=arch, size="micro", window=4)
    for p in wm.dit.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    frames = torch.rand(2, 1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    actions = torch.rand(2, 3, wm.action_dim, generator=torch.Generator().manual_seed(1)) * 512
    real = _distances(wm, wm.encode_frames(frames)[:, -1])[:, None]  # [B, 1, 3, 3]

    wm.reset(frames, seed=3)
    wm.step(actions)  # the 3-frame window now holds the 3 generated frames
    free = _distances(wm, wm._state.context.latents)
    assert (free - real).abs().max() > 1e-3  # unconstrained, the tokens drift apart

    rigid = WorldModel(replace(wm.config, rigid_groups=[[0, 1, 2]]), wm.encoder, wm.adapter, wm.dit).eval()
    rigid.save_pretrained(tmp_path / "wm")
    loaded = WorldModel.from_pretrained(tmp_path / "wm")
    assert loaded.config.rigid_groups == [[0, 1, 2]]
    assert "| rigid token groups | [[0, 1, 2]] |" in (tmp_path / "wm" / "README.md").read_text()  # model card
    loaded.reset(frames, seed=3)
    loaded.step(actions)
    kept = _distances(loaded, loaded._state.context.latents)
    assert torch.allclose(kept, real.expand_as(kept), atol=1e-4)  # every generated frame has the real shape


def test_a_latent_without_positions_refuses_rigid_groups():
    wm = tiny_world_model()
    with pytest.raises(InputError, match="rigid_groups needs a latent of positioned tokens"):
        WorldModel(replace(wm.config, rigid_groups=[[0, 1]]), wm.encoder, wm.adapter, wm.dit)
