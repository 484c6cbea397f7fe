"""Shared plumbing of the frozen pretrained families (sd3_vae, rae_dinov2, webssl, siglip2, qwen25vl, vjepa2, cosmos,
vavae): loading, freezing, config round-trips, the latent convention of the two VAEs, and the resize + normalise
step of the semantic ViTs.

Why one base: every family must fail the same way when weights are absent (`resolve_pretrained`: a local directory
or a Hub id already in the cache, never random weights), stay frozen whatever `train()` is asked (the latent space
must not drift while a world model trains on it), and record a config that rebuilds the same latent space:
`pretrained` + options + a fingerprint of the weights, checked again when the config is loaded.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from worldmodel.encoders.base import Encoder
from worldmodel.encoders.common import AutoencoderKLGeometry, parse_size, resize_frames
from worldmodel.errors import InputError, MissingWeightsError
from worldmodel.hub import fingerprint_module, resolve_pretrained

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: files a transformers checkpoint needs from a Hub snapshot (skips duplicate .bin / .msgpack / tokenizer blobs)
HF_FILES = ["*.json", "*.safetensors"]


def parse_dtype(dtype: str) -> torch.dtype:
    if dtype not in DTYPES:
        raise InputError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def read_processor_stats(directory: Path) -> tuple[list[float], list[float]] | None:
    """`image_mean` / `image_std` from the checkpoint's own (image or video) processor config, if it has one."""
    for name in ("preprocessor_config.json", "video_preprocessor_config.json"):
        path = directory / name
        if path.is_file():
            cfg = json.loads(path.read_text())
            if "image_mean" in cfg and "image_std" in cfg:
                return [float(v) for v in cfg["image_mean"]], [float(v) for v in cfg["image_std"]]
    return None


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' per-key load warnings (e.g. SigLIP's unused text tower); missing keys are checked."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(before)


def load_hf_model(model_cls: Any, directory: Path, what: str) -> Any:
    """`model_cls.from_pretrained(directory)`, refusing the randomly initialised weights transformers would
    otherwise fill missing keys with (it only warns)."""
    if not (directory / "config.json").is_file():
        raise MissingWeightsError(
            f"{what}: {directory} has no config.json: pass a directory written by the model's save_pretrained "
            "(or a Hub snapshot of it)"
        )
    try:
        with quiet_transformers():
            model, info = model_cls.from_pretrained(directory, output_loading_info=True)
    except (OSError, ValueError, KeyError) as err:
        raise MissingWeightsError(f"{what}: could not load {directory} ({err})") from err
    if info.get("missing_keys"):
        missing = ", ".join(sorted(info["missing_keys"])[:4])
        raise MissingWeightsError(
            f"{what}: {directory} lacks weights for {missing}, ...: pass the checkpoint's own directory"
        )
    return model


