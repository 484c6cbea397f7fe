"""Resolve `pretrained=` (a local directory or a Hugging Face Hub id) to a local directory, never silently.

Every pretrained family (conv_vae, sd3_vae, siglip2, ...) goes through `resolve_pretrained`, so they all fail
the same way: a `MissingWeightsError` that names what was asked for and how to supply a local directory.
Nothing is downloaded while offline (`HF_HUB_OFFLINE=1`), and weights are never replaced by random ones.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import torch

from worldmodel.errors import MissingWeightsError

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_offline() -> bool:
    """True when the user asked huggingface_hub not to touch the network (read at call time, not import)."""
    flag = os.environ.get("HF_HUB_OFFLINE", "")
    if flag.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:  # pragma: no cover - huggingface_hub ships with diffusers
        return True


def looks_like_hub_id(pretrained: str) -> bool:
    """`owner/name` without path markers; anything else is treated as a local path."""
    return bool(_HUB_ID.match(pretrained)) and not pretrained.startswith((".", "/", "~"))


def resolve_pretrained(
    pretrained: str | os.PathLike, what: str, allow_patterns: list[str] | None = None
) -> Path:
    """Return a local directory holding `pretrained`'s files, from disk, the Hub cache, or (online) the Hub.

    `what` names the component in error messages (e.g. "encoder 'conv_vae'"). `allow_patterns` limits a
    download to the files a family needs (e.g. `["vae/*"]`), so one subfolder never pulls a whole repository.
    """
    text = os.fspath(pretrained)
    local = Path(text).expanduser()
    if local.is_dir():
        return local
    if local.exists():
        raise MissingWeightsError(
            f"{what}: pretrained={text} is a file, not a directory: pass the directory that holds its config"
        )
    if not looks_like_hub_id(text):
        raise MissingWeightsError(
            f"{what}: pretrained={text} does not exist: pass a local directory written by save_pretrained "
            "(or a Hub id such as owner/name that is in the local Hugging Face cache)"
        )
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(text, allow_patterns=allow_patterns, local_files_only=True))
    except Exception as cached_err:  # any failure here means "not cached"
        if is_offline():
            raise MissingWeightsError(
                f"{what}: Hub id '{text}' is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: "
                f"download it once online (huggingface-cli download {text}) or pass pretrained=<local directory>"
            ) from cached_err
    try:
        return Path(snapshot_download(text, allow_patterns=allow_patterns))
    except Exception as err:  # network, auth and missing-repo errors all end here
        raise MissingWeightsError(
            f"{what}: could not fetch Hub id '{text}' ({type(err).__name__}): check the id and your network, "
            "or pass pretrained=<local directory> holding the weights"
        ) from err


def fingerprint_module(module: torch.nn.Module) -> str:
    """Short SHA-256 of a module's parameters and buffers: two latent spaces with equal configs but
    different weights must not be mixed, and this is what tells them apart."""
    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
