"""Every file of every saved artefact, damaged five ways, is refused with one line naming the file and the fix.

One table lists the artefact kinds (world model, conv_vae and object_tokens encoders, adapter, state estimator,
trajectory probe, latent cache, training checkpoint): how to write a good one, how to write one of another architecture, how it is
loaded, and which files it holds. The test cases are generated from it: each file of each kind is truncated,
emptied, replaced by a file of another format, by one whose tensors have other shapes, and by the same file of
the other architecture. A kind added to the table is covered without another test.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save

from policies.errors import PolicyError
from wmeval.errors import WmevalError
from worldmodel.errors import WorldModelError

ERRORS = (WorldModelError, WmevalError, PolicyError)
#: each message ends in what to do about it: one of these verbs starts the fix
FIXES = ("re-save", "re-export", "retrain", "rebuild", "delete", "train", "keep", "resume", "pass", "fit")
# a tiny conv_vae (16x16 -> 8x8x4)
TINY_VAE = {"image_size": 16, "block_out_channels": (8, 16), "latent_channels": 4, "norm_num_groups": 4}
# a tiny object_tokens encoder (32x32 frames -> 2 tokens)
TINY_TOKENS = {"image_size": 32, "num_tokens": 2, "width": 8, "decoder_channels": (8,)}

pytestmark = pytest.mark.usefixtures("one_thread")


def _world_model(root: Path, hidden: int) -> Path:
    from worldmodel.adapters import build_adapter
    from worldmodel.dit import DiT, DiTConfig
    from worldmodel.encoders import load_encoder
    from worldmodel.world_model import WorldModel, WorldModelConfig

    torch.manual_seed(hidden)
    encoder = load_encoder("conv_vae", **{**TINY_VAE, "block_out_channels": (8, hidden // 2)})
    h, w, d = encoder.latent_shape
    adapter = build_adapter("mlp", in_dim=d, latent_dim=3, hidden_dim=hidden // 4)
    dit = DiTConfig(in_channels=3, grid=(h, w), action_dim=2, hidden_size=hidden, depth=1, num_heads=2)
    config = WorldModelConfig(
        encoder=encoder.get_config(),
        adapter=adapter.get_config(),
        dit=dit.to_dict(),
        objective={"type": "flow_matching", "num_steps": 1},
        latent_mean=[0.0] * 3,
        latent_std=[1.0] * 3,
        action_offset=[0.0, 0.0],
        action_scale=[1.0, 1.0],
    )
    return WorldModel(config, encoder, adapter, DiT(dit)).save_pretrained(root / "wm")


def _load_world_model(path: Path) -> None:
    from worldmodel.world_model import WorldModel

    WorldModel.from_pretrained(path)


def _encoder(root: Path, hidden: int) -> Path:
    from worldmodel.encoders import load_encoder

    torch.manual_seed(hidden)
    load_encoder("conv_vae", **{**TINY_VAE, "block_out_channels": (8, hidden // 2)}).save_pretrained(
        root / "enc"
    )
    return root / "enc"


def _load_encoder(path: Path) -> None:
    from worldmodel.encoders import load_encoder

    load_encoder("conv_vae", pretrained=str(path))


def _object_tokens(root: Path, hidden: int) -> Path:
    """The other trainable encoder format: `config.json` + `model.safetensors` of its own."""
    from worldmodel.encoders import load_encoder

    torch.manual_seed(hidden)
    load_encoder("object_tokens", **TINY_TOKENS, feature_dim=hidden // 16).save_pretrained(root / "tokens")
    return root / "tokens"


def _load_object_tokens(path: Path) -> None:
    from worldmodel.encoders import load_encoder

    load_encoder("object_tokens", pretrained=str(path))


def _adapter(root: Path, hidden: int) -> Path:
    from worldmodel.adapters import build_adapter, save_adapter

    return save_adapter(build_adapter("mlp", in_dim=4, latent_dim=3, hidden_dim=hidden // 4), root / "ad")


def _load_adapter(path: Path) -> None:
    from worldmodel.adapters import load_adapter

    load_adapter(path)


def _estimator(root: Path, hidden: int) -> Path:
    from policies.pusht.state_estimator import EstimatorConfig, PushTStateEstimator

    return PushTStateEstimator(EstimatorConfig(channels=hidden // 2)).save_pretrained(root / "est")


def _load_estimator(path: Path) -> None:
    from policies.pusht.state_estimator import PushTStateEstimator

    PushTStateEstimator.from_pretrained(path)


def _probe(root: Path, hidden: int) -> Path:
    """A fitted probe; as the other architecture, an adapter's weights file (a probe's width is not fixed)."""
    from wmeval.judges.trajectory_probe import TrajectoryProbe

    if hidden != 32:
        return _adapter(root, hidden) / "model.safetensors"
    rng = np.random.default_rng(hidden)
    features = [rng.normal(size=(4, 2)) + label for label in (0, 1) * 4]
    probe = TrajectoryProbe(featurizer_name="toy").fit(features, [0, 1] * 4)
    return probe.save(root / "probe.safetensors")


def _load_probe(path: Path) -> None:
    from wmeval.judges.trajectory_probe import TrajectoryProbe

    TrajectoryProbe.load(path)


def _cache_encoder(hidden: int):  # noqa: ANN202
    from worldmodel.encoders import load_encoder

    return load_encoder("pixels", image_size=16, factor=2 if hidden == 32 else 4)


def _latent_cache(root: Path, hidden: int) -> Path:
    from worldmodel.data.latent_cache import build_latent_cache

    rng = np.random.default_rng(0)
    episodes = [
        {
            "frames": rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8),
            "actions": np.zeros((3, 2), np.float32),
        }
        for _ in range(2)
    ]
    build_latent_cache(root / "cache.h5", episodes, _cache_encoder(hidden), progress=False)
    return root / "cache.h5"


def _load_latent_cache(path: Path) -> None:
    from worldmodel.data.latent_cache import LatentCache

    LatentCache(path, expected_encoder_config=_cache_encoder(32)).load_all()


def _training_parts(hidden: int):  # noqa: ANN202
    """A model, its EMA, an optimizer that has taken a step, a generator; another width adds a layer."""
    torch.manual_seed(hidden)
    layers = [4, hidden, 2] if hidden == 32 else [4, hidden, hidden, 2]

    def net() -> torch.nn.Module:
        return torch.nn.Sequential(
            *(torch.nn.Linear(a, b) for a, b in zip(layers[:-1], layers[1:], strict=False))
        )

    model, ema = net(), net()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.ones(1, 4)).sum().backward()
    optimizer.step()
    return model, ema, optimizer, torch.Generator().manual_seed(0)


def _checkpoint(root: Path, hidden: int) -> Path:
    from worldmodel.training.checkpoint import save_checkpoint

    return save_checkpoint(root / "checkpoints", 4, *_training_parts(hidden), extra={"sampler": {}})


def _load_checkpoint(path: Path) -> None:
    from worldmodel.training.checkpoint import load_checkpoint

    load_checkpoint(path, *_training_parts(32))


@dataclass(frozen=True)
class Kind:
    name: str
    make: Callable[[Path, int], Path]  # (directory, width) -> the artefact; width 32 is the one that loads
    load: Callable[[Path], None]
    files: tuple[str, ...]  # relative to the artefact ("" for a single-file artefact)


KINDS = [
    Kind(
        "world_model",
        _world_model,
        _load_world_model,
        (
            "world_model.json",
            "dit.safetensors",
            "adapter/config.json",
            "adapter/model.safetensors",
            "encoder/config.json",
            "encoder/diffusion_pytorch_model.safetensors",
        ),
    ),
    Kind("encoder", _encoder, _load_encoder, ("config.json", "diffusion_pytorch_model.safetensors")),
    Kind("object_tokens", _object_tokens, _load_object_tokens, ("config.json", "model.safetensors")),
    Kind("adapter", _adapter, _load_adapter, ("config.json", "model.safetensors")),
    Kind("estimator", _estimator, _load_estimator, ("config.json", "model.safetensors")),
    Kind("probe", _probe, _load_probe, ("",)),
    Kind("latent_cache", _latent_cache, _load_latent_cache, ("",)),
    Kind(
        "checkpoint",
        _checkpoint,
        _load_checkpoint,
        ("state.json", "model.safetensors", "ema.safetensors", "trainer.safetensors"),
    ),
]
DAMAGES = ("truncated", "empty", "wrong_format", "wrong_shape", "foreign")


def _other_format(path: Path) -> bytes:
    """Bytes of a different file type than `path`'s: JSON for binary files, safetensors for JSON ones."""
    if path.suffix == ".json":
        return save({"x": torch.zeros(2)})
    return b'{"this is": "a JSON file"}\n'


