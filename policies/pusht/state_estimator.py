"""A tiny CNN that reads the PushT state from a 96x96 frame, for image-based policies and for judging
world-model frames by the task's own success rule.

Design: a fully convolutional net predicts one heat-map per keypoint (the agent centre and four points of the
tee) and takes their spatial expectation (DSNT / soft-argmax), which keeps sub-pixel precision with ~60k
weights. The block pose comes from a closed-form rigid fit of the four tee points, so the angle is regressed
as a direction (cos, sin) whose wrap-around is smooth. Trained with blur/noise/colour jitter so that it also
reads the slightly blurry frames a world model generates.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from policies.errors import PolicyError
from policies.reading import load_weights, read_json

ASSET_DIR = Path(__file__).parent / "assets" / "state_estimator"
WORLD = 512.0
# Tee points (body frame) the net localises; spread out so the rigid fit pins the angle well.
BLOCK_POINTS = torch.tensor([[-45.0, 15.0], [45.0, 15.0], [0.0, 45.0], [0.0, 105.0]])


@contextmanager
def fixed_threads() -> Iterator[None]:
    """One intra-op CPU thread for the enclosed calls, restoring the caller's count afterwards.

    A parallel convolution splits its sums by thread count, so the estimate's last bits depend on
    `threads=`; the controllers reading it turn those bits into different actions and the same seed into
    different success rates. On one thread the estimate is the same whatever the caller's thread count.
    The net is small, so the parallelism given up is negligible.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class EstimatorConfig:
    channels: int = 32
    image_size: int = 96
    num_keypoints: int = 5  # agent + 4 tee points


def _block(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, pad, dilation=dilation, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
    )


class PushTStateEstimator(nn.Module):
    """frames [B, 3, 96, 96] in [0, 1] -> keypoints; `predict_state` gives [B, 5] in simulator units."""

    def __init__(self, config: EstimatorConfig | None = None) -> None:
        super().__init__()
        self.config = config or EstimatorConfig()
        c = self.config.channels
        self.down = nn.Sequential(_block(5, 16, stride=2), _block(16, c, stride=2))  # 24x24
        self.context = nn.Sequential(_block(c, 48, stride=2), _block(48, 48))  # 12x12: sees the whole tee
        self.fuse = nn.Sequential(
            nn.Conv2d(c + 48, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(), _block(c, c)
        )
        self.head = nn.Conv2d(c, self.config.num_keypoints, 1)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        fine = self.down(x)
        coarse = F.interpolate(self.context(fine), size=fine.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([fine, coarse], 1))

    def heatmaps(self, images: torch.Tensor) -> torch.Tensor:
        """[B, K, h, w] per-keypoint probability maps (each sums to 1) over a grid spanning the arena."""
        x = images.float()
        if x.shape[-1] == 3 and x.shape[1] != 3:  # accept channel-last too
            x = x.permute(0, 3, 1, 2)
        b, _, h, w = x.shape
        ys = torch.linspace(-1, 1, h, device=x.device).view(1, 1, h, 1).expand(b, 1, h, w)
        xs = torch.linspace(-1, 1, w, device=x.device).view(1, 1, 1, w).expand(b, 1, h, w)
        logits = self.head(self._features(torch.cat([(x - 0.5) * 4.0, xs, ys], 1)))
        k, gh, gw = logits.shape[1:]
        return logits.flatten(2).softmax(-1).view(b, k, gh, gw)

    def keypoints(self, images: torch.Tensor) -> torch.Tensor:
        """[B, K, 2] keypoint positions in simulator units (x right, y down, 0..512)."""
        return _expected_position(self.heatmaps(images))

    @torch.no_grad()
    def keypoint_spread(self, images: torch.Tensor) -> torch.Tensor:
        """[B, K] how far (simulator units) each keypoint's probability spreads around its position.

        Sharp real frames give a small, stable spread; a frame the net cannot read (a dissolved or smeared
        block) spreads its maps, and the soft-argmax position then drifts toward the maps' centre of mass.
        """
        was_training = self.training
        self.eval()
        with fixed_threads():
            prob = self.heatmaps(images.to(next(self.parameters()).device))
            spread = _spread(prob, _expected_position(prob))
        self.train(was_training)
        return spread

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 6]: agent x, agent y, block x, block y, cos(theta), sin(theta)."""
        kp = self.keypoints(images)
        agent, block = kp[:, 0], kp[:, 1:]
        origin, cos_sin = fit_pose(block)
        return torch.cat([agent, origin, cos_sin], -1)

    @torch.no_grad()
    def predict_state(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 5]: agent x, agent y, block x, block y, block theta (radians, in (-pi, pi])."""
        was_training = self.training
        self.eval()
        with fixed_threads():
            out = self.forward(images.to(next(self.parameters()).device))
        self.train(was_training)
        theta = torch.atan2(out[:, 5], out[:, 4])
        return torch.cat([out[:, :4], theta[:, None]], -1)

    def save_pretrained(self, directory: str | Path, metrics: dict | None = None) -> Path:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, directory / "model.safetensors")
        meta = {"type": "pusht_state_estimator", **asdict(self.config), "metrics": metrics or {}}
        (directory / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str = "cpu") -> PushTStateEstimator:
        directory = Path(directory)
        if not (directory / "config.json").is_file() or not (directory / "model.safetensors").is_file():
            raise PolicyError(
                f"no state estimator in {directory} (needs config.json and model.safetensors): "
                "train one with `wmeval train-estimator out=DIR`"
            )
        fix = "train one with `wmeval train-estimator out=DIR`"
        config_path = directory / "config.json"
        meta = read_json(config_path, fix)
        fields = EstimatorConfig.__dataclass_fields__
        try:
            model = cls(EstimatorConfig(**{k: v for k, v in meta.items() if k in fields}))
        except (TypeError, ValueError, RuntimeError) as err:
            raise PolicyError(f"{config_path} is not a state-estimator config ({err}): {fix}") from err
        load_weights(model, directory / "model.safetensors", f"its config {config_path}", fix, device=device)
        return model.to(device).eval()


