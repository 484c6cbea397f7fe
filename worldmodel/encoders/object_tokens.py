"""`object_tokens`: a frame as K object tokens, each a position plus a small feature vector.

Why: a world model over a few tokens per frame spends its updates on dynamics (who pushes what where) instead
of on rendering a dense grid, and "where is the pusher relative to the block" becomes explicit geometry.

Latent contract: `encode` gives `[B, 1, K, 2 + F]`, a 1 x K grid, so latent caches, clip samplers and the
`WorldModel` handle it like any other grid. Channels 0:2 are the token's position (x, y) in image coordinates
in [-1, 1]: x right, y down, -1 / +1 the left (top) and right (bottom) image edges, 0 the frame centre (the
centre of pixel column c of W sits at (2c + 1) / W - 1, the `align_corners=False` convention). Channels 2:
are the token's features, in [-1, 1] (tanh).

Encoder (a KeyNet / Transporter keypoint bottleneck): a randomly initialised timm ResNet's feature maps,
fused at the finest level, give K heat-maps (softmax over space); a token's position is its heat-map's
expected position (soft-argmax, so sub-cell precise and differentiable), its features the heat-map-weighted
average of the feature map through a linear layer.

Decoder (keypoint renderer): each token is drawn as an isotropic Gaussian at its position carrying its
features plus a learned per-token identity; those maps and the bare Gaussians go through a small CNN that
upsamples to the frame, on top of a learned full-resolution background (what never moves, e.g. a goal
marker, costs the tokens nothing). At inference the renderer is most of an imagined step, so its convolutions
may run in bfloat16 (`render_dtype`): by default on CPUs with native bf16 dot products, where they run several
times faster and the frames stay within a few 1/1000 of float32's, below a uint8 frame's resolution; training
always renders in float32.

Optional state supervision (`state_points`, `state_angles`, `state_range`, see `ObjectTokensConfig`): token i's
position is trained to sit on state point i, and a small head reads the angle dims (as cos, sin) from the
latent; `read_state` maps a latent back to state units, a free probe of what the latent holds.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from worldmodel.encoders.base import Encoder
from worldmodel.encoders.common import parse_size, resize_frames
from worldmodel.encoders.precision import RENDER_DTYPES, resolve_render_dtype
from worldmodel.errors import InputError, MissingWeightsError
from worldmodel.hub import fingerprint_module
from worldmodel.io import atomic_path
from worldmodel.reading import load_weights, read_json

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


@dataclass
class ObjectTokensConfig:
    """Architecture (and optional state layout) of an `object_tokens` encoder."""

    image_size: int | tuple[int, int] = 64
    num_tokens: int = 8  # K
    feature_dim: int = 8  # F
    backbone: str = "resnet10t"  # any timm model with `features_only` support
    backbone_levels: tuple[int, ...] = (1, 2)  # timm feature indices; the first sets the heat-map stride
    width: int = 64  # channels of the fused feature map the heat-maps and features are read from
    decoder_channels: tuple[int, ...] = (64, 32, 16)  # per decoder level: heat-map resolution, then each 2x
    render_sigma: float = 0.12  # std of a token's rendered Gaussian, in [-1, 1] image units
    #: token i's position is supervised by state dims state_points[i] = (x dim, y dim)
    state_points: tuple[tuple[int, int], ...] = ()
    #: state dims that are angles (radians), read from the latent as (cos, sin) by the state head
    state_angles: tuple[int, ...] = ()
    #: state units of the image's left/top edge and right/bottom edge (PushT: 0 and 512)
    state_range: tuple[float, float] = (-1.0, 1.0)
    #: precision of the renderer's convolutions at inference: auto (bfloat16 on CPUs with native bf16, else
    #: float32), float32 or bfloat16
    render_dtype: str = "auto"

    def __post_init__(self) -> None:
        """Normalise JSON lists to tuples and refuse configs that cannot work, naming the field."""
        self.image_size = parse_size(self.image_size)
        self.backbone_levels = tuple(int(i) for i in self.backbone_levels)
        self.decoder_channels = tuple(int(c) for c in self.decoder_channels)
        self.state_angles = tuple(int(d) for d in self.state_angles)
        self.state_range = tuple(float(v) for v in self.state_range)  # type: ignore[assignment]
        try:
            self.state_points = tuple((int(x), int(y)) for x, y in self.state_points)
        except (TypeError, ValueError) as err:
            raise InputError(f"state_points must be (x dim, y dim) pairs, got {self.state_points!r}") from err
        if self.num_tokens < 1 or self.feature_dim < 1 or self.width < 1:
            raise InputError("num_tokens, feature_dim and width must be positive")
        if not self.backbone_levels or not self.decoder_channels:
            raise InputError("backbone_levels and decoder_channels must each name at least one entry")
        if len(self.state_points) > self.num_tokens:
            raise InputError(
                f"state_points pins {len(self.state_points)} tokens but num_tokens={self.num_tokens}"
            )
        if len(self.state_range) != 2 or self.state_range[0] == self.state_range[1]:
            raise InputError(f"state_range must be two different numbers (low, high), got {self.state_range}")
        if self.render_sigma <= 0:
            raise InputError(f"render_sigma must be positive, got {self.render_sigma}")
        if self.render_dtype not in RENDER_DTYPES:
            raise InputError(
                f"render_dtype must be one of {', '.join(RENDER_DTYPES)}, got {self.render_dtype!r}"
            )

    @property
    def state_dims(self) -> int:
        """Length of the state vector the supervision reads (0 when unsupervised)."""
        dims = [d for p in self.state_points for d in p] + list(self.state_angles)
        return max(dims) + 1 if dims else 0

    def to_state_units(self, positions: torch.Tensor) -> torch.Tensor:
        lo, hi = self.state_range
        return (positions + 1.0) * 0.5 * (hi - lo) + lo

    def to_image_units(self, values: torch.Tensor) -> torch.Tensor:
        lo, hi = self.state_range
        return (values - lo) / (hi - lo) * 2.0 - 1.0


def cell_centres(h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
    """`[h * w, 2]` (x, y) centres of an h x w grid in [-1, 1] image coordinates, row-major."""
    ys = (torch.arange(h, device=device, dtype=torch.float32) * 2 + 1) / h - 1
    xs = (torch.arange(w, device=device, dtype=torch.float32) * 2 + 1) / w - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], -1)


class KeypointEncoder(nn.Module):
    """Frames in [0, 1] -> (positions [B, K, 2], features [B, K, F], heat-maps [B, K, h * w])."""

    def __init__(self, cfg: ObjectTokensConfig) -> None:
        super().__init__()
        import timm

        try:
            self.backbone = timm.create_model(
                cfg.backbone, pretrained=False, features_only=True, out_indices=cfg.backbone_levels
            )
        except (RuntimeError, ValueError, IndexError) as err:
            raise InputError(
                f"backbone={cfg.backbone!r} with backbone_levels={cfg.backbone_levels} cannot be built ({err}): "
                "pick a timm model with features_only support, e.g. resnet10t"
            ) from err
        chans = self.backbone.feature_info.channels()
        self.stride = int(self.backbone.feature_info.reduction()[0])
        self.lateral = nn.ModuleList(nn.Conv2d(c, cfg.width, 1) for c in chans)
        self.fuse = nn.Conv2d(cfg.width, cfg.width, 3, padding=1)
        self.heat = nn.Conv2d(cfg.width, cfg.num_tokens, 1)
        self.project = nn.Linear(cfg.width, cfg.feature_dim)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        maps = self.backbone((frames - self.mean) / self.std)
        size = maps[0].shape[-2:]
        fused = sum(
            F.interpolate(lat(m), size=size, mode="bilinear", align_corners=False) if i else lat(m)
            for i, (lat, m) in enumerate(zip(self.lateral, maps, strict=True))
        )
        fused = F.silu(self.fuse(F.silu(fused)))
        prob = self.heat(fused).flatten(2).softmax(-1)  # [B, K, h * w]
        positions = prob @ cell_centres(*size, device=frames.device)  # soft-argmax, [B, K, 2]
        pooled = prob @ fused.flatten(2).transpose(1, 2)  # [B, K, width]
        return positions, torch.tanh(self.project(pooled)), prob


class KeypointRenderer(nn.Module):
    """Tokens [B, K, 2 + F] -> frames [B, 3, H, W] in [0, 1] (see the module docstring)."""

    def __init__(self, cfg: ObjectTokensConfig, base_size: tuple[int, int]) -> None:
        super().__init__()
        self.base_size = base_size
        self.sigma = cfg.render_sigma
        self.config = cfg  # read at each call: `render_dtype` may be changed after loading
        c0 = cfg.decoder_channels[0]
        self.carry = nn.Linear(cfg.feature_dim, c0)
        self.identity = nn.Parameter(torch.randn(cfg.num_tokens, c0) * 0.5)
        self.stem = nn.Conv2d(c0 + cfg.num_tokens, c0, 3, padding=1)
        self.background = nn.Parameter(torch.zeros(1, c0, *base_size))
        levels: list[nn.Module] = []
        for i, c in enumerate(cfg.decoder_channels):
            nxt = cfg.decoder_channels[i + 1] if i + 1 < len(cfg.decoder_channels) else c
            block: list[nn.Module] = []
            for _ in range(2 if i == 0 else 1):  # the base level gets the extra conv: reach at low cost
                block += [nn.Conv2d(c, c, 3, padding=1), nn.SiLU()]
            if i + 1 < len(cfg.decoder_channels):
                block += [
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv2d(c, nxt, 3, padding=1),
                    nn.SiLU(),
                ]
            levels.append(nn.Sequential(*block))
        self.levels = nn.Sequential(*levels)
        self.out = nn.Conv2d(cfg.decoder_channels[-1], 3, 3, padding=1)
        self.image_bias = nn.Parameter(torch.zeros(1, 3, *cfg.image_size))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions, feats = tokens[..., :2], tokens[..., 2:]
        gauss = self.gaussians(positions, self.base_size)  # [B, K, h, w]
        carried = self.carry(feats) + self.identity  # [B, K, c0]
        maps = torch.einsum("bkhw,bkc->bchw", gauss, carried)
        # channels-last activations: CPU convolutions and nearest upsampling run several times faster in that
        # layout than in NCHW (the renderer is most of an imagined step); the weights stay NCHW for saving
        x = torch.cat([maps, gauss], 1).contiguous(memory_format=torch.channels_last)
        dtype = torch.float32 if self.training else resolve_render_dtype(self.config.render_dtype, x.device)
        with torch.autocast(x.device.type, dtype=dtype, enabled=dtype != torch.float32):
            x = self.out(self.levels(F.silu(self.stem(x) + self.background))).float()
        if x.shape[-2:] != self.image_bias.shape[-2:]:
            x = F.interpolate(x, size=self.image_bias.shape[-2:], mode="bilinear", align_corners=False)
        return torch.sigmoid(x + self.image_bias).contiguous()

    def gaussians(self, positions: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """`[B, K, 2]` positions -> `[B, K, h, w]` unnormalised Gaussians of std `render_sigma` on an h x w grid."""
        centres = cell_centres(*size, device=positions.device)
        d2 = ((positions[:, :, None, :] - centres[None, None]) ** 2).sum(-1)
        log_g = -d2 / (2 * self.sigma**2)
        # far from a token the Gaussian underflows to subnormal floats, which CPUs multiply tens of times more
        # slowly; zero below e^-60 (beneath float32's resolution of anything it is added to) keeps them out
        return torch.exp(log_g).masked_fill(log_g < -60.0, 0.0).unflatten(-1, size)


class ObjectTokensEncoder(Encoder):
    """Keypoint bottleneck + renderer; see the module docstring for the latent convention."""

    name = "object_tokens"

    def __init__(self, fingerprint: str | None = None, pretrained: str | None = None, **arch: Any) -> None:
        """Fresh, untrained weights (the training entry point) for the architecture in `arch`.

        `fingerprint` (from a saved `get_config()`) is checked against the weights, so a config that names
        trained weights never silently comes back as a random model.
        """
        super().__init__()
        unknown = sorted(set(arch) - {f.name for f in fields(ObjectTokensConfig)})
        if unknown:
            raise InputError(f"encoder 'object_tokens' does not take option(s) {', '.join(unknown)}")
        self.config = ObjectTokensConfig(**arch)
        self.pretrained = pretrained
        self.encoder = KeypointEncoder(self.config)
        h, w = self.config.image_size
        stride = self.encoder.stride
        if h % stride or w % stride:
            raise InputError(f"image_size {(h, w)} must be divisible by the backbone stride {stride}")
        self.renderer = KeypointRenderer(self.config, (h // stride, w // stride))
        n_angles = len(self.config.state_angles)
        k, d = self.config.num_tokens, 2 + self.config.feature_dim
        self.state_head = (
            nn.Sequential(nn.Linear(k * d, 128), nn.SiLU(), nn.Linear(128, 2 * n_angles))
            if n_angles
            else None
        )
        if fingerprint is not None and fingerprint != fingerprint_module(self):
            where = f"the weights in {pretrained}" if pretrained else "freshly initialised weights"
            raise MissingWeightsError(
                f"encoder 'object_tokens': config names weights with fingerprint {fingerprint} but {where} "
                "differ: pass pretrained=<the directory those weights were saved to with save_pretrained>"
            )

    @classmethod
    def from_pretrained(
        cls, pretrained: str | Path, fingerprint: str | None = None, **arch: Any
    ) -> ObjectTokensEncoder:
        """Load `config.json` + `model.safetensors` from a local directory (the directory's config is
        authoritative; architecture keys in `arch`, as in a saved `get_config()`, are accepted and ignored)."""
        what = "encoder 'object_tokens'"
        unknown = sorted(set(arch) - {f.name for f in fields(ObjectTokensConfig)})
        if unknown:
            raise InputError(f"{what} does not take option(s) {', '.join(unknown)}")
        directory = Path(pretrained).expanduser()
        hint = "pass a directory written by save_pretrained or `wmeval train-encoder encoder=object_tokens`"
        if not directory.is_dir():
            raise MissingWeightsError(f"{what}: {directory} is not a directory: {hint}")
        config_path, weights_path = directory / CONFIG, directory / WEIGHTS
        fix = (
            "re-save it with save_pretrained, or retrain it with `wmeval train-encoder encoder=object_tokens`"
        )
        saved = read_json(config_path, fix)
        saved.pop("type", None)
        try:
            with torch.random.fork_rng(devices=[]):
                encoder = cls(pretrained=str(pretrained), **saved)
        except (TypeError, ValueError) as err:  # unknown keys or values the config refuses
            raise InputError(f"{what}: {config_path} is not a valid config ({err}): {fix}") from err
        load_weights(encoder, weights_path, f"its config {config_path}", fix)
        if fingerprint is not None and fingerprint != fingerprint_module(encoder):
            raise MissingWeightsError(
                f"{what}: the weights in {weights_path} are not the ones the config names (fingerprint "
                f"{fingerprint}): pass pretrained=<the directory those weights were saved to>"
            )
        return encoder.eval()

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (1, self.config.num_tokens, 2 + self.config.feature_dim)

    @property
    def image_size(self) -> tuple[int, int]:
        return self.config.image_size  # type: ignore[return-value]

    @property
    def render_dtype(self) -> torch.dtype:
        """The dtype the renderer's convolutions run in at inference on this encoder's device (see the config)."""
        return resolve_render_dtype(self.config.render_dtype, next(self.parameters()).device)

    def tokens(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(positions [B, K, 2], features [B, K, F], heat-maps [B, K, h * w]); what training regularises."""
        x = resize_frames(self.check_frames(frames), self.image_size)
        param = next(self.parameters())
        return self.encoder(x.to(device=param.device, dtype=param.dtype))

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        positions, feats, _ = self.tokens(frames)
        return torch.cat([positions, feats], -1)[:, None]

    def check_latents(self, latents: torch.Tensor) -> torch.Tensor:
        shape = self.latent_shape
        if latents.ndim != 4 or tuple(latents.shape[1:]) != shape:
            raise InputError(f"latents must be [B, {', '.join(map(str, shape))}], got {tuple(latents.shape)}")
        param = next(self.parameters())
        return latents[:, 0].to(device=param.device, dtype=param.dtype)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.renderer(self.check_latents(latents))

    def angle_features(self, latents: torch.Tensor) -> torch.Tensor:
        """The state head's (cos, sin) per angle dim, `[B, n_angles, 2]` (unnormalised)."""
        if self.state_head is None:
            raise InputError("this object_tokens encoder has no state_angles: it was trained without a state")
        return self.state_head(self.check_latents(latents).flatten(1)).unflatten(-1, (-1, 2))

    def read_state(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents -> state `[B, state_dims]` in state units: supervised token positions and head angles;
        dims the supervision does not cover are NaN."""
        cfg = self.config
        if not cfg.state_dims:
            raise InputError("this object_tokens encoder was trained without a state: nothing to read")
        tokens = self.check_latents(latents)
        out = torch.full((len(tokens), cfg.state_dims), math.nan, device=tokens.device)
        for i, (dx, dy) in enumerate(cfg.state_points):
            out[:, [dx, dy]] = cfg.to_state_units(tokens[:, i, :2])
        if cfg.state_angles:
            cs = self.angle_features(latents)
            out[:, list(cfg.state_angles)] = torch.atan2(cs[..., 1], cs[..., 0])
        return out

    def get_config(self) -> dict[str, Any]:
        """Architecture + where the weights live + a weight fingerprint that identifies the latent space.

        `render_dtype` is left out: it changes how frames are drawn, not the latents, so a latent cache or world
        model made under one setting is the same under another (`save_pretrained` keeps it in `config.json`).
        """
        arch = {k: v for k, v in _json_arch(self.config).items() if k != "render_dtype"}
        return {
            "type": self.name,
            "pretrained": self.pretrained,
            **arch,
            "fingerprint": fingerprint_module(self),
        }

    def save_pretrained(self, directory: str | Path) -> None:
        """`config.json` + `model.safetensors`, written atomically."""
        with atomic_path(directory) as tmp:
            tmp.mkdir(parents=True)
            save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, tmp / WEIGHTS)
            (tmp / CONFIG).write_text(
                json.dumps({"type": self.name, **_json_arch(self.config)}, indent=2) + "\n"
            )


def _json_arch(cfg: ObjectTokensConfig) -> dict[str, Any]:
    """The dataclass as JSON-safe lists (a saved config must load back to an equal one)."""
    return json.loads(json.dumps(asdict(cfg)))


def init_kwargs(config: ObjectTokensConfig | dict[str, Any] | None) -> dict[str, Any]:
    """Constructor kwargs from the dataclass, a dict or a `get_config()` (weight keys ignored)."""
    if config is None:
        return {}
    if isinstance(config, ObjectTokensConfig):
        return asdict(config)
    names = {f.name for f in fields(ObjectTokensConfig)}
    unknown = sorted(set(config) - names - {"type", "pretrained", "fingerprint"})
    if unknown:
        raise InputError(f"object_tokens config has unknown key(s) {unknown}: accepted are {sorted(names)}")
    return {k: v for k, v in config.items() if k in names}
