"""Adapters: registry, identity, the MLP adapter's shape and layers, save/load, and its training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from worldmodel.adapters import ADAPTERS, build_adapter, load_adapter, save_adapter
from worldmodel.adapters.train_mlp import train_mlp_adapter
from worldmodel.errors import InputError, MissingWeightsError

pytestmark = pytest.mark.usefixtures("one_thread")


def test_registry_errors_name_the_fix() -> None:
    assert {"identity", "mlp"} <= set(ADAPTERS)
    with pytest.raises(InputError, match="identity.*mlp"):
        build_adapter("svea", in_dim=8)
    with pytest.raises(InputError, match="latent_dim"):
        build_adapter("mlp", in_dim=8)
    with pytest.raises(InputError, match="unknown option"):
        build_adapter("mlp", in_dim=8, latent_dim=4, hiden=3)


def test_identity_passes_through_and_checks_width() -> None:
    ad = build_adapter("identity", in_dim=6)
    x = torch.randn(2, 3, 3, 6)
    assert ad.encode(x) is x and ad.decode(x) is x and ad.latent_dim == 6
    with pytest.raises(InputError, match="6 channels"):
        ad.encode(torch.randn(2, 3, 3, 5))


def test_mlp_shapes_and_layers() -> None:
    ad = build_adapter("mlp", in_dim=48, latent_dim=16)
    assert ad.hidden_dim == 32 and ad.latent_dim == 16  # (48 + 16) / 2
    kinds = [type(m) for m in ad.encoder]
    assert kinds == [nn.Linear, nn.GELU, nn.Linear, nn.GELU, nn.Linear]
    assert [m.out_features for m in ad.encoder if isinstance(m, nn.Linear)] == [32, 32, 16]
    assert [m.out_features for m in ad.decoder if isinstance(m, nn.Linear)] == [32, 32, 48]
    z = ad.encode(torch.randn(2, 4, 4, 48))
    assert tuple(z.shape) == (2, 4, 4, 16)
    assert tuple(ad.decode(z).shape) == (2, 4, 4, 48)
    with pytest.raises(InputError, match="16 channels"):
        ad.decode(torch.randn(2, 4, 4, 15))


def test_save_load_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    ad = build_adapter("mlp", in_dim=12, latent_dim=4, hidden_dim=10)
    save_adapter(ad, tmp_path / "ad")
    saved = json.loads((tmp_path / "ad" / "config.json").read_text())
    assert saved["config"] == {"type": "mlp", "in_dim": 12, "latent_dim": 4, "hidden_dim": 10}
    loaded = load_adapter(tmp_path / "ad")
    x = torch.randn(3, 2, 2, 12)
    with torch.inference_mode():
        assert torch.equal(ad.encode(x), loaded.encode(x))
        assert torch.equal(ad.decode(ad.encode(x)), loaded.decode(loaded.encode(x)))
    save_adapter(build_adapter("identity", in_dim=12), tmp_path / "id")
    assert load_adapter(tmp_path / "id").latent_dim == 12


def test_load_refuses_missing_and_mismatched(tmp_path) -> None:
    with pytest.raises(MissingWeightsError, match="nowhere"):
        load_adapter(tmp_path / "nowhere")
    save_adapter(build_adapter("mlp", in_dim=12, latent_dim=4), tmp_path / "ad")
    cfg = tmp_path / "ad" / "config.json"
    payload = json.loads(cfg.read_text())
    payload["config"]["latent_dim"] = 5  # weights no longer fit the config
    cfg.write_text(json.dumps(payload))
    with pytest.raises(InputError, match="does not match its config"):
        load_adapter(tmp_path / "ad")
    payload["format_version"] = 99
    cfg.write_text(json.dumps(payload))
    with pytest.raises(InputError, match="format_version"):
        load_adapter(tmp_path / "ad")


def test_train_mlp_adapter_learns_a_low_rank_space(tmp_path) -> None:
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(4, 24)) / 2.0
    latents = (rng.normal(size=(64, 4, 4, 4)) @ basis).astype(np.float32)  # 24-d tokens on a 4-d subspace
    result = train_mlp_adapter(
        latents,
        latent_dim=6,
        steps=300,
        batch_size=256,
        lr=1e-2,
        seed=0,
        out_dir=tmp_path / "ad",
        progress=False,
    )
    assert np.mean(result.loss_history[-10:]) < 0.2 * np.mean(result.loss_history[:10])
    assert result.explained_variance > 0.9 and result.holdout_cosine > 0.95, result.to_dict()
    loaded = load_adapter(tmp_path / "ad")
    x = torch.from_numpy(latents[:2])
    with torch.inference_mode():
        assert torch.equal(loaded.encode(x), result.adapter.encode(x))
    summary = result.to_dict()  # JSON-safe: every number, not the trained module
    assert "adapter" not in summary and summary["steps"] == 300
    assert json.loads(json.dumps(summary))["loss_history"] == result.loss_history
    summary["loss_history"].clear()
    assert len(result.loss_history) == 300
