"""A compact re-implementation of the LDM / LightningDiT `AutoencoderKL` (taming-style Encoder/Decoder), the
reference the `vavae` key mapping is checked against numerically: same module names, hence the same state-dict keys
as the released VA-VAE checkpoint (`encoder.down.i.block.j.*`, `decoder.up.i.attn.j.q.*`, `quant_conv.*`, ...)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Res(nn.Module):  # LDM ResnetBlock (no time embedding), the reference the key mapping is checked against
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(32, cin, eps=1e-6), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = nn.GroupNorm(32, cout, eps=1e-6), nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.silu(self.norm2(self.conv1(F.silu(self.norm1(x))))))
        return (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x) + h


class Attn(nn.Module):  # LDM AttnBlock: single head, 1x1 convs
    def __init__(self, c: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(32, c, eps=1e-6)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        n = self.norm(x)
        q, k, v = (m(n).reshape(b, c, h * w) for m in (self.q, self.k, self.v))
        att = torch.softmax(q.transpose(1, 2) @ k * c**-0.5, dim=2)
        return x + self.proj_out((v @ att.transpose(1, 2)).reshape(b, c, h, w))


class LDMVAE(nn.Module):
    """LightningDiT/LDM AutoencoderKL (ch 32, ch_mult (1, 2), 1 res block, attention at 16 px of 32 px)."""

    def __init__(self, ch: int = 32, mult: tuple[int, ...] = (1, 2), z: int = 4) -> None:
        super().__init__()
        chans = [ch * m for m in mult]
        self.encoder, self.decoder = nn.Module(), nn.Module()
        e, d = self.encoder, self.decoder
        e.conv_in, e.down = nn.Conv2d(3, ch, 3, padding=1), nn.ModuleList()
        cin = ch
        for i, c in enumerate(chans):
            last = i == len(chans) - 1
            lvl = nn.Module()
            lvl.block, lvl.attn = nn.ModuleList([Res(cin, c)]), nn.ModuleList([Attn(c)] if last else [])
            if not last:
                lvl.downsample = nn.Module()
                lvl.downsample.conv = nn.Conv2d(c, c, 3, stride=2)
            e.down.append(lvl)
            cin = c
        for part in (e, d):
            part.mid = nn.Module()
            part.mid.block_1, part.mid.attn_1, part.mid.block_2 = Res(cin, cin), Attn(cin), Res(cin, cin)
        e.norm_out, e.conv_out = nn.GroupNorm(32, cin, eps=1e-6), nn.Conv2d(cin, 2 * z, 3, padding=1)
        self.quant_conv, self.post_quant_conv = nn.Conv2d(2 * z, 2 * z, 1), nn.Conv2d(z, z, 1)
        d.conv_in, ups = nn.Conv2d(z, cin, 3, padding=1), []
        for i in reversed(range(len(chans))):
            lvl = nn.Module()
            blocks = [Res(cin if j == 0 else chans[i], chans[i]) for j in range(2)]
            lvl.block, lvl.attn = (
                nn.ModuleList(blocks),
                nn.ModuleList([Attn(chans[i]) for _ in range(2)] if i == len(chans) - 1 else []),
            )
            if i != 0:
                lvl.upsample = nn.Module()
                lvl.upsample.conv = nn.Conv2d(chans[i], chans[i], 3, padding=1)
            ups.insert(0, lvl)
            cin = chans[i]
        d.up = nn.ModuleList(ups)
        d.norm_out, d.conv_out = nn.GroupNorm(32, cin, eps=1e-6), nn.Conv2d(cin, 3, 3, padding=1)

    @staticmethod
    def _blocks(lvl: nn.Module, h: torch.Tensor) -> torch.Tensor:
        for j, blk in enumerate(lvl.block):
            h = blk(h)
            if len(lvl.attn):
                h = lvl.attn[j](h)
        return h

    def moments(self, x: torch.Tensor) -> torch.Tensor:
        e = self.encoder
        h = e.conv_in(x)
        for lvl in e.down:
            h = self._blocks(lvl, h)
            if hasattr(lvl, "downsample"):
                h = lvl.downsample.conv(F.pad(h, (0, 1, 0, 1)))
        h = e.mid.block_2(e.mid.attn_1(e.mid.block_1(h)))
        return self.quant_conv(e.conv_out(F.silu(e.norm_out(h))))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        d = self.decoder
        h = d.conv_in(self.post_quant_conv(z))
        h = d.mid.block_2(d.mid.attn_1(d.mid.block_1(h)))
        for i in reversed(range(len(d.up))):
            h = self._blocks(d.up[i], h)
            if hasattr(d.up[i], "upsample"):
                h = d.up[i].upsample.conv(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return d.conv_out(F.silu(d.norm_out(h)))
