"""Token geometry in the DiT: shapes, translation invariance, reference frames, KV cache, persistence, learning."""

from __future__ import annotations

import pytest
import torch

from wmeval.bench.token_model import token_world_model
from wmeval.ranking.report import world_model_info
from worldmodel import WorldModel, WorldModelConfig
from worldmodel.dit import DiT, DiTConfig
from worldmodel.errors import InputError
from worldmodel.objectives import build_objective

pytestmark = pytest.mark.usefixtures("no_onednn", "one_thread")

STD = torch.tensor([0.5, 0.4])
#: 32 px frames, 3 tokens of 4 features: an untrained object-token encoder that runs in milliseconds
TINY_ENCODER = {
    "image_size": 32,
    "num_tokens": 3,
    "feature_dim": 4,
    "width": 16,
    "decoder_channels": (16, 8, 8),
}


def _config(**overrides) -> DiTConfig:
    base = {
        "in_channels": 6,
        "grid": (1, 5),
        "action_dim": 4,
        "hidden_size": 32,
        "depth": 2,
        "num_heads": 2,
        "max_frames": 4,
        "token_geometry": True,
        "action_points": [[0, 1], [2, 3]],
        "position_mean": [0.1, -0.2],
        "position_std": STD.tolist(),
    }
    return DiTConfig(**{**base, **overrides})


def _perturbed(**overrides) -> DiT:
    torch.manual_seed(0)
    dit = DiT(_config(**overrides))
    for p in dit.parameters():  # leave the zero init so outputs depend on inputs everywhere
        p.data.add_(0.05 * torch.randn_like(p))
    return dit


def _inputs(b: int = 2, t: int = 3) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(b, t, 1, 5, 6, generator=g)
    previous = torch.randn(b, t, 1, 5, 6, generator=g)
    return x, torch.rand(b, t, generator=g), torch.rand(b, t, 4, generator=g) * 2 - 1, previous


def _translate(x, t, actions, previous, offset):  # noqa: ANN001, ANN202
    """Every clean position and action point moved by `offset` (frame units); noisy latents by their clean part."""
    shift = offset / STD  # in normalised latent units
    x, previous = x.clone(), previous.clone()
    x[..., :2] += (1 - t)[:, :, None, None, None] * shift
    previous[..., :2] += shift
    return x, t, actions + offset.repeat(2), previous


def test_shapes_and_zero_init():
    dit = DiT(_config())
    x, t, a, _ = _inputs()
    out = dit(x, t, a)
    assert out.shape == x.shape and torch.count_nonzero(out) == 0


def test_output_is_invariant_to_moving_the_whole_scene():
    dit = _perturbed()
    x, t, a, previous = _inputs()
    offset = torch.tensor([0.3, -0.25])
    out = dit(x, t, a, previous=previous)
    x2, t2, a2, previous2 = _translate(x, t, a, previous, offset)
    assert torch.allclose(out, dit(x2, t2, a2, previous=previous2), atol=1e-5)
    # the actions are read relative to the tokens: moving the scene but not the targets changes the prediction
    assert not torch.allclose(out, dit(x2, t2, a, previous=previous2), atol=1e-3)


def test_reference_is_the_frame_before_and_positions_shape_attention():
    dit = _perturbed()
    x, t, a, _ = _inputs()
    shifted = torch.cat((x[:, :1], x[:, :-1]), 1)  # each frame's predecessor, the first its own
    assert torch.allclose(dit(x, t, a), dit(x, t, a, previous=shifted), atol=1e-6)
    # where the tokens of the frame before were is what spatial attention uses
    elsewhere = shifted.clone()
    elsewhere[..., 0, :2] += 1.0
    assert not torch.allclose(dit(x, t, a, previous=shifted), dit(x, t, a, previous=elsewhere), atol=1e-3)


def test_kv_cache_keeps_the_last_frame_as_reference():
    dit = _perturbed()
    x, t, a, _ = _inputs(t=4)
    full = dit(x, t, a)
    cache = dit.new_cache()
    dit(x[:, :3], t[:, :3], a[:, :3], cache=cache, commit=True)
    assert torch.equal(cache.last_frame, x[:, 2:3])
    assert torch.allclose(dit(x[:, 3:], t[:, 3:], a[:, 3:], cache=cache), full[:, 3:], atol=1e-5)