class FrozenEncoder(Encoder):
    """A pretrained encoder that never trains. Subclasses load in `__init__` and end it with `finish_loading`."""

    #: Hub id loaded when `pretrained` is not given
    default_pretrained: str = ""
    #: `allow_patterns` for a Hub snapshot: only the files this family reads
    hub_files: list[str] | None = HF_FILES

    def __init__(self, pretrained: str | None, dtype: str) -> None:
        super().__init__()
        self.pretrained = str(pretrained or self.default_pretrained)
        self.dtype_name = dtype
        self.model_dtype = parse_dtype(dtype)
        self._fingerprint: str | None = None

    @property
    def what(self) -> str:
        return f"encoder '{self.name}'"

    def resolve(self) -> Path:
        return resolve_pretrained(self.pretrained, self.what, self.hub_files)

    def finish_loading(self, fingerprint: str | None) -> None:
        """Cast, freeze, and check the weights against the fingerprint a saved config recorded."""
        self.to(self.model_dtype)
        self.requires_grad_(False)
        super().train(False)
        if fingerprint is not None and fingerprint != self.fingerprint:
            raise MissingWeightsError(
                f"{self.what}: config names weights with fingerprint {fingerprint} but {self.pretrained} holds "
                f"{self.fingerprint}: pass pretrained=<the directory (or Hub revision) those latents were made with>"
            )

    @classmethod
    def from_pretrained(cls, pretrained: str, **options: Any) -> FrozenEncoder:
        """Load from a local directory or a cached Hub id; options are this family's constructor arguments."""
        accepted = [n for n in inspect.signature(cls.__init__).parameters if n not in {"self", "pretrained"}]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise InputError(
                f"encoder '{cls.name}' does not take option(s) {', '.join(unknown)}: accepted are {', '.join(accepted)}"
            )
        return cls(pretrained=pretrained, **options)

    def train(self, mode: bool = True) -> FrozenEncoder:
        """Always eval: dropout or a norm switching modes would change the latent space under the world model."""
        return super().train(False)

    @property
    def fingerprint(self) -> str:
        """SHA-256 prefix of the weights (computed once: they are frozen)."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint_module(self)
        return self._fingerprint

    def options(self) -> dict[str, Any]:
        """The family's JSON-serialisable constructor options (everything but pretrained/dtype/fingerprint)."""
        return {}

    def get_config(self) -> dict[str, Any]:
        return {
            "type": self.name,
            "pretrained": self.pretrained,
            **self.options(),
            "dtype": self.dtype_name,
            "fingerprint": self.fingerprint,
        }

    def model_param(self) -> torch.Tensor:
        return next(self.parameters())

    def check_latents(self, latents: torch.Tensor) -> torch.Tensor:
        h, w, d = self.latent_shape
        if latents.ndim != 4 or tuple(latents.shape[1:]) != (h, w, d):
            raise InputError(f"latents must be [B, {h}, {w}, {d}], got shape {tuple(latents.shape)}")
        return latents


