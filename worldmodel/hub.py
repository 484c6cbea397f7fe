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


def split_revision(pretrained: str) -> tuple[str, str | None]:
    """`owner/name@revision` -> (`owner/name`, `revision`), so a CLI list entry can pin a Hub revision; anything
    that is not a Hub id with a revision comes back unchanged."""
    repo, sep, revision = pretrained.rpartition("@")
    if sep and revision and looks_like_hub_id(repo) and not Path(pretrained).expanduser().exists():
        return repo, revision
    return pretrained, None


def resolve_pretrained(
    pretrained: str | os.PathLike,
    what: str,
    allow_patterns: list[str] | None = None,
    revision: str | None = None,
) -> Path:
    """Return a local directory holding `pretrained`'s files, from disk, the Hub cache, or (online) the Hub.

    `what` names the component in error messages (e.g. "encoder 'conv_vae'"). `allow_patterns` limits a
    download to the files a family needs (e.g. `["vae/*"]`), so one subfolder never pulls a whole repository.
    `revision` (a branch, tag or commit of a Hub id) is looked up in the cache first, like the id itself.
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

    at = f" at revision {revision}" if revision else ""
    try:
        return Path(
            snapshot_download(text, revision=revision, allow_patterns=allow_patterns, local_files_only=True)
        )
    except Exception as cached_err:  # any failure here means "not cached"
        if is_offline():
            fetch = f"huggingface-cli download {text}" + (f" --revision {revision}" if revision else "")
            raise MissingWeightsError(
                f"{what}: Hub id '{text}'{at} is not in the local Hugging Face cache and HF_HUB_OFFLINE is "
                f"set: download it once online ({fetch}) or pass pretrained=<local directory>"
            ) from cached_err
    try:
        return Path(snapshot_download(text, revision=revision, allow_patterns=allow_patterns))
    except Exception as err:  # network, auth and missing-repo errors all end here
        raise MissingWeightsError(
            f"{what}: could not fetch Hub id '{text}'{at} ({type(err).__name__}): check the id and your network, "
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
