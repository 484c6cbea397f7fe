import json

import pytest
import torch

from worldmodel.dit import DIT_SIZES, DiT, DiTConfig
from worldmodel.dit.rope import apply_rope, axis_split, rope_angles, rope_cos_sin
from worldmodel.errors import InputError


def _perturbed_dit(**overrides) -> DiT:
    torch.manual_seed(0)
    config = DiTConfig(
        in_channels=8, grid=(4, 4), action_dim=3, hidden_size=32, depth=2, num_heads=2, **overrides
    )
    dit = DiT(config)
    for p in dit.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    return dit


def test_paper_sizes_match_the_notes():
    assert DIT_SIZES["S"] == (384, 12, 6) and DIT_SIZES["B"] == (768, 12, 12)
    assert DIT_SIZES["L"] == (1024, 24, 16) and DIT_SIZES["XL"] == (1152, 28, 16)
    with pytest.raises(InputError, match="unknown"):
        DiTConfig.from_size("huge", in_channels=4, grid=(4, 4), action_dim=2)


def test_zero_init_gives_zero_output():
    dit = DiT(DiTConfig(in_channels=8, grid=(4, 4), action_dim=3, hidden_size=32, depth=1, num_heads=2))
    out = dit(torch.randn(2, 3, 4, 4, 8), torch.rand(2, 3), torch.randn(2, 3, 3))
    assert out.shape == (2, 3, 4, 4, 8) and torch.count_nonzero(out) == 0


def test_temporal_attention_is_causal():
    dit = _perturbed_dit()
    x, t, a = torch.randn(2, 4, 4, 4, 8), torch.rand(2, 4), torch.randn(2, 4, 3)
    out = dit(x, t, a)
    x2, a2 = x.clone(), a.clone()
    x2[:, 3] += 1.0
    a2[:, 3] += 1.0
    out2 = dit(x2, t, a2)
    assert torch.allclose(out[:, :3], out2[:, :3], atol=1e-6)
    assert not torch.allclose(out[:, 3], out2[:, 3], atol=1e-3)


def test_actions_condition_the_frame_they_lead_into():
    dit = _perturbed_dit()
    x, t, a = torch.randn(1, 3, 4, 4, 8), torch.rand(1, 3), torch.randn(1, 3, 3)
    null = torch.tensor([[True, False, False]])
    a2 = a.clone()
    a2[:, 0] += 5.0  # frame 0's action is null: changing it must not matter
    assert torch.allclose(dit(x, t, a, null), dit(x, t, a2, null), atol=1e-6)


def test_kv_cache_matches_full_forward_and_is_bounded():
    dit = _perturbed_dit(max_frames=4)
    x, t, a = torch.randn(2, 4, 4, 4, 8), torch.rand(2, 4), torch.randn(2, 4, 3)
    full = dit(x, t, a)
    cache = dit.new_cache()
    dit(x[:, :3], t[:, :3], a[:, :3], cache=cache, commit=True)
    assert len(cache) == 3 and cache.next_position == 3
    last = dit(x[:, 3:], t[:, 3:], a[:, 3:], cache=cache)
    assert torch.allclose(last, full[:, 3:], atol=1e-5)
    for _ in range(5):
        dit(x[:, :1], t[:, :1], a[:, :1], cache=cache, commit=True)
    assert len(cache) == 3  # window = max_frames - 1


def test_rope_is_relative():
    dims = axis_split(16, 1)
    q, k = torch.randn(16), torch.randn(16)

    def score(pq: int, pk: int) -> float:
        cos, sin = rope_cos_sin(rope_angles(torch.tensor([[pq], [pk]]), dims, 1e4))
        rq, rk = apply_rope(torch.stack([q, k]), cos, sin)
        return float(rq @ rk)

    assert score(3, 1) == pytest.approx(score(103, 101), rel=1e-4)
    assert axis_split(64, 3) == [22, 22, 20]


def test_multiview_and_wide_head_shapes():
    dit = _perturbed_dit(num_views=2, wide_head=True, wide_head_dim=48)
    out = dit(torch.randn(1, 2, 4, 8, 8), torch.rand(1, 2), torch.randn(1, 2, 3))
    assert out.shape == (1, 2, 4, 8, 8)


def test_patch_size_two_round_trips_shapes():
    dit = _perturbed_dit(patch_size=2)
    out = dit(torch.randn(1, 2, 4, 4, 8), torch.rand(1, 2), torch.randn(1, 2, 3))
    assert out.shape == (1, 2, 4, 4, 8)


@pytest.mark.parametrize("abs_pos_embed", [False, True])
def test_only_the_absolute_table_lets_tokens_know_where_they_are(abs_pos_embed):
    # A uniform frame: with RoPE alone every token sees the same keys and values, so every output is equal;
    # the sin-cos table makes outputs depend on the position, which absolute-position actions need.
    dit = _perturbed_dit(abs_pos_embed=abs_pos_embed)
    out = dit(torch.ones(1, 2, 4, 4, 8), torch.full((1, 2), 0.5), torch.zeros(1, 2, 3))
    spread = (out - out[:, :, :1, :1]).abs().max()
    assert (spread > 1e-3) == abs_pos_embed