def chunked(fn: Any, x: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """Apply `fn` to slices of at most `chunk_size` frames, so a long episode never needs one giant batch."""
    if x.shape[0] <= chunk_size:
        return fn(x)
    return torch.cat([fn(x[i : i + chunk_size]) for i in range(0, x.shape[0], chunk_size)])


def check_chunk_size(chunk_size: int) -> int:
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise InputError(f"chunk_size must be a positive int, got {chunk_size!r}")
    return chunk_size


class KLVAEEncoder(AutoencoderKLGeometry, FrozenEncoder):
    """Frozen `AutoencoderKL` families (sd3_vae, vavae) share one latent convention: frames in [0, 1] ->
    `x * 2 - 1` -> posterior sample (`latent="sample"`) or mean (`"mode"`) times `scaling_factor`, in chunks of
    `chunk_size` frames; `decode` undoes it. Subclasses set `vae`, `latent` and `chunk_size`, then `set_size`."""

    latent: str
    chunk_size: int

    def set_size(self, image_size: int | Sequence[int]) -> None:
        """Record the input size, refusing one the VAE's downsampling does not divide."""
        self._size = parse_size(image_size)
        down = self.downsample
        if self._size[0] % down or self._size[1] % down:
            raise InputError(f"{self.what}: image_size {self._size} must be divisible by {down}")

    def encode(self, frames: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = resize_frames(self.check_frames(frames), self._size)
        p = self.model_param()
        x = x.to(device=p.device, dtype=p.dtype) * 2.0 - 1.0

        def one(chunk: torch.Tensor) -> torch.Tensor:
            dist = self.vae.encode(chunk).latent_dist
            return dist.sample(generator) if self.latent == "sample" else dist.mode()

        with torch.no_grad():
            z = chunked(one, x, self.chunk_size) * self.scaling_factor
        return z.permute(0, 2, 3, 1).float().contiguous()

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        p = self.model_param()
        z = (
            self.check_latents(latents).permute(0, 3, 1, 2).to(device=p.device, dtype=p.dtype)
            / self.scaling_factor
        )
        with torch.no_grad():
            x = chunked(lambda c: self.vae.decode(c).sample, z, self.chunk_size)
        return ((x.float() + 1.0) * 0.5).clamp(0.0, 1.0)


class ViTEncoder(FrozenEncoder):
    """Semantic ViT families: bicubic resize to the model's input size, normalise with its processor's mean/std,
    keep the patch tokens as a `[B, h, w, D]` grid. No pixel decoder: semantic latents decode through an adapter.

    `antialias=True` (default) matches the Hugging Face image processors (PIL resampling) the encoders were
    trained with; the seed code resized with `F.interpolate(bicubic)` without antialiasing, which
    `antialias=False` reproduces. Measured on a noisy 256 px frame shrunk to 224, in normalised units (std 0.5):
    mean |diff| to PIL 0.002 (max 0.04) with antialiasing, 0.023 (max 0.16) without.
    """

    default_mean: Sequence[float] = IMAGENET_MEAN
    default_std: Sequence[float] = IMAGENET_STD

    def setup_input(
        self,
        directory: Path,
        image_size: int | Sequence[int],
        patch: int,
        hidden: int,
        image_mean: Sequence[float] | None,
        image_std: Sequence[float] | None,
        antialias: bool,
        multiple: int | None = None,
    ) -> None:
        """Record the input geometry and the normalisation (given, else the checkpoint's processor, else default)."""
        size = parse_size(image_size)
        step = multiple or patch
        if size[0] % step or size[1] % step:
            raise InputError(
                f"{self.what}: image_size {size} must be a multiple of {step}: use e.g. {(size[0] // step) * step}"
            )
        self._size, self.patch, self.hidden, self.antialias = size, patch, hidden, bool(antialias)
        stats = read_processor_stats(directory) or (list(self.default_mean), list(self.default_std))
        mean = [float(v) for v in (image_mean if image_mean is not None else stats[0])]
        std = [float(v) for v in (image_std if image_std is not None else stats[1])]
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise InputError(
                f"{self.what}: image_mean/image_std must be 3 numbers (std > 0), got {mean}, {std}"
            )
        self.image_mean, self.image_std = mean, std

    def load_model(self, model_cls: Any, directory: Path, model_type: str | None = None) -> Any:
        """`load_hf_model`, refusing a checkpoint whose `model_type` is not `model_type` when one is given:
        transformers only warns when a checkpoint of another architecture loads into `model_cls`."""
        model = load_hf_model(model_cls, directory, self.what)
        kind = getattr(model.config, "model_type", "")
        if model_type is not None and kind != model_type:
            raise InputError(f"{self.what}: {directory} holds a '{kind}' model, not {model_type}")
        return model

    @property
    def has_decoder(self) -> bool:
        return False

    @property
    def image_size(self) -> tuple[int, int]:
        return self._size

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self._size[0] // self.patch, self._size[1] // self.patch, self.hidden)

    def normalize(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [0, 1] -> float32 [B, 3, *image_size] on the model's device, as the processor gives."""
        x = self.check_frames(frames).to(device=self.model_param().device, dtype=torch.float32)
        if tuple(x.shape[-2:]) != self._size:
            x = F.interpolate(
                x, size=self._size, mode="bicubic", align_corners=False, antialias=self.antialias
            )
            x = x.clamp(0.0, 1.0)  # bicubic overshoots; PIL's uint8 resize clamps too
        mean = torch.tensor(self.image_mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.image_std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised pixels (model dtype) -> patch tokens `[B, h*w, D]` in raster order."""
        raise NotImplementedError

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        x = self.normalize(frames).to(self.model_param().dtype)
        with torch.no_grad():
            tok = self.tokens(x)
        h, w, d = self.latent_shape
        if tuple(tok.shape[1:]) != (h * w, d):
            raise RuntimeError(
                f"{self.what}: model gave tokens {tuple(tok.shape)}, expected [B, {h * w}, {d}]"
            )
        return tok.reshape(tok.shape[0], h, w, d).float()

    def vit_options(self) -> dict[str, Any]:
        return {
            "image_size": list(self._size),
            "antialias": self.antialias,
            "image_mean": self.image_mean,
            "image_std": self.image_std,
        }
