"""Loss terms of the S-VAE (paper eq. 14): KL, FFT-magnitude spectrum, MS-SSIM and a local-only LPIPS.

LPIPS needs an ImageNet backbone (VGG16 in the paper, AlexNet as an option). A perceptual loss with random
weights would train towards a meaningless target, so the backbone is read only from torch.hub's cache
(`$TORCH_HOME/hub/checkpoints/<torchvision file>`) and the loss is reported unavailable when it is not there;
nothing downloads. MS-SSIM is a small differentiable implementation (no extra dependency) that uses as many
scales as the image allows, so 64 px frames get a 3-scale MS-SSIM instead of an error.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

#: torchvision's checkpoint file names for the LPIPS backbones (the file torch.hub would cache)
LPIPS_BACKBONES = {"vgg": "vgg16-397923af.pth", "alex": "alexnet-owt-7be5be79.pth"}
_MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) averaged over every element (the paper code's reduction)."""
    return 0.5 * torch.mean(mu.square() + logvar.exp() - 1.0 - logvar)


def kl_weight_at(step: int, total_steps: int, weight: float, warmup_fraction: float = 0.2) -> float:
    """Linear warm-up of the KL weight from 0 over the first `warmup_fraction` of the steps."""
    warm = warmup_fraction * total_steps
    if warm <= 0:
        return weight
    return weight * min(1.0, step / warm)


def spectral_loss(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between magnitudes of a 1-D FFT along the token axis of `[B, h, w, D]` grids (per channel)."""
    b, d = recon.shape[0], recon.shape[-1]
    fr = torch.fft.rfft(recon.reshape(b, -1, d).float(), dim=1, norm="ortho").abs()
    ft = torch.fft.rfft(target.reshape(b, -1, d).float(), dim=1, norm="ortho").abs()
    return F.l1_loss(fr, ft)


def _gaussian_window(size: int, sigma: float, channels: int, device: torch.device) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def _ssim_parts(x: torch.Tensor, y: torch.Tensor, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image mean SSIM and contrast-structure term, inputs in [0, 1]."""
    c1, c2, ch = 0.01**2, 0.03**2, x.shape[1]
    mu_x, mu_y = F.conv2d(x, window, groups=ch), F.conv2d(y, window, groups=ch)
    sxx = F.conv2d(x * x, window, groups=ch) - mu_x**2
    syy = F.conv2d(y * y, window, groups=ch) - mu_y**2
    sxy = F.conv2d(x * y, window, groups=ch) - mu_x * mu_y
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    ssim = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs
    return ssim.flatten(1).mean(1), cs.flatten(1).mean(1)


def ssim(x: torch.Tensor, y: torch.Tensor, window_size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM `[B]` of `[B, C, H, W]` in [0, 1]: Wang et al. (2004), Gaussian 11x11 window with sigma
    1.5, valid positions only, averaged over channels and positions (the number papers report). The window
    shrinks to the frame when the frame is smaller."""
    x, y = x.float(), y.float()
    win = min(window_size, *x.shape[-2:])
    return _ssim_parts(x, y, _gaussian_window(win, sigma, x.shape[1], x.device))[0]


def ms_ssim(x: torch.Tensor, y: torch.Tensor, window_size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean MS-SSIM of `[B, 3, H, W]` in [0, 1] (Wang et al. 2003 weights, renormalised to the scales used).

    Uses up to 5 scales, fewer when the image is too small for the window at the coarsest one.
    """
    x, y = x.float(), y.float()
    win = min(window_size, *x.shape[-2:])
    window = _gaussian_window(win, sigma, x.shape[1], x.device)
    levels = 1
    while levels < len(_MS_SSIM_WEIGHTS) and min(x.shape[-2:]) // 2**levels >= win:
        levels += 1
    weights = torch.tensor(_MS_SSIM_WEIGHTS[:levels], device=x.device)
    weights = weights / weights.sum()
    values = []
    for level in range(levels):
        ssim, cs = _ssim_parts(x, y, window)
        values.append(ssim if level == levels - 1 else cs)
        if level < levels - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    stacked = torch.stack(values, dim=1).clamp_min(1e-6)  # relu as in pytorch_msssim, then a safe power
    return torch.prod(stacked ** weights[None], dim=1).mean()


def lpips_checkpoint(net: str) -> Path:
    """Where torch.hub would keep the backbone of LPIPS-`net` (honours TORCH_HOME at call time)."""
    if net not in LPIPS_BACKBONES:
        raise ValueError(f"lpips_net={net!r} is unknown: choose one of {', '.join(LPIPS_BACKBONES)}")
    return Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_BACKBONES[net]


def lpips_with_backbone(net: str, features: nn.Sequential) -> nn.Module:
    """A frozen LPIPS-`net` whose backbone layers are copied from torchvision's `features` (already loaded).

    `pnet_rand=True` stops lpips from asking torchvision for pretrained weights (which would download); its
    linear heads ship inside the package. Its slice1..N hold `features[i]` under the name "i".
    """
    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metric = lpips.LPIPS(pretrained=True, net=net, pnet_rand=True, verbose=False)
    for block in metric.net.children():
        for index, module in block.named_children():
            module.load_state_dict(features[int(index)].state_dict())
    metric.requires_grad_(False)
    return metric.eval()


def load_lpips(net: str = "vgg") -> tuple[nn.Module | None, str]:
    """(frozen LPIPS module, "available") or (None, why it is unavailable). Never random backbone weights."""
    path = lpips_checkpoint(net)
    if not path.is_file():
        return None, (
            f"unavailable: pretrained {net} weights {path.name} are not in {path.parent} (never downloaded "
            f"here; copy torchvision's file there to enable LPIPS)"
        )
    try:
        import lpips  # noqa: F401 - checked here so a missing package is a reason, not a crash
        from torchvision import models
    except ImportError as err:
        return None, f"unavailable: the lpips package is not installed ({err})"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        tv = models.vgg16(weights=None) if net == "vgg" else models.alexnet(weights=None)
        tv.load_state_dict(state, strict=True)
    except Exception as err:  # corrupt or foreign files raise many types
        return None, f"unavailable: {path} is not torchvision's {net} checkpoint ({err})"
    return lpips_with_backbone(net, tv.features), "available"