def _other_shapes(path: Path) -> bytes:
    """The same kind of file with its tensors (or its JSON object, or its latents) shaped differently."""
    if path.suffix == ".json":
        return b"[1, 2, 3]\n"
    if path.suffix == ".h5":
        buffer = io.BytesIO(path.read_bytes())
        with h5py.File(buffer, "r+") as f:
            latents = f["episodes/0/latents"]
            wrong = np.zeros((latents.shape[0], 1, 1, 1), latents.dtype)
            del f["episodes/0/latents"]
            f["episodes/0/latents"] = wrong
        return buffer.getvalue()
    with safe_open(str(path), framework="pt") as f:
        tensors, metadata = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    return save({k: torch.zeros(v.numel() + 1, dtype=v.dtype) for k, v in tensors.items()}, metadata=metadata)


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """kind -> (an artefact that loads, the same kind of another architecture)."""
    out = {}
    for kind in KINDS:
        root = tmp_path_factory.mktemp(kind.name)
        out[kind.name] = (kind.make(root / "good", 32), kind.make(root / "other", 64))
    return out


CASES = [(kind, file, damage) for kind in KINDS for file in kind.files for damage in DAMAGES]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_every_kind_loads_when_intact(kind, artefacts, tmp_path):
    good, _ = artefacts[kind.name]
    kind.load(good)


