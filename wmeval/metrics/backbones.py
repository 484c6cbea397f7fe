"""Pretrained feature networks for LPIPS, FID and FVD, loaded only from local files: nothing downloads.

Why so careful: a perceptual metric computed with random weights is a plausible-looking wrong number. So each
backbone is looked up as a file first (`torch.hub.get_dir()/checkpoints/<torchvision's file name>`, or a path
given in the config); the model is then built with `weights=None` and the file loaded into it. When the file is
missing the caller gets `BackboneUnavailable` whose message says what is missing and how to provide it.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn


class BackboneUnavailable(RuntimeError):
    """A pretrained backbone is not on this machine; the message says which file and where to put it."""


@dataclass(frozen=True)
class Backbone:
    name: str
    purpose: str
    url: str  # torchvision's URL; only its file name is used, to find torch.hub's cached copy
    constructor: str  # how torchvision builds it with weights, for the message
    features: str  # what the metric compares, so a number in metrics.json says which network made it

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


BACKBONES = {
    "alexnet": Backbone(
        "alexnet",
        "LPIPS",
        "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        "torchvision.models.alexnet(weights='IMAGENET1K_V1')",
        "LPIPS v0.1 linear heads on the 5 AlexNet conv stages",
    ),
    "inception_v3": Backbone(
        "inception_v3",
        "FID",
        "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
        "torchvision.models.inception_v3(weights='IMAGENET1K_V1')",
        "2048-d pool features at 299 px (torchvision's ImageNet weights, not the TF FID graph)",
    ),
    "r3d_18": Backbone(
        "r3d_18",
        "FVD",
        "https://download.pytorch.org/models/r3d_18-b3b3357e.pth",
        "torchvision.models.video.r3d_18(weights='KINETICS400_V1')",
        "512-d pooled clip features at 112 px (R3D-18 on Kinetics-400, not the I3D of the FVD paper)",
    ),
}

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
KINETICS_MEAN, KINETICS_STD = (0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989)


def describe(name: str) -> dict[str, str]:
    """The backbone behind a metric, as metrics.json records it: FID/FVD values are only comparable between
    runs (and papers) that used the same network and weights."""
    spec = BACKBONES[name]
    return {"network": name, "weights": spec.filename, "features": spec.features}


def hub_checkpoints() -> Path:
    """Where torch.hub keeps downloaded weights (honours TORCH_HOME at call time)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_checkpoint(name: str, override: str | os.PathLike | None = None) -> Path:
    """The local weights file of backbone `name`, or `BackboneUnavailable` saying how to provide it."""
    spec = BACKBONES[name]
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise BackboneUnavailable(
                f"{spec.purpose} needs {name} weights, and the configured path {path} is not a file: fix the path"
            )
        return path
    path = hub_checkpoints() / spec.filename
    if path.is_file():
        return path
    raise BackboneUnavailable(
        f"{spec.purpose} needs pretrained {name} weights ({spec.filename}), which are not in {path.parent} and "
        f"are never downloaded here; provide them by copying the file there (`{spec.constructor}` saves it there "
        f"on a machine with network) or by setting video.weights.{name}=PATH"
    )


def _load_state(path: Path, name: str) -> dict[str, torch.Tensor]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt or non-tensor pickles raise many types
        raise BackboneUnavailable(f"{name} weights {path} cannot be read ({err}): replace the file") from err


def _strict_load(model: nn.Module, state: dict[str, torch.Tensor], path: Path, name: str) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise BackboneUnavailable(f"{path} is not torchvision's {name} checkpoint ({first})") from err


def load_lpips(path: Path) -> nn.Module:
    """LPIPS (AlexNet, v0.1): the linear heads ship inside the `lpips` package, the AlexNet comes from `path`."""
    from torchvision.models import alexnet

    from worldmodel.adapters.svae_losses import lpips_with_backbone

    tv = alexnet(weights=None)
    _strict_load(tv, _load_state(path, "alexnet"), path, "alexnet")
    return lpips_with_backbone("alex", tv.features)


def load_inception(path: Path) -> nn.Module:
    """InceptionV3 whose output is the 2048-d pool feature (FID's), fed ImageNet-normalised 299 px frames."""
    from torchvision.models import inception_v3

    model = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True)
    _strict_load(model, _load_state(path, "inception_v3"), path, "inception_v3")
    model.fc = nn.Identity()
    return model.eval()


def load_r3d(path: Path) -> nn.Module:
    """R3D-18 (Kinetics-400) whose output is the 512-d pooled clip feature (the paper's FVD)."""
    from torchvision.models.video import r3d_18

    model = r3d_18(weights=None)
    _strict_load(model, _load_state(path, "r3d_18"), path, "r3d_18")
    model.fc = nn.Identity()
    return model.eval()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a [N, D] and b [M, D] (FID / FVD)."""
    from scipy import linalg

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1 = np.atleast_2d(np.cov(a, rowvar=False)) if len(a) > 1 else np.zeros((a.shape[1],) * 2)
    s2 = np.atleast_2d(np.cov(b, rowvar=False)) if len(b) > 1 else np.zeros((b.shape[1],) * 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few samples give singular covariances; the value stays defined
        covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(s1)) * 1e-6
        covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    covmean = np.real(covmean)
    value = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
    return max(value, 0.0)
