"""The world-model DiT: factorised spatial (bidirectional) and temporal (causal) attention over latent frames.

Reads top to bottom like the original DiT `models.py`: patchify each frame, build a per-frame condition from
flow time + action, run `depth` pairs of (spatial block, temporal block), project back to latent patches.

Action convention (a deliberate deviation from the seed code, where action[t] rides with frame t and drives
t -> t+1): here `actions[:, t]` is the action that LED INTO frame t, so a frame's keys/values never depend on
an action that has not been chosen yet. That is what lets a KV cache serve closed-loop control, where the
policy picks the next action only after seeing the newest frame. Frames with no known incoming action (the
history frames of a reset) carry the learned null action.
"""

from __future__ import annotations

import torch
from torch import nn

from worldmodel.dit.action_map import ActionPointMap
from worldmodel.dit.configuration_dit import DiTConfig
from worldmodel.dit.layers import ActionEmbedder, DiTBlock, FinalLayer, TimestepEmbedder, WideHead
from worldmodel.dit.rope import axis_split, rope_angles, rope_cos_sin, sincos_2d, spatial_positions
from worldmodel.dit.token_geometry import TokenGeometry


class TemporalKVCache:
    """Rotated keys/values of committed frames, per temporal block, bounded to the context window.

    Committing a frame appends its keys/values and drops the oldest beyond `window`, so the cost of a new
    frame stays constant however long the rollout runs. `next_position` is the absolute frame index of the
    next frame: RoPE makes attention depend only on relative positions, so absolute indices are safe.
    `last_frame` is the newest committed latent frame, the reference positions of the next one under token
    geometry.
    """

    def __init__(self, num_layers: int, window: int) -> None:
        self.window = window
        self.layers: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * num_layers
        self.next_position = 0
        self.last_frame: torch.Tensor | None = None

    def get(self, layer: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        return self.layers[layer]

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        old = self.layers[layer]
        if old is not None:
            k, v = torch.cat((old[0], k), dim=-2), torch.cat((old[1], v), dim=-2)
        self.layers[layer] = (k[..., -self.window :, :], v[..., -self.window :, :])

    def __len__(self) -> int:
        first = self.layers[0]
        return 0 if first is None else first[0].shape[-2]


class DiT(nn.Module):
    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.config = config
        dim, (ph, pw) = config.hidden_size, config.patch
        self.patch_embed = nn.Conv2d(config.in_channels, dim, kernel_size=(ph, pw), stride=(ph, pw))
        self.t_embedder = TimestepEmbedder(dim)
        self.action_embedder = ActionEmbedder(config.action_dim, dim)
        self.spatial_blocks = nn.ModuleList(
            DiTBlock(dim, config.num_heads, config.mlp_ratio) for _ in range(config.depth)
        )
        self.temporal_blocks = nn.ModuleList(
            DiTBlock(dim, config.num_heads, config.mlp_ratio) for _ in range(config.depth)
        )
        out_dim = ph * pw * config.in_channels
        self.head = (
            WideHead(dim, config.wide_head_dim, out_dim) if config.wide_head else FinalLayer(dim, out_dim)
        )

        rows, cols = config.tokens_grid
        self.geometry = TokenGeometry(config) if config.token_geometry else None
        self.action_map = (
            None
            if self.geometry is not None
            else ActionPointMap(
                config.action_points,
                rows,
                cols,
                dim,
                config.action_point_sigma,
                config.action_point_subgrid,
                config.action_point_fine_sigma,
            )
            if config.action_points
            else None
        )
        num_axes = 2 if config.num_views == 1 else 3
        positions = spatial_positions(rows, cols, config.num_views)
        angles = rope_angles(positions, axis_split(config.head_dim, num_axes), config.rope_base)
        cos, sin = rope_cos_sin(angles)
        self.register_buffer("spatial_cos", cos, persistent=False)
        self.register_buffer("spatial_sin", sin, persistent=False)
        if config.abs_pos_embed:
            self.register_buffer("pos_embed", sincos_2d(positions, dim), persistent=False)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        def _basic_init(module: nn.Module) -> None:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

        self.apply(_basic_init)
        w = self.patch_embed.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embed.bias)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        nn.init.normal_(self.action_embedder.proj.weight, std=0.02)
        if self.geometry is not None:
            nn.init.normal_(self.geometry.slot_embed, std=0.02)
        for block in [*self.spatial_blocks, *self.temporal_blocks]:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        if self.action_map is not None and self.action_map.fine_proj is not None:
            nn.init.zeros_(self.action_map.fine_proj.weight)  # a warm start begins at its source's function
            nn.init.zeros_(self.action_map.fine_proj.bias)
        final = self.head.final if isinstance(self.head, WideHead) else self.head
        for layer in (final.adaLN_modulation[-1], final.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def new_cache(self) -> TemporalKVCache:
        return TemporalKVCache(self.config.depth, window=self.config.max_frames - 1)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """`[B, T, h, w, C]` -> tokens `[B, T, N, dim]`."""
        b, t, h, w, c = x.shape
        tokens = self.patch_embed(x.reshape(b * t, h, w, c).permute(0, 3, 1, 2)).flatten(2).transpose(1, 2)
        if self.config.abs_pos_embed:
            tokens = tokens + self.pos_embed
        return tokens.reshape(b, t, -1, self.config.hidden_size)

    def unpatchify(self, out: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """`[B, T, N, ph*pw*C]` -> `[B, T, h, w, C]`."""
        b, t = out.shape[:2]
        (ph, pw), c = self.config.patch, self.config.in_channels
        out = out.reshape(b, t, h // ph, w // pw, ph, pw, c).permute(0, 1, 2, 4, 3, 5, 6)
        return out.reshape(b, t, h, w, c)

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        actions: torch.Tensor,
        action_null: torch.Tensor | None = None,
        frame_pos: torch.Tensor | None = None,
        cache: TemporalKVCache | None = None,
        commit: bool = False,
        previous: torch.Tensor | None = None,
    ) -> torch.Tensor | None:
        """Predict for every frame of `x [B, T, h, w, C]` at flow times `t [B, T]` in [0, 1].

        `actions [B, T, A]` led into each frame; `action_null [B, T]` marks frames whose action is unknown or
        dropped. With a `cache`, `x` holds only new frames that attend to the cached ones; `commit=True`
        stores their keys/values (use it once a frame is final) and skips the output head. `previous`
        (`x`'s shape): the clean frame before each frame, the token-geometry reference; training passes the
        ground truth, a rollout leaves it None (see `TokenGeometry.previous_frames`).
        """
        b, n_frames, h, w, _ = x.shape
        if frame_pos is None:
            start = cache.next_position if cache is not None else 0
            frame_pos = torch.arange(start, start + n_frames, device=x.device)
        spatial_cos, spatial_sin = self.spatial_cos, self.spatial_sin
        if self.geometry is not None:
            last = cache.last_frame if cache is not None else None
            reference = self.geometry.previous_frames(x, previous, last)
            where = self.geometry.positions(reference)
            tokens = self.patchify(self.geometry.center(x, t, reference))
            tokens = tokens + self.geometry.token_features(where, actions, action_null)
            spatial_cos, spatial_sin = self.geometry.rope(where, tokens.dtype)
            global_actions = self.geometry.global_actions(actions)
        else:
            tokens = self.patchify(x)
            if self.action_map is not None:
                tokens = tokens + self.action_map(actions, action_null)
            global_actions = actions
        t_emb = self.t_embedder(t * 1000.0)
        c = t_emb + self.action_embedder(global_actions, action_null)  # [B, T, dim]
        t_cos, t_sin = rope_cos_sin(
            rope_angles(frame_pos[:, None], [self.config.head_dim], self.config.rope_base), tokens.dtype
        )
        for i, (spatial, temporal) in enumerate(zip(self.spatial_blocks, self.temporal_blocks, strict=True)):
            tokens, _ = spatial(tokens, c[:, :, None], spatial_cos, spatial_sin)
            prefix = cache.get(i) if cache is not None else None
            along_time, kv = temporal(tokens.transpose(1, 2), c[:, None], t_cos, t_sin, True, prefix)
            tokens = along_time.transpose(1, 2)
            if commit and cache is not None:
                cache.append(i, *kv)
        if commit and cache is not None:
            cache.next_position = int(frame_pos[-1]) + 1
            cache.last_frame = x[:, -1:]
            return None
        if isinstance(self.head, WideHead):
            out = self.head(tokens, t_emb[:, :, None])
        else:
            out = self.head(tokens, c[:, :, None])
        return self.unpatchify(out, h, w)
