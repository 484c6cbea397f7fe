"""DDPM, flow matching's time sampling, the DiT size presets and QK-norm, each checked against what it promises."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from tests.train_script import main as train_tiny
from tests.wm_fixtures import IMAGE, tiny_world_model
from worldmodel.dit import DiT, DiTConfig
from worldmodel.dit.layers import Attention
from worldmodel.objectives import DDPM, DDPMConfig, FlowMatching, FlowMatchingConfig


def test_ddpm_training_reduces_the_loss(tmp_path):
    summary = train_tiny(str(tmp_path), steps=40, objective="ddpm")
    losses = np.array([loss for _, loss in summary["loss_history"]])
    assert losses[-10:].mean() < 0.7 * losses[:5].mean()


def test_ddpm_cached_sampling_equals_uncached():
    wm = tiny_world_model(max_frames=8, objective={"type": "ddpm", "num_steps": 3})
    start = torch.rand(2, 2, 3, IMAGE, IMAGE, generator=torch.Generator().manual_seed(0))
    actions = torch.rand(2, 4, 2) * 32
    wm.reset(start, use_cache=True, seed=3)
    cached = wm.step(actions)
    wm.reset(start, use_cache=False, seed=3)
    uncached = wm.step(actions)
    assert torch.allclose(cached, uncached, atol=1e-5)
    assert not torch.allclose(cached[:, 0], cached[:, -1], atol=1e-3)  # frames differ: not a constant output


def test_ddim_with_the_exact_v_prediction_lands_on_the_clean_sample():
    """Noise -> clean in a few deterministic DDIM steps when the network is the oracle for one data point.

    This ties together the noising (`add_noise`), the v target and the sampler: a sign or a square root
    wrong in any of them lands elsewhere. Deterministic DDIM keeps the implied noise fixed along the way.
    """
    ddpm = DDPM(DDPMConfig(num_steps=4))
    x0 = torch.randn(3, 5, generator=torch.Generator().manual_seed(1))
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(2))
    taus = ddpm.timesteps()
    assert taus[0] > 0.9 and taus[-1] == -1.0
    first_noise = None
    for tau, tau_next in zip(taus[:-1], taus[1:], strict=True):
        a = float(ddpm._alpha_bar(tau))
        noise = (x - a**0.5 * x0) / (1 - a) ** 0.5  # the noise that makes x from x0 at this level
        first_noise = noise if first_noise is None else first_noise
        torch.testing.assert_close(noise, first_noise, atol=1e-4, rtol=0)
        level = torch.full((3, 1), tau)
        torch.testing.assert_close(ddpm.add_noise(x0, noise, level), x, atol=1e-5, rtol=0)
        x = ddpm.sample_step(x, ddpm.target(x0, noise, level), tau, tau_next)
    torch.testing.assert_close(x, x0, atol=1e-4, rtol=0)


def test_ddpm_schedule_runs_from_clean_to_pure_noise():
    bar = DDPM(DDPMConfig()).alphas_cumprod
    assert bar[0] > 0.99 and bar[-1] < 1e-3 and bool((bar[1:] <= bar[:-1]).all())


def _shifted_logit_normal_cdf(y: np.ndarray, mean: float, std: float, gamma: float) -> np.ndarray:
    """P(tau <= y) for tau = shift(sigmoid(mean + std z)), shift(u) = gamma u / (1 + (gamma - 1) u)."""
    u = y / (gamma - (gamma - 1) * y)  # the shift's inverse
    return stats.norm.cdf((np.log(u / (1 - u)) - mean) / std)


@pytest.mark.parametrize(
    ("config", "tokens", "channels", "gamma"),
    [
        (FlowMatchingConfig(logit_mean=0.3, logit_std=0.7, shift=3.0), 16, 4, 3.0),
        # shift=None: the dimension-dependent shift sqrt(tokens * channels / 4096) = sqrt(256 * 64 / 4096) = 2
        (FlowMatchingConfig(), 256, 64, 2.0),
        (FlowMatchingConfig(), 256, 16, 1.0),
    ],
)
def test_flow_matching_times_follow_the_shifted_logit_normal(config, tokens, channels, gamma):
    """Kolmogorov-Smirnov against the formula: a missing shift, std or mean moves the CDF far past the bound."""
    fm = FlowMatching(config, tokens, channels)
    assert fm.gamma == pytest.approx(gamma)
    tau = fm.sample_time((20000,), torch.Generator().manual_seed(0)).double().numpy()
    assert 0 < tau.min() and tau.max() < 1
    cdf = lambda y: _shifted_logit_normal_cdf(y, config.logit_mean, config.logit_std, gamma)  # noqa: E731
    assert stats.kstest(tau, cdf).pvalue > 1e-3
    # the sampling grid goes through the same shift: the midpoint 0.5 lands on gamma / (1 + gamma)
    assert fm.timesteps(2) == pytest.approx([1.0, gamma / (1 + gamma), 0.0])


# The original DiT paper's sizes at patch 2 on a 32x32x4 latent: DiT-S/B/L/XL = 33M / 130M / 458M / 675M.
PAPER_MILLIONS = {"S": 33, "B": 130, "L": 458, "XL": 675}


def _paper_dit_parameters(d: int, depth: int) -> int:
    """The original DiT's count (class-conditional, 1000 classes + null, learned sigma, patch 2, 4 channels).

    Block: qkv 3d^2+3d, proj d^2+d, MLP 4d^2+4d and 4d^2+d, adaLN 6d^2+6d. Embedders: patch conv, timestep MLP
    (256 -> d -> d), class table (1001 x d); final layer adaLN 2d^2+2d and linear to 2 x 4 x 2 x 2 outputs.
    """
    block = 18 * d * d + 15 * d
    embed = (16 * d + d) + (256 * d + d + d * d + d) + 1001 * d
    final = (2 * d * d + 2 * d) + (d * 32 + 32)
    return depth * block + embed + final


def _our_block_parameters(d: int, heads: int) -> int:
    """This DiT's block: bias-free qkv, QK-RMSNorm weights, SwiGLU with hidden int(2/3 * 4 d), adaLN-Zero."""
    hidden = int(2 / 3 * 4.0 * d)
    attention = 3 * d * d + 2 * (d // heads) + d * d + d
    swiglu = d * 2 * hidden + 2 * hidden + hidden * d + d
    return attention + swiglu + 6 * d * d + 6 * d


@pytest.mark.parametrize("size", ["S", "B", "L", "XL"])
def test_paper_sizes_instantiate_with_the_papers_parameter_counts(size):
    """Each depth level holds a spatial and a temporal block, each the size of one original DiT block.

    SwiGLU's 2/3 x 4 hidden width keeps the MLP at ~8 d^2 like DiT's GELU MLP, so one stack of blocks has the
    paper's backbone count to within the bias terms, and the whole model about twice the paper's total.
    """
    config = DiTConfig.from_size(size, in_channels=4, grid=(32, 32), action_dim=2, patch_size=2)
    d, depth, heads = config.hidden_size, config.depth, config.num_heads
    paper = _paper_dit_parameters(d, depth)
    assert round(paper / 1e6) == PAPER_MILLIONS[size]  # the formula reproduces the published figure
    with torch.device("meta"):
        dit = DiT(config)
    assert all(p.is_meta for p in dit.parameters())
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    assert count(dit.spatial_blocks) == count(dit.temporal_blocks) == depth * _our_block_parameters(d, heads)
    assert count(dit.spatial_blocks) == pytest.approx(depth * (18 * d * d + 15 * d), rel=1e-3)
    embedders = (4 * 4 * d + d) + (256 * d + d + d * d + d) + (2 * d + d + d)  # patch, time, action (+ null)
    final = (2 * d * d + 2 * d) + (d * 16 + 16)
    assert count(dit) == 2 * depth * _our_block_parameters(d, heads) + embedders + final
    assert 1.9 < count(dit) / paper < 2.0


def test_qk_norm_gives_unit_rms_queries_and_keys(monkeypatch):
    """The queries and keys that reach the attention product have unit RMS per head, whatever the input scale."""
    torch.manual_seed(0)
    attn = Attention(32, 4)
    seen = {}
    product = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, **kwargs):  # noqa: ANN001, ANN003, ANN202
        seen.update(q=q, k=k)
        return product(q, k, v, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    cos, sin = torch.ones(5, 4), torch.zeros(5, 4)  # RoPE off: rotation by angle 0
    attn(100.0 * torch.randn(2, 1, 5, 32), cos, sin, causal=False)
    for name in ("q", "k"):
        assert seen[name].shape == (2, 4, 5, 8)  # [B * S, heads, tokens, head_dim]
        rms = seen[name].pow(2).mean(-1).sqrt()
        torch.testing.assert_close(rms, torch.ones_like(rms), atol=1e-3, rtol=0)


def test_qk_norm_makes_attention_weights_independent_of_the_input_scale():
    """Scaling the tokens scales q, k and v; with QK-norm only v's scale survives, so out - bias scales too.

    Without the norm the logits would grow with the square of the scale and the softmax would saturate.
    """
    torch.manual_seed(0)
    attn = Attention(32, 4)
    cos, sin = torch.ones(5, 4), torch.zeros(5, 4)  # RoPE off: rotation by angle 0
    x = torch.randn(2, 1, 5, 32)
    bias = attn.proj.bias
    small = attn(x, cos, sin, causal=False)[0] - bias
    large = attn(30.0 * x, cos, sin, causal=False)[0] - bias
    torch.testing.assert_close(large, 30.0 * small, atol=1e-3, rtol=1e-4)
    assert math.isfinite(float(large.abs().max()))
