"""Encode episodes once into an HDF5 latent cache; train adapters and DiTs on it many times.

Layout (format version 1; strings are UTF-8 attrs, structured values are JSON strings, never pickles):

    /                      attrs: format_version, encoder_name, encoder_config (JSON), latent_shape [h, w, D],
                                  image_size [H, W], preprocessing (JSON), latent_dtype, latent_mean [D],
                                  latent_std [D], num_episodes, num_frames, action_dim, state_dim (-1: none),
                                  metadata (JSON)
    /episodes/<i>          attrs: length, meta (JSON), and success (bool) / policy (str) when given
    /episodes/<i>/latents  float16 [T, h, w, D], one chunk per frame (random frame access stays cheap)
    /episodes/<i>/actions  float32 [T, A]
    /episodes/<i>/states   float32 [T, S] (optional)

`latent_mean` / `latent_std` are per channel over every frame and grid cell of the stored (float16) latents,
population std (numpy's default), for normalising latents before an adapter or DiT sees them. The file is
written under a temporary name and renamed when complete, so a crash never leaves a plausible-looking cache.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from tqdm.auto import tqdm

from worldmodel.encoders.base import Encoder
from worldmodel.errors import InputError
from worldmodel.io import atomic_path

FORMAT_VERSION = 1
_REQUIRED_ATTRS = (
    "encoder_name",
    "encoder_config",
    "latent_shape",
    "image_size",
    "latent_mean",
    "latent_std",
)


@dataclass(frozen=True)
class EpisodeInfo:
    """What is known about an episode without reading its latents."""

    index: int
    length: int
    success: bool | None
    policy: str | None
    meta: dict[str, Any] = field(default_factory=dict)


def build_latent_cache(
    path: str | Path,
    episodes: Iterable[Mapping[str, Any]],
    encoder: Encoder,
    batch_size: int = 64,
    progress: bool = True,
    *,
    metadata: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
) -> LatentCache:
    """Encode every episode's frames with the (frozen) `encoder` and write the cache at `path` atomically.

    Each episode is a mapping with `frames` uint8 `[T, H, W, 3]`, `actions` `[T, A]`, and optionally
    `states` `[T, S]`, `success` (bool), `policy` (str) and `meta` (a JSON-serialisable dict).
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be positive, got {batch_size}")
    dev = torch.device(device) if device is not None else _module_device(encoder)
    h, w, d = encoder.latent_shape
    stats = _RunningStats(d)
    dims: dict[str, int] = {}
    was_training = encoder.training
    encoder.eval()
    try:
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f, torch.inference_mode():
            group = f.create_group("episodes")
            bar = tqdm(episodes, desc="encode episodes", unit="ep", disable=not progress, dynamic_ncols=True)
            for i, episode in enumerate(bar):
                ep = _check_episode(i, episode, dims)
                g = group.create_group(str(i))
                t = len(ep["frames"])
                latents = g.create_dataset("latents", shape=(t, h, w, d), dtype="f2", chunks=(1, h, w, d))
                for s in range(0, t, batch_size):
                    x = torch.from_numpy(ep["frames"][s : s + batch_size]).to(dev)
                    z = encoder.encode(x.permute(0, 3, 1, 2).float().div_(255.0))
                    z16 = _to_float16(z, i)
                    latents[s : s + len(z16)] = z16
                    stats.update(z16.reshape(-1, d))
                g.create_dataset("actions", data=ep["actions"])
                if "states" in ep:
                    g.create_dataset("states", data=ep["states"])
                g.attrs["length"] = t
                g.attrs["meta"] = json.dumps(ep["meta"])
                if ep.get("success") is not None:
                    g.attrs["success"] = bool(ep["success"])
                if ep.get("policy") is not None:
                    g.attrs["policy"] = str(ep["policy"])
                bar.set_postfix(frames=stats.count // (h * w))
            if stats.count == 0:
                raise InputError("episodes is empty: a latent cache needs at least one episode")
            mean, std = stats.result()
            f.attrs.update(
                {
                    "format_version": FORMAT_VERSION,
                    "encoder_name": encoder.name,
                    "encoder_config": json.dumps(encoder.get_config(), sort_keys=True),
                    "latent_shape": np.asarray(encoder.latent_shape, dtype=np.int64),
                    "image_size": np.asarray(encoder.image_size, dtype=np.int64),
                    "preprocessing": json.dumps(
                        {
                            "frames": "uint8 RGB / 255 -> [0, 1], resized by the encoder to image_size",
                            "image_size": list(encoder.image_size),
                        }
                    ),
                    "latent_dtype": "float16",
                    "latent_mean": mean.astype(np.float32),
                    "latent_std": std.astype(np.float32),
                    "num_episodes": len(group),
                    "num_frames": stats.count // (h * w),
                    "action_dim": dims["actions"],
                    "state_dim": dims.get("states", -1),
                    "metadata": _json(dict(metadata or {}), "metadata"),
                }
            )
    finally:
        encoder.train(was_training)
    return LatentCache(path)


class LatentCache:
    """Read side of the cache; refuses files it cannot trust, with a message that says to rebuild.

    The HDF5 file is opened per call (not held open), so a cache object is safe to hand to DataLoader workers.
    """

    def __init__(
        self, path: str | Path, expected_encoder_config: Mapping[str, Any] | Encoder | None = None
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"latent cache {self.path} does not exist: build it with build_latent_cache")
        with self._open() as f:
            self._read_header(f)
        if expected_encoder_config is not None:
            expected = (
                expected_encoder_config.get_config()
                if isinstance(expected_encoder_config, Encoder)
                else dict(expected_encoder_config)
            )
            diff = config_differences(self.encoder_config, expected)
            if diff:
                raise InputError(
                    f"latent cache {self.path} was made by encoder '{self.encoder_name}' with a different config "
                    f"({'; '.join(diff)}): rebuild the cache with this encoder, or load the encoder it was made with"
                )

    def __len__(self) -> int:
        return len(self.episodes)

    def __repr__(self) -> str:
        return (
            f"LatentCache({str(self.path)!r}, encoder={self.encoder_name!r}, episodes={len(self)}, "
            f"frames={self.num_frames}, latent_shape={self.latent_shape})"
        )

    def load_episode(self, index: int, dtype: np.dtype | type = np.float32) -> dict[str, Any]:
        """`{"latents", "actions", ["states"], "length", "success", "policy", "meta", "index"}` as numpy."""
        with self._open() as f:
            return self._read_episode(f, index, dtype)

    def load_all(self, dtype: np.dtype | type = np.float32) -> list[dict[str, Any]]:
        """Every episode in memory (pass `dtype=np.float16` to halve the footprint of wide latents)."""
        with self._open() as f:
            return [self._read_episode(f, e.index, dtype) for e in self.episodes]

    def normalize(self, latents: np.ndarray) -> np.ndarray:
        """Per-channel standardisation with the cache's statistics."""
        return (latents - self.latent_mean) / self.latent_std

    def denormalize(self, latents: np.ndarray) -> np.ndarray:
        return latents * self.latent_std + self.latent_mean

    # -- internals ---------------------------------------------------------------------------------------

    def _open(self) -> h5py.File:
        try:
            return h5py.File(self.path, "r")
        except OSError as err:
            raise InputError(
                f"latent cache {self.path} is not a readable HDF5 file (truncated or corrupt: {err}): "
                "delete it and rebuild it with build_latent_cache"
            ) from err

    def _bad(self, what: str) -> InputError:
        return InputError(
            f"latent cache {self.path} {what}: delete it and rebuild it with build_latent_cache"
        )

    def _read_header(self, f: h5py.File) -> None:
        version = f.attrs.get("format_version")
        if version is None:
            raise self._bad("has no format_version (not a latent cache)")
        if int(version) != FORMAT_VERSION:
            raise self._bad(f"has format version {int(version)}, this library reads version {FORMAT_VERSION}")
        missing = [k for k in _REQUIRED_ATTRS if k not in f.attrs]
        if missing or "episodes" not in f:
            raise self._bad(f"is incomplete (missing {', '.join(missing) or 'episodes'})")
        try:
            self.encoder_config: dict[str, Any] = json.loads(f.attrs["encoder_config"])
            self.preprocessing: dict[str, Any] = json.loads(f.attrs.get("preprocessing", "{}"))
            self.metadata: dict[str, Any] = json.loads(f.attrs.get("metadata", "{}"))
        except (json.JSONDecodeError, TypeError) as err:
            raise self._bad(f"has unreadable JSON attributes ({err})") from err
        self.encoder_name = str(f.attrs["encoder_name"])
        self.latent_shape = tuple(int(v) for v in f.attrs["latent_shape"])
        self.image_size = tuple(int(v) for v in f.attrs["image_size"])
        self.latent_mean = np.asarray(f.attrs["latent_mean"], dtype=np.float32)
        self.latent_std = np.asarray(f.attrs["latent_std"], dtype=np.float32)
        self.action_dim = int(f.attrs.get("action_dim", -1))
        self.state_dim = int(f.attrs.get("state_dim", -1))
        keys = list(f["episodes"])
        if not all(k.isdigit() for k in keys):
            raise self._bad("has episode groups not named by their index")
        episodes = []
        for key in sorted(keys, key=int):
            g = f["episodes"][key]
            if "latents" not in g or "actions" not in g:
                raise self._bad(f"has a malformed episode group '{key}'")
            length = int(g.attrs.get("length", -1))
            if g["latents"].shape != (length, *self.latent_shape) or g["actions"].shape[0] != length:
                raise self._bad(f"episode {key} has inconsistent shapes")
            success = g.attrs.get("success")
            policy = g.attrs.get("policy")
            episodes.append(
                EpisodeInfo(
                    index=int(key),
                    length=length,
                    success=None if success is None else bool(success),
                    policy=None if policy is None else str(policy),
                    meta=json.loads(g.attrs.get("meta", "{}")),
                )
            )
        self.episodes: list[EpisodeInfo] = episodes
        self.num_frames = sum(e.length for e in episodes)
        if len(episodes) != int(f.attrs.get("num_episodes", -1)) or self.num_frames != int(
            f.attrs["num_frames"]
        ):
            raise self._bad("has fewer episodes or frames than its header records")

    def _read_episode(self, f: h5py.File, index: int, dtype: np.dtype | type) -> dict[str, Any]:
        if not 0 <= index < len(self.episodes):
            raise InputError(
                f"episode index {index} is out of range: this cache has {len(self.episodes)} episodes"
            )
        info = self.episodes[index]
        g = f["episodes"][str(info.index)]
        try:
            out: dict[str, Any] = {
                "latents": g["latents"][()].astype(dtype, copy=False),
                "actions": g["actions"][()],
            }
            if "states" in g:
                out["states"] = g["states"][()]
        except OSError as err:
            raise self._bad(f"has unreadable data in episode {index} ({err})") from err
        out.update(
            index=info.index, length=info.length, success=info.success, policy=info.policy, meta=info.meta
        )
        return out


def config_differences(cached: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between two encoder configs, ignoring where weights live.

    When both configs carry a weight `fingerprint`, `pretrained` (a path that may move) is not compared.
    """
    a, b = json.loads(json.dumps(dict(cached))), json.loads(json.dumps(dict(expected)))
    if "fingerprint" in a and "fingerprint" in b:
        a.pop("pretrained", None)
        b.pop("pretrained", None)
    return [
        f"{k}: cache has {a.get(k)!r}, expected {b.get(k)!r}"
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]


class _RunningStats:
    """Per-channel mean and population variance, merged batch by batch in float64 (Chan et al.)."""

    def __init__(self, dim: int) -> None:
        self.count = 0
        self.mean = np.zeros(dim, dtype=np.float64)
        self.m2 = np.zeros(dim, dtype=np.float64)

    def update(self, x: np.ndarray) -> None:
        x = x.astype(np.float64)
        n = len(x)
        if n == 0:
            return
        mean = x.mean(axis=0)
        m2 = ((x - mean) ** 2).sum(axis=0)
        delta = mean - self.mean
        total = self.count + n
        self.mean += delta * (n / total)
        self.m2 += m2 + delta**2 * (self.count * n / total)
        self.count = total

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        return self.mean, np.sqrt(self.m2 / max(self.count, 1))


def _check_episode(i: int, episode: Mapping[str, Any], dims: dict[str, int]) -> dict[str, Any]:
    """Validate one episode at the API edge; action/state widths must agree across episodes."""
    if not isinstance(episode, Mapping) or "frames" not in episode or "actions" not in episode:
        raise InputError(
            f"episode {i} must be a dict with 'frames' and 'actions' (optional 'states', 'meta')"
        )
    frames = np.asarray(episode["frames"])
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise InputError(
            f"episode {i}: frames must be non-empty uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}"
        )
    out: dict[str, Any] = {"frames": np.ascontiguousarray(frames)}
    for key in ("actions", "states"):
        if episode.get(key) is None:
            continue
        arr = np.asarray(episode[key], dtype=np.float32)
        if arr.ndim != 2 or len(arr) != len(frames):
            raise InputError(f"episode {i}: {key} must be [T={len(frames)}, dim], got shape {arr.shape}")
        if dims.setdefault(key, arr.shape[1]) != arr.shape[1]:
            raise InputError(f"episode {i}: {key} has width {arr.shape[1]}, earlier episodes had {dims[key]}")
        out[key] = arr
    if "states" in dims and "states" not in out:
        raise InputError(f"episode {i} has no states but earlier episodes do: give states for all or none")
    meta = dict(episode.get("meta") or {})
    _json(meta, f"episode {i} meta")
    out["meta"] = meta
    out["success"] = episode.get("success", meta.get("success"))
    out["policy"] = episode.get("policy", meta.get("policy"))
    return out


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise InputError(f"{what} must be JSON-serialisable (numbers, strings, lists, dicts): {err}") from err


def _to_float16(z: torch.Tensor, episode: int) -> np.ndarray:
    arr = z.detach().float().cpu().numpy()
    if not np.isfinite(arr).all() or np.abs(arr).max(initial=0.0) > 65000.0:
        raise InputError(
            f"episode {episode}: encoder produced non-finite latents or values beyond float16 range "
            f"(max |z| = {np.nanmax(np.abs(arr)):.3g}): check the encoder and its scaling"
        )
    return arr.astype(np.float16)


def _module_device(module: torch.nn.Module) -> torch.device:
    param = next(module.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


__all__ = ["FORMAT_VERSION", "EpisodeInfo", "LatentCache", "build_latent_cache", "config_differences"]