def test_action_points_put_the_target_where_the_tokens_are():
    from worldmodel.dit.action_map import ActionPointMap

    amap = ActionPointMap([[0, 1]], rows=4, cols=4, hidden_size=1, sigma=0.2)
    amap.proj.weight.data.fill_(1.0)
    amap.proj.bias.data.zero_()
    # x = +0.75 (last column), y = -0.75 (first row): token (row 0, col 3) is index 3
    feats = amap(torch.tensor([[[0.75, -0.75, 0.0]]]), None)[0, 0, :, 0]
    assert feats.argmax() == 3 and feats[3] > 0.99 and feats[12] < 1e-3
    silent = amap(torch.tensor([[[0.75, -0.75, 0.0]]]), torch.tensor([[True]]))
    assert torch.count_nonzero(silent) == 0
    with pytest.raises(InputError, match="action_points"):
        DiTConfig(
            in_channels=8, grid=(4, 4), action_dim=3, hidden_size=32, num_heads=2, action_points=[[0, 3]]
        )


def test_subgrid_bumps_say_where_in_the_token_a_point_lies():
    from worldmodel.dit.action_map import ActionPointMap

    amap = ActionPointMap([[0, 1]], rows=4, cols=4, hidden_size=1, sigma=0.2, subgrid=2, fine_sigma=0.05)
    # two targets inside token (row 0, col 3), which spans x in [0.5, 1] and y in [-1, -0.5]
    left_top, right_bottom = torch.tensor([[[0.625, -0.875, 0.0]]]), torch.tensor([[[0.875, -0.625, 0.0]]])
    tokens_xy = amap.sub_xy.flatten(0, 1)
    for target, cell in ((left_top, 0), (right_bottom, 3)):
        fine = amap._bumps(tokens_xy, target[..., :2].reshape(1, 1, 1, 2), amap.fine_sigma, None)
        fine = fine.reshape(16, 4)  # tokens x positions inside the token
        assert fine.argmax() == 3 * 4 + cell and fine[3, cell] > 0.99  # token 3, that quarter of it
    # the coarse bumps alone cannot tell the two apart: both are equally far from the token's centre
    coarse = [
        amap._bumps(amap.token_xy, t[..., :2].reshape(1, 1, 1, 2), amap.sigma, None)
        for t in (left_top, right_bottom)
    ]
    assert torch.allclose(coarse[0][..., 3, 0], coarse[1][..., 3, 0])


def test_subgrid_path_starts_at_zero_so_a_warm_start_keeps_its_source_function():
    points = {"action_points": [[0, 1]], "abs_pos_embed": True}
    source = _perturbed_dit(**points)
    torch.manual_seed(1)
    warm = DiT(DiTConfig(**{**source.config.to_dict(), "action_point_subgrid": 4}))
    missing = warm.load_state_dict(source.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["action_map.fine_proj.bias", "action_map.fine_proj.weight"]
    x, t = torch.randn(2, 3, 4, 4, 8), torch.rand(2, 3)
    actions = torch.rand(2, 3, 3) * 2 - 1
    torch.testing.assert_close(warm(x, t, actions), source(x, t, actions))
    with pytest.raises(InputError, match="action_point_subgrid"):
        DiTConfig(
            in_channels=8, grid=(4, 4), action_dim=3, hidden_size=32, num_heads=2, action_point_subgrid=-1
        )


def test_a_rows_by_cols_patch_makes_a_row_of_object_tokens_one_token():
    # [1, 8] over a 1 x 8 grid: one token per frame that sees all 8 cells, and the output keeps the grid
    config = DiTConfig(
        in_channels=5, grid=(1, 8), action_dim=3, hidden_size=32, depth=1, num_heads=2, patch_size=[1, 8]
    )
    assert config.tokens_grid == (1, 1)
    dit = DiT(config)
    assert tuple(dit.patch_embed.weight.shape) == (32, 5, 1, 8)
    for p in dit.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    x, t, actions = torch.randn(1, 2, 1, 8, 5), torch.rand(1, 2), torch.randn(1, 2, 3)
    out = dit(x, t, actions)
    assert out.shape == x.shape
    moved = x.clone()
    moved[:, :, :, -1] += 1.0  # the last cell alone changes the first cell's output: they share the token
    assert (dit(moved, t, actions)[:, :, :, 0] - out[:, :, :, 0]).abs().max() > 1e-4
    again = DiTConfig(**json.loads(json.dumps(config.to_dict())))
    assert again.patch == (1, 8) and again.tokens_grid == (1, 1)


@pytest.mark.parametrize(
    ("patch_size", "message"),
    [
        ([1, 3], r"latent grid \(1, 8\) is not divisible by patch_size=\[1, 3\]"),
        ([1, 2, 4], "positive int or"),
    ],
)
def test_a_patch_that_does_not_tile_the_grid_is_refused(patch_size, message):
    with pytest.raises(InputError, match=message):
        DiTConfig(
            in_channels=5,
            grid=(1, 8),
            action_dim=3,
            hidden_size=32,
            depth=1,
            num_heads=2,
            patch_size=patch_size,
        )
