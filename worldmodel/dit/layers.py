"""DiT building blocks: embedders, attention with QK-norm and RoPE, SwiGLU, adaLN-Zero block, final layers."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from worldmodel.dit.rope import apply_rope


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class TimestepEmbedder(nn.Module):
    """Flow time (scaled to [0, 1000]) -> sinusoid (256) -> MLP, as in DiT."""

    def __init__(self, hidden_size: int, frequency_size: int = 256) -> None:
        super().__init__()
        self.frequency_size = frequency_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_size, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size)
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.frequency_size // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        args = t.float()[..., None] * freqs
        emb = torch.cat((torch.cos(args), torch.sin(args)), dim=-1)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))


class ActionEmbedder(nn.Module):
    """Linear(action) per frame, with a learned embedding for the null action (dropped for CFG, or unknown)."""

    def __init__(self, action_dim: int, hidden_size: int) -> None:
        super().__init__()
        self.proj = nn.Linear(action_dim, hidden_size)
        self.null = nn.Parameter(torch.zeros(hidden_size))

    def forward(self, actions: torch.Tensor, null: torch.Tensor | None) -> torch.Tensor:
        emb = self.proj(actions)
        if null is None:
            return emb
        return torch.where(null[..., None], self.null.to(emb.dtype), emb)


class SwiGLU(nn.Module):
    def __init__(self, dim: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(2 / 3 * mlp_ratio * dim)
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(a) * b)


class Attention(nn.Module):
    """Multi-head self-attention along dim -2 of `[B, S, L, dim]`, with per-head QK-RMSNorm and RoPE.

    `kv_prefix` (keys/values of earlier frames, already rotated) is prepended for cached causal attention;
    the freshly computed rotated keys/values are returned so that the caller can cache them.
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=1e-6)
        self.k_norm = nn.RMSNorm(self.head_dim, eps=1e-6)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        causal: bool,
        kv_prefix: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        b, s, length, dim = x.shape
        qkv = self.qkv(x).reshape(b * s, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # [B*S, H, L, hd]
        q = apply_rope(self.q_norm(q), cos, sin)
        k = apply_rope(self.k_norm(k), cos, sin)
        new_kv = (k, v)
        mask = None
        if kv_prefix is not None and kv_prefix[0].shape[-2] > 0:
            k = torch.cat((kv_prefix[0], k), dim=-2)
            v = torch.cat((kv_prefix[1], v), dim=-2)
            if causal and length > 1:
                offset = kv_prefix[0].shape[-2]
                rows = torch.arange(length, device=x.device)[:, None]
                mask = torch.arange(offset + length, device=x.device)[None] <= rows + offset
            causal = False  # a single new query may see every cached key; longer queries use the mask
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal and mask is None)
        out = out.transpose(1, 2).reshape(b, s, length, dim)
        return self.proj(out), new_kv


class DiTBlock(nn.Module):
    """Pre-norm attention + SwiGLU, both modulated and gated by adaLN-Zero from the per-frame condition."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.RMSNorm(dim, eps=1e-6, elementwise_affine=False)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.RMSNorm(dim, eps=1e-6, elementwise_affine=False)
        self.mlp = SwiGLU(dim, mlp_ratio)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(
        self,
        x: torch.Tensor,
        c: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        causal: bool = False,
        kv_prefix: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = self.adaLN_modulation(c).chunk(6, dim=-1)
        attn, new_kv = self.attn(modulate(self.norm1(x), shift_a, scale_a), cos, sin, causal, kv_prefix)
        x = x + gate_a * attn
        x = x + gate_m * self.mlp(modulate(self.norm2(x), shift_m, scale_m))
        return x, new_kv


class FinalLayer(nn.Module):
    """RMSNorm + adaLN (shift, scale) -> Linear to the patch's output channels."""

    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        self.norm = nn.RMSNorm(dim, eps=1e-6, elementwise_affine=False)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.linear = nn.Linear(dim, out_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


class WideHead(nn.Module):
    """The shallow-wide head for native high-dimensional latents.

    Backbone features plus the time embedding -> SiLU -> Linear(dim -> wide); a FinalLayer at the wide width
    whose condition is the per-frame spatial mean of those features. Actions reach it only via the backbone.
    """

    def __init__(self, dim: int, wide_dim: int, out_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, wide_dim)
        self.final = FinalLayer(wide_dim, out_dim)

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:
        h = self.proj(F.silu(x + t_emb))
        return self.final(h, h.mean(dim=-2, keepdim=True))