def _cell_centres(prob: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x and y of the heat maps' cell centres in simulator units: the image spans [0, 512] in both axes."""
    gh, gw = prob.shape[-2:]
    cx = (torch.arange(gw, device=prob.device, dtype=prob.dtype) + 0.5) * (WORLD / gw)
    cy = (torch.arange(gh, device=prob.device, dtype=prob.dtype) + 0.5) * (WORLD / gh)
    return cx, cy


def _expected_position(prob: torch.Tensor) -> torch.Tensor:
    """Heat maps [B, K, h, w] -> expected positions [B, K, 2] (soft-argmax)."""
    cx, cy = _cell_centres(prob)
    return torch.stack([(prob.sum(2) * cx).sum(-1), (prob.sum(3) * cy).sum(-1)], -1)


def _spread(prob: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """sqrt(var_x + var_y) [B, K] of heat maps [B, K, h, w] around their expected `position` [B, K, 2]."""
    cx, cy = _cell_centres(prob)
    var_x = (prob.sum(2) * cx**2).sum(-1) - position[..., 0] ** 2
    var_y = (prob.sum(3) * cy**2).sum(-1) - position[..., 1] ** 2
    return (var_x + var_y).clamp_min(0).sqrt()


def fit_pose(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rigid 2D fit of BLOCK_POINTS onto world points [B, 4, 2]: (body origin [B, 2], (cos, sin) [B, 2])."""
    local = BLOCK_POINTS.to(points)
    lc = local - local.mean(0)
    wc = points - points.mean(1, keepdim=True)
    dot = (lc * wc).sum((-1, -2))
    cross = (lc[:, 0] * wc[..., 1] - lc[:, 1] * wc[..., 0]).sum(-1)
    norm = torch.sqrt(dot**2 + cross**2).clamp_min(1e-6)
    c, s = dot / norm, cross / norm
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    origin = points.mean(1) - (rot @ local.mean(0))
    return origin, torch.stack([c, s], -1)


def state_to_keypoints(states: torch.Tensor) -> torch.Tensor:
    """Ground-truth keypoints [B, 5, 2] from states [B, 5] (agent x, y, block x, y, theta)."""
    theta = states[:, 4]
    c, s = torch.cos(theta), torch.sin(theta)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    block = states[:, None, 2:4] + torch.einsum("bij,kj->bki", rot, BLOCK_POINTS.to(states))
    return torch.cat([states[:, None, :2], block], 1)


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mild blur, noise and colour jitter so the estimator also reads imperfect (generated) frames."""
    b = images.shape[0]
    out = images
    sigma = torch.rand(b, generator=generator) * 1.3
    blur = sigma > 0.3
    if blur.any():
        k = torch.arange(-2, 3, dtype=images.dtype)
        kern = torch.exp(-(k[None] ** 2) / (2 * sigma[blur, None].clamp_min(0.3) ** 2))
        kern = kern / kern.sum(-1, keepdim=True)
        x = out[blur]
        n = x.shape[0]
        kx = kern.view(n, 1, 1, 5).repeat_interleave(3, 0)
        ky = kern.view(n, 1, 5, 1).repeat_interleave(3, 0)
        x = x.reshape(1, n * 3, *x.shape[-2:])
        x = F.conv2d(F.pad(x, (2, 2, 0, 0), mode="replicate"), kx, groups=n * 3)
        x = F.conv2d(F.pad(x, (0, 0, 2, 2), mode="replicate"), ky, groups=n * 3)
        out = out.clone()
        out[blur] = x.view(n, 3, *x.shape[-2:])
    gain = 1.0 + (torch.rand(b, 3, 1, 1, generator=generator) - 0.5) * 0.16
    bias = (torch.rand(b, 1, 1, 1, generator=generator) - 0.5) * 0.08
    noise = torch.randn(out.shape, generator=generator) * (torch.rand(b, 1, 1, 1, generator=generator) * 0.04)
    return (out * gain + bias + noise).clamp(0, 1)


def estimator_errors(model: PushTStateEstimator, frames: np.ndarray, states: np.ndarray) -> dict[str, float]:
    """Mean absolute errors on frames uint8 [N, H, W, 3] vs true states [N, 5]: agent/block px, angle deg."""
    preds = []
    for i in range(0, len(frames), 512):
        x = torch.from_numpy(frames[i : i + 512]).permute(0, 3, 1, 2).float() / 255.0
        preds.append(model.predict_state(x).double().numpy())
    pred = np.concatenate(preds)
    dtheta = np.angle(np.exp(1j * (pred[:, 4] - states[:, 4])))
    return {
        "agent_px": float(np.linalg.norm(pred[:, :2] - states[:, :2], axis=-1).mean()),
        "block_px": float(np.linalg.norm(pred[:, 2:4] - states[:, 2:4], axis=-1).mean()),
        "angle_deg": float(np.degrees(np.abs(dtheta)).mean()),
        "angle_deg_p95": float(np.percentile(np.degrees(np.abs(dtheta)), 95)),
        "frames": len(frames),
    }


def train_state_estimator(
    frames: np.ndarray,
    states: np.ndarray,
    *,
    epochs: int = 12,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    config: EstimatorConfig | None = None,
    log: bool = True,
) -> PushTStateEstimator:
    """Fit the estimator on frames uint8 [N, 96, 96, 3] and true states [N, 5] (augmenting every batch)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = PushTStateEstimator(config)
    images = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # uint8, converted per batch
    targets = state_to_keypoints(torch.as_tensor(states, dtype=torch.float32))
    steps = epochs * math.ceil(len(images) / batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    model.train()
    start = time.time()
    for epoch in range(epochs):
        order = torch.randperm(len(images), generator=gen)
        total = 0.0
        for i in range(0, len(images), batch_size):
            idx = order[i : i + batch_size]
            x = augment(images[idx].float() / 255.0, gen)
            loss = (model.keypoints(x) - targets[idx]).abs().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if log:
            print(
                f"epoch {epoch + 1}/{epochs}: keypoint L1 {total / len(images):.2f} px ({time.time() - start:.0f}s)",
                flush=True,
            )
    return model.eval()


_DEFAULT: PushTStateEstimator | None = None


def load_default_estimator() -> PushTStateEstimator:
    """The estimator shipped in policies/pusht/assets/state_estimator (loaded once per process)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = PushTStateEstimator.from_pretrained(ASSET_DIR)
    return _DEFAULT