def test_geometry_refuses_layouts_it_cannot_read():
    with pytest.raises(InputError, match="patch_size=1"):
        _config(grid=(2, 4), patch_size=2)
    with pytest.raises(InputError, match="in_channels"):
        _config(in_channels=2)
    with pytest.raises(InputError, match="position_std"):
        _config(position_std=[1.0, 0.0])


def _token_model(**kwargs) -> WorldModel:
    wm = token_world_model(encoder_arch=TINY_ENCODER, size="micro", window=4, **kwargs)
    for p in wm.dit.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    return wm


def _frames(b: int = 2, t: int = 2) -> torch.Tensor:
    return torch.rand(b, t, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_token_world_model_cached_equals_uncached_and_round_trips(tmp_path):
    torch.manual_seed(0)
    wm = _token_model()
    actions = torch.rand(2, 2, wm.action_dim) * 512  # 2 context + 2 new frames: inside the 4-frame window
    wm.reset(_frames(), use_cache=True, seed=3)
    cached = wm.step(actions)
    wm.reset(_frames(), use_cache=False, seed=3)
    assert torch.allclose(cached, wm.step(actions), atol=1e-5)

    wm.save_pretrained(tmp_path / "wm")
    loaded = WorldModel.from_pretrained(tmp_path / "wm")
    assert loaded.dit.config.token_geometry and loaded.dit.geometry is not None
    loaded.reset(_frames(), seed=3)
    assert torch.equal(loaded.step(actions), cached)


def test_world_model_refuses_position_stats_that_disagree():
    wm = _token_model()
    config = WorldModelConfig(**{**wm.config.__dict__, "latent_mean": [0.5] + wm.config.latent_mean[1:]})
    with pytest.raises(InputError, match="position_mean"):
        WorldModel(config, wm.encoder, wm.adapter, wm.dit)


def _agent_episode(generator: torch.Generator, frames: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    """Token 0 (the agent) jumps to its frame's second action point; the other tokens never move."""
    actions = torch.rand(frames, 4, generator=generator) * 1.6 - 0.8
    latents = torch.randn(1, 1, 5, 6, generator=generator).repeat(frames, 1, 1, 1)
    latents[:, 0, 0, :2] = actions[:, 2:4]  # position std 1, mean 0: normalised = frame units
    return latents, actions


def test_short_training_on_token_data_lowers_the_loss():
    torch.manual_seed(0)
    dit = DiT(_config(position_mean=[0.0, 0.0], position_std=[1.0, 1.0]))
    objective = build_objective({"type": "flow_matching", "residual": True}, 5, 6)
    g = torch.Generator().manual_seed(0)
    episodes = [_agent_episode(g) for _ in range(32)]
    latents = torch.stack([torch.stack([e[0][i : i + 3] for i in (0, 8, 16)]) for e in episodes]).flatten(
        0, 1
    )
    actions = torch.stack([torch.stack([e[1][i : i + 3] for i in (0, 8, 16)]) for e in episodes]).flatten(
        0, 1
    )
    history = torch.ones(len(latents), dtype=torch.long)

    def held_out_loss() -> float:
        with torch.no_grad():
            return float(objective.loss(dit, latents, actions, history, torch.Generator().manual_seed(9)))

    before = held_out_loss()
    optimizer = torch.optim.AdamW(dit.parameters(), lr=3e-3)
    for _ in range(30):
        loss = objective.loss(dit, latents, actions, history, g)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert held_out_loss() < 0.5 * before


def test_report_names_the_renderer_precision_its_numbers_came_from():
    wm = _token_model()
    wm.encoder.config.render_dtype = "bfloat16"
    assert wm.encoder.render_dtype == torch.bfloat16
    assert world_model_info("tokens", wm)["encoder"].endswith(", rendering in bfloat16")
    wm.encoder.config.render_dtype = "float32"
    assert world_model_info("tokens", wm)["encoder"].endswith(", rendering in float32")