@pytest.mark.parametrize(
    ("kind", "file", "damage"), CASES, ids=[f"{k.name}:{f or 'file'}:{d}" for k, f, d in CASES]
)
def test_a_damaged_file_is_refused_with_its_name_and_the_fix(kind, file, damage, artefacts, tmp_path):
    good, other = artefacts[kind.name]
    copy = tmp_path / good.name
    (shutil.copytree if good.is_dir() else shutil.copy)(good, copy)
    target = copy / file if file else copy
    original = target.read_bytes()
    damaged = {
        "truncated": lambda: original[: len(original) // 2],
        "empty": lambda: b"",
        "wrong_format": lambda: _other_format(target),
        "wrong_shape": lambda: _other_shapes(target),
        "foreign": lambda: ((other / file) if file else other).read_bytes(),
    }[damage]()
    assert damaged != original
    target.write_bytes(damaged)
    with pytest.raises(ERRORS) as caught:
        kind.load(copy)
    message = str(caught.value)
    assert "\n" not in message.strip(), message
    # a foreign file is foreign only next to the others, so naming one of them is as good
    names = {target.name} | ({Path(f).name for f in kind.files if f} if damage == "foreign" else set())
    assert any(name in message for name in names) if file else str(copy) in message, message
    fix = message.rsplit(": ", 1)[-1] if ": " in message else ""
    assert any(verb in message for verb in FIXES) and fix, message


def _init_from_weights(directory: Path) -> None:
    from worldmodel.training.init_from import load_matching_weights

    load_matching_weights(torch.nn.Linear(2, 2), directory)


def _init_from_manifest(directory: Path) -> None:
    from wmeval.commands.train import _lineage

    _lineage(directory / "world_model.json")


@pytest.mark.parametrize(
    ("file", "read"), [("dit.safetensors", _init_from_weights), ("world_model.json", _init_from_manifest)]
)
def test_init_from_reads_its_source_through_the_same_check(file, read, artefacts, tmp_path):
    """`train init_from=` reads another model's DiT weights and its manifest: a damaged one gets one line."""
    good, _ = artefacts["world_model"]
    copy = tmp_path / "wm"
    shutil.copytree(good, copy)
    target = copy / file
    target.write_bytes(target.read_bytes()[:100])
    with pytest.raises(
        WorldModelError, match=rf"{file} (cannot be read|is not valid JSON) .*: (re-export|point)"
    ):
        read(copy)
