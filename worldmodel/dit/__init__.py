"""Diffusion transformer with causal temporal attention, action conditioning and RoPE."""

from worldmodel.dit.configuration_dit import DIT_SIZES, DiTConfig
from worldmodel.dit.modeling_dit import DiT, TemporalKVCache

__all__ = ["DIT_SIZES", "DiT", "DiTConfig", "TemporalKVCache"]
