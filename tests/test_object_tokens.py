"""`object_tokens`: the latent contract, save/load, both training variants, resume and the errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from worldmodel.data.latent_cache import config_differences
from worldmodel.encoders import load_encoder, precision
from worldmodel.encoders.object_tokens import ObjectTokensConfig, cell_centres
from worldmodel.encoders.train_object_tokens import train_object_tokens
from worldmodel.errors import InputError, MissingWeightsError

pytestmark = pytest.mark.usefixtures("no_onednn", "one_thread")

SIZE = 32
#: tiny: 32 px frames, 8x8 heat-maps, 3 tokens of 4 features; a training step takes milliseconds
TINY = {"image_size": SIZE, "num_tokens": 3, "feature_dim": 4, "width": 16, "decoder_channels": (16, 8, 8)}
#: token 0 follows the disc centre (state dims 0, 1 in pixels of a SIZE-px frame); dim 2 is an angle
SUPERVISION = {"state_points": [[0, 1]], "state_angles": [2], "state_range": [0, SIZE]}
QUICK = {"batch_size": 8, "lr": 3e-3, "checkpoint_every": 1000}


def disc_frames(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 frames of one dark disc on a light background, and states (centre x, y in pixels, an angle)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    centres = rng.uniform(6, SIZE - 6, (n, 2))
    frames = np.full((n, SIZE, SIZE, 3), 230.0)
    for i, (cx, cy) in enumerate(centres):
        frames[i][(xx - cx) ** 2 + (yy - cy) ** 2 < 9.0] = (40, 60, 200)
    states = np.concatenate([centres, rng.uniform(-np.pi, np.pi, (n, 1))], 1).astype(np.float32)
    return frames.astype(np.uint8), states


def as_input(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0


def tiny(**extra):  # noqa: ANN003, ANN201
    torch.manual_seed(0)
    return load_encoder("object_tokens", **TINY, **extra)


def test_latent_contract_shapes_and_ranges() -> None:
    enc = tiny().eval()
    frames, _ = disc_frames(5)
    with torch.inference_mode():
        z = enc.encode(as_input(frames))
        out = enc.decode(z)
    assert enc.latent_shape == (1, 3, 6) and tuple(z.shape) == (5, 1, 3, 6)
    assert z[..., :2].abs().max() <= 1.0 and z[..., 2:].abs().max() <= 1.0
    assert tuple(out.shape) == (5, 3, SIZE, SIZE) and 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    with pytest.raises(InputError, match=r"latents must be \[B, 1, 3, 6\]"):
        enc.decode(z[:, :, :2])


def test_positions_use_image_coordinates_x_right_y_down() -> None:
    centres = cell_centres(2, 4)  # row-major: first row is the top one
    assert torch.allclose(centres[0], torch.tensor([-0.75, -0.5]))
    assert torch.allclose(centres[3], torch.tensor([0.75, -0.5]))
    assert torch.allclose(centres[4], torch.tensor([-0.75, 0.5]))
    cfg = ObjectTokensConfig(state_range=(0.0, 512.0))
    assert torch.allclose(
        cfg.to_image_units(torch.tensor([0.0, 256.0, 512.0])), torch.tensor([-1.0, 0.0, 1.0])
    )


def test_save_load_round_trip_gives_identical_latents(tmp_path) -> None:
    enc = tiny(**SUPERVISION).eval()
    enc.save_pretrained(tmp_path / "tok")
    loaded = load_encoder("object_tokens", pretrained=str(tmp_path / "tok"))
    x = as_input(disc_frames(4)[0])
    with torch.inference_mode():
        z = enc.encode(x)
        assert torch.equal(z, loaded.encode(x))
        assert torch.equal(enc.decode(z), loaded.decode(z))
        assert torch.equal(enc.read_state(z), loaded.read_state(z))
    assert loaded.config == enc.config
    cfg = json.loads(json.dumps(loaded.get_config()))  # a config saved after loading rebuilds the space
    with torch.inference_mode():
        assert torch.equal(load_encoder(**cfg).encode(x), z)


def test_render_dtype_speeds_inference_only_and_is_validated(monkeypatch) -> None:
    """bfloat16 rendering stays within a uint8 level or two of float32, training renders in float32, and
    `auto` picks bfloat16 only on CPUs that multiply it natively."""
    frames = as_input(disc_frames(4)[0])
    exact, fast = tiny(render_dtype="float32").eval(), tiny(render_dtype="bfloat16").eval()
    with torch.inference_mode():
        z = exact.encode(frames)
        reference, approx = exact.decode(z), fast.decode(z)
        trained = fast.train().decode(z)
    assert approx.dtype == torch.float32 and not torch.equal(approx, reference)
    assert (approx - reference).abs().max() < 2.0 / 255
    assert torch.equal(trained, reference)
    exact.config.render_dtype = "bfloat16"  # the renderer follows the encoder's config, as reports read it
    with torch.inference_mode():
        assert torch.equal(exact.decode(z), approx) and exact.render_dtype == torch.bfloat16
    for native, expected in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(precision, "native_cpu_bf16", lambda native=native: native)
        assert precision.resolve_render_dtype("auto", torch.device("cpu")) == expected
    assert precision.resolve_render_dtype("auto", torch.device("cuda")) == torch.float32
    with pytest.raises(InputError, match="render_dtype must be one of auto, float32, bfloat16, got 'half'"):
        tiny(render_dtype="half")
    # the latents do not depend on it: a latent cache made under one setting is accepted under another
    assert config_differences(exact.get_config(), fast.get_config()) == []


def test_missing_and_corrupt_weights_and_bad_config_are_named(tmp_path) -> None:
    with pytest.raises(MissingWeightsError, match="no_such_dir is not a directory: pass a directory written"):
        load_encoder("object_tokens", pretrained=str(tmp_path / "no_such_dir"))
    tiny().save_pretrained(tmp_path / "tok")
    (tmp_path / "tok" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="model.safetensors cannot be read .*: re-save it"):
        load_encoder("object_tokens", pretrained=str(tmp_path / "tok"))
    with pytest.raises(MissingWeightsError, match="fingerprint"):
        load_encoder(**tiny().get_config())  # untrained + unsaved: the weights it names cannot be recovered
    with pytest.raises(InputError, match="num_heads"):
        load_encoder("object_tokens", num_heads=2)
    with pytest.raises(InputError, match="state_points"):
        load_encoder("object_tokens", **TINY, state_points=[[0, 1], [2, 3], [4, 5], [6, 7]])
    with pytest.raises(InputError, match="state_range"):
        load_encoder("object_tokens", state_range=[5, 5])


def test_self_supervised_training_reduces_the_loss(tmp_path) -> None:
    frames, _ = disc_frames(64)
    held, _ = disc_frames(8, seed=1)
    result = train_object_tokens(
        frames, None, TINY, {**QUICK, "steps": 40}, seed=1, holdout_frames=held, progress=False
    )
    first, last = np.mean(result.loss_history[:3]), np.mean(result.loss_history[-3:])
    assert last < 0.5 * first, (first, last)
    assert not result.supervised and result.state_errors_holdout == {} and np.isfinite(result.psnr_holdout)


def test_supervised_training_pulls_token_zero_onto_the_state_point(tmp_path) -> None:
    frames, states = disc_frames(64)
    held, held_states = disc_frames(16, seed=1)
    cfg = {**TINY, **SUPERVISION}
    before = train_object_tokens(
        frames,
        states,
        cfg,
        {**QUICK, "steps": 1, "lr": 1e-9},
        holdout_frames=held,
        holdout_states=held_states,
    )
    after = train_object_tokens(
        frames,
        states,
        cfg,
        {**QUICK, "steps": 60},
        holdout_frames=held,
        holdout_states=held_states,
        out_dir=tmp_path / "tok",
        progress=False,
    )
    assert after.supervised
    assert after.state_errors_holdout["point0"] < 0.5 * before.state_errors_holdout["point0"]
    assert set(after.state_errors_holdout) == {"point0", "angle2_deg"}
    loaded = load_encoder("object_tokens", pretrained=str(tmp_path / "tok"))
    with torch.inference_mode():
        read = loaded.read_state(loaded.encode(as_input(held)))
    assert read.shape == (16, 3)
    assert float((read[:, :2] - torch.from_numpy(held_states[:, :2])).norm(dim=-1).mean()) == pytest.approx(
        after.state_errors_holdout["point0"], rel=1e-4
    )


def test_training_is_deterministic_and_resumes_exactly(tmp_path) -> None:
    frames, states = disc_frames(32)
    held, held_states = disc_frames(4, seed=1)
    cfg = {**TINY, **SUPERVISION}
    kw = dict(holdout_frames=held, holdout_states=held_states, seed=3, progress=False)
    train = {**QUICK, "steps": 6, "checkpoint_every": 3}
    ckpt = tmp_path / "ckpt"
    full = train_object_tokens(frames, states, cfg, train, checkpoint_dir=ckpt, **kw)
    again = train_object_tokens(frames, states, cfg, train, **kw)
    assert full.loss_history == again.loss_history
    shutil.rmtree(ckpt / "step_00000006")  # as if interrupted after the step-3 checkpoint
    resumed = train_object_tokens(frames, states, cfg, train, checkpoint_dir=ckpt, resume=True, **kw)
    assert resumed.resumed_from == 3
    assert resumed.loss_history == full.loss_history
    assert resumed.encoder.get_config()["fingerprint"] == full.encoder.get_config()["fingerprint"]


def test_renderer_refit_keeps_the_latents_and_trains_a_smaller_renderer(tmp_path) -> None:
    frames, states = disc_frames(32)
    held, held_states = disc_frames(8, seed=1)
    cfg = {**TINY, **SUPERVISION}
    kw = dict(holdout_frames=held, holdout_states=held_states, progress=False)
    kept = train_object_tokens(frames, states, cfg, {**QUICK, "steps": 4}, **kw).encoder
    slim = {**cfg, "decoder_channels": (8, 4, 4)}
    kw["keep_encoder"] = kept
    refit = train_object_tokens(frames, None, slim, {**QUICK, "steps": 30}, out_dir=tmp_path / "slim", **kw)
    first, last = np.mean(refit.loss_history[:3]), np.mean(refit.loss_history[-3:])
    assert last < 0.8 * first, (first, last)
    loaded = load_encoder("object_tokens", pretrained=str(tmp_path / "slim"))
    assert loaded.config.decoder_channels == (8, 4, 4) and loaded.config.state_points == ((0, 1),)
    with torch.inference_mode():
        x = as_input(held)
        assert torch.equal(loaded.encode(x), kept.encode(x))  # batch-norm statistics included
        assert torch.equal(loaded.read_state(loaded.encode(x)), kept.read_state(kept.encode(x)))
        assert loaded.decode(loaded.encode(x)).shape == x.shape
    kept_count = sum(p.numel() for p in kept.renderer.parameters())
    assert sum(p.numel() for p in loaded.renderer.parameters()) < kept_count
    assert set(refit.state_errors_holdout) == {"point0", "angle2_deg"} and not refit.supervised
    assert (
        refit.state_errors_holdout
        == pytest.approx(  # the latents do not move, so neither does what they hold
            train_object_tokens(frames, states, slim, {**QUICK, "steps": 1}, **kw).state_errors_holdout
        )
    )


def test_states_must_match_the_supervision_config() -> None:
    frames, states = disc_frames(8)
    with pytest.raises(InputError, match="no state_points/state_angles to supervise"):
        train_object_tokens(frames, states, TINY, {"steps": 1}, holdout_frames=frames)
    with pytest.raises(InputError, match="no states were given"):
        train_object_tokens(frames, None, {**TINY, **SUPERVISION}, {"steps": 1}, holdout_frames=frames)
    with pytest.raises(InputError, match=r"S>=3"):
        train_object_tokens(
            frames, states[:, :2], {**TINY, **SUPERVISION}, {"steps": 1}, holdout_frames=frames
        )
    with pytest.raises(InputError, match="steps"):
        train_object_tokens(frames, None, TINY, {"steps": 0}, holdout_frames=frames)
