"""`wmeval train-adapter`, `wmeval train-encoder` and `wmeval train` with a trained adapter or several cameras,
end to end on a tiny recorded PushT dataset (CPU, a few optimiser steps each)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.torchrun import failure, torchrun
from tests.wm_fixtures import TINY_TRAIN
from wmeval.cli import main
from wmeval.data.lerobot_episodes import load_episodes
from worldmodel import WorldModel
from worldmodel.adapters import load_adapter
from worldmodel.encoders import load_encoder

REPO = Path(__file__).resolve().parents[1]
CAMERAS = ["observation.images.top", "observation.images.flip"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    out = tmp_path_factory.mktemp("rec") / "ds"
    args = ["record", "env=pusht", "policy=pusht/expert", "episodes=3", "max_steps=20", "progress=false"]
    assert main([*args, f"out={out}"]) == 0
    return out


def two_camera_dataset(src, dst) -> None:  # noqa: ANN001
    """The recording re-packed with two cameras: the rendered frame and its mirror image."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    image = {"dtype": "image", "shape": (96, 96, 3), "names": ["height", "width", "channels"]}
    features = {
        CAMERAS[0]: image,
        CAMERAS[1]: image,
        "observation.pose": {"dtype": "float32", "shape": (5,), "names": None},
        "action": {"dtype": "float32", "shape": (2,), "names": None},
    }
    ds = LeRobotDataset.create(repo_id="local/pusht2", fps=10, features=features, root=dst, use_videos=False)
    for ep in load_episodes(src, progress=False):
        for t in range(len(ep["frames"])):
            ds.add_frame(
                {
                    CAMERAS[0]: ep["frames"][t],
                    CAMERAS[1]: np.ascontiguousarray(ep["frames"][t, :, ::-1]),
                    "observation.pose": ep["states"][t],
                    "action": ep["actions"][t],
                    "task": "push",
                }
            )
        ds.save_episode()
    ds.finalize()


def test_train_adapter_svae_then_world_model_decodes_through_its_pixel_decoder(recorded, tmp_path) -> None:
    ad_out, wm_out = tmp_path / "ad", tmp_path / "wm"
    args = ["train-adapter", f"data={recorded}", "adapter=svae_tiny", f"out={ad_out}", "progress=false"]
    assert main([*args, "optim.steps=4", "optim.batch_size=4", "threads=1"]) == 0
    summary = json.loads((ad_out / "train_adapter_summary.json").read_text())
    assert summary["adapter"] == "svae" and summary["steps"] == 4 and summary["heldout_episodes"] == 1
    assert summary["num_holdout_frames"] == 20 and np.isfinite(summary["pixel_psnr_holdout"])
    assert summary["lpips"].startswith(("unavailable", "available"))
    adapter = load_adapter(ad_out / "adapter")
    assert adapter.has_pixel_decoder and adapter.pixel_decoder.output_size == (64, 64)  # the encoder's size
    assert adapter.latent_statistics() is not None

    args = ["train", f"data={recorded}", "adapter=svae", f"adapter.pretrained={ad_out / 'adapter'}"]
    assert main([*args, f"out={wm_out}", "optim.steps=2", "optim.checkpoint_every=2", *TINY_TRAIN]) == 0
    train_summary = json.loads((wm_out / "train_summary.json").read_text())
    assert train_summary["steps"] == 2 and train_summary["latent_stats_from"] == "adapter"
    assert np.isfinite(train_summary["evals"][-1]["psnr_model"])
    wm = WorldModel.from_pretrained(wm_out / "model")
    assert wm.adapter.name == "svae" and wm.dit.config.in_channels == 32
    assert torch.equal(wm.latent_std, adapter.latent_statistics()[1])

    def no_encoder_decode(latents):  # noqa: ANN001, ANN202
        raise AssertionError("frames must come from the adapter's pixel decoder")

    wm.encoder.decode = no_encoder_decode
    frame = torch.from_numpy(load_episodes(recorded, progress=False)[0]["frames"][:1]).permute(0, 3, 1, 2)
    wm.reset(frame[None].float() / 255.0)
    out = wm.step(torch.zeros(1, wm.action_dim))
    assert tuple(out.shape) == (1, 3, 64, 64) and 0 <= float(out.min()) and float(out.max()) <= 1


def test_train_adapter_mlp_and_train_measures_statistics(recorded, tmp_path) -> None:
    ad_out, wm_out = tmp_path / "ad", tmp_path / "wm"
    args = ["train-adapter", f"data={recorded}", "adapter=mlp", "adapter.latent_dim=16", f"out={ad_out}"]
    assert main([*args, "optim.steps=5", "optim.lr=1e-3", "progress=false", "threads=1"]) == 0
    assert load_adapter(ad_out / "adapter").get_config()["input_norm"] is True
    args = ["train", f"data={recorded}", "adapter=mlp", f"adapter.pretrained={ad_out / 'adapter'}"]
    assert main([*args, f"out={wm_out}", "optim.steps=1", *TINY_TRAIN]) == 0
    summary = json.loads((wm_out / "train_summary.json").read_text())
    assert summary["latent_stats_from"] == "training latents"
    config = json.loads((wm_out / "model" / "world_model.json").read_text())
    assert len(config["latent_std"]) == 16 and config["dit"]["in_channels"] == 16
    assert config["dit"]["max_frames"] == 3  # the inference window defaults to the training clip (n_frames)
    assert config["meta"]["training_policies"] == ["pusht/expert"]  # whose behaviour it learnt, for reports
    # an adapter trained on another encoder is refused with the fix
    bad = ["train", f"data={recorded}", "encoder.factor=4", f"adapter.pretrained={ad_out / 'adapter'}"]
    assert main([*bad, f"out={tmp_path / 'bad'}", "optim.steps=1", *TINY_TRAIN]) == 2


def test_train_encoder_writes_a_loadable_conv_vae(recorded, tmp_path) -> None:
    out = tmp_path / "enc"
    args = ["train-encoder", f"data={recorded}", f"out={out}", "steps=3", "batch_size=4", "progress=false"]
    assert main([*args, "threads=1", "max_train_episodes=1"]) == 0
    summary = json.loads((out / "train_encoder_summary.json").read_text())
    assert summary["latent_shape"] == [16, 16, 8] and summary["num_holdout"] == 20
    assert summary["train_episodes"] == 1  # of the 2 the split leaves for training: only the first is read
    assert summary["config"]["vae"]["block_out_channels"] == [16, 32, 64]  # the fast CPU default
    assert np.isfinite(summary["psnr_holdout"]) and summary["scaling_factor"] > 0
    encoder = load_encoder("conv_vae", pretrained=str(out / "encoder"))
    assert encoder.image_size == (64, 64) and encoder.scaling_factor == pytest.approx(
        summary["scaling_factor"]
    )


def test_train_encoder_object_tokens_supervised_and_resumed(recorded, tmp_path, capsys) -> None:
    out = tmp_path / "tok"
    tiny = ["tokens.arch.image_size=[32,32]", "tokens.arch.width=8", "tokens.arch.decoder_channels=[8,8,8]"]
    args = [
        "train-encoder",
        "encoder=object_tokens",
        f"data={recorded}",
        f"out={out}",
        "progress=false",
        *tiny,
    ]
    columns = "tokens.state_key=[observation.pose,observation.environment_state]"
    supervised = [*args, columns, "tokens.train.checkpoint_every=2"]
    assert main([*supervised, "tokens.train.steps=2", "threads=1"]) == 0
    assert main([*supervised, "tokens.train.steps=3", "resume=true", "judge=pusht"]) == 0  # from step 2
    summary = json.loads((out / "train_encoder_summary.json").read_text())
    judged = summary[
        "judge_holdout"
    ]  # the PushT judge on decode(encode(held-out frames)) beside the real ones
    assert judged["task"] == "pusht" and judged["frames"] == 20 and judged["readable_real"] >= 0.95
    assert 0.0 <= judged["readable"] < judged["readable_real"]  # 3 steps of training: blurry reconstructions
    assert summary["latent_shape"] == [1, 10, 10] and summary["resumed_from"] == 2 and summary["supervised"]
    assert set(summary["state_errors_holdout"]) == {f"point{i}" for i in range(10)} | {"angle4_deg"}
    encoder = load_encoder("object_tokens", pretrained=str(out / "encoder"))
    assert encoder.config.state_points[:3] == ((0, 1), (2, 3), (5, 6)) and encoder.image_size == (32, 32)
    # a state column the data lacks, and resume for a family without checkpoints, are refused with the fix
    assert main([*args[:3], f"out={tmp_path / 'bad'}", "tokens.state_key=observation.nothing"]) == 2
    # the 5-d pose alone is not the 21-d state the supervision dims index: refused, naming the columns
    assert main([*args, "tokens.state_key=observation.pose", "threads=1"]) == 2
    assert "tokens.state_key=[observation.pose,observation.environment_state]" in capsys.readouterr().err
    assert main(["train-encoder", f"data={recorded}", f"out={out}", "resume=true"]) == 2
    # a renderer refit: the kept encoder's latents, a new (smaller) renderer; a bad kept dir is refused at once
    slim = [
        *args[:3],
        f"out={tmp_path / 'slim'}",
        "progress=false",
        *tiny[:2],
        "tokens.arch.decoder_channels=[8,4]",
    ]
    keep = f"tokens.keep_encoder={out / 'encoder'}"
    assert main([*slim, keep, columns, "tokens.train.steps=2", "threads=1"]) == 0
    refit = load_encoder("object_tokens", pretrained=str(tmp_path / "slim" / "encoder"))
    assert (
        refit.config.decoder_channels == (8, 4) and refit.config.state_points == encoder.config.state_points
    )
    frames = torch.rand(4, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(refit.encode(frames), encoder.encode(frames))
    refit_summary = json.loads((tmp_path / "slim" / "train_encoder_summary.json").read_text())
    assert refit_summary["state_errors_holdout"] == pytest.approx(summary["state_errors_holdout"])
    assert main([*slim, f"tokens.keep_encoder={tmp_path / 'nothing'}"]) == 2
    assert "tokens.keep_encoder" in capsys.readouterr().err


def test_token_recipe_trains_a_geometry_dit_on_object_tokens(recorded, tmp_path) -> None:
    tiny = ["tokens.arch.image_size=[32,32]", "tokens.arch.width=8", "tokens.arch.decoder_channels=[8,8,8]"]
    enc = ["train-encoder", "encoder=object_tokens", f"data={recorded}", f"out={tmp_path / 'tok'}", *tiny]
    assert main([*enc, "tokens.train.steps=1", "progress=false", "threads=1"]) == 0
    args = ["train", "recipe=pusht_tokens", f"data={recorded}", f"out={tmp_path / 'wm'}", "threads=1"]
    args += [f"encoder.pretrained={tmp_path / 'tok' / 'encoder'}", "heldout_episodes=1", "optim.steps=2"]
    args += ["optim.batch_size=4", "optim.warmup_steps=1", "eval.episodes=1", "eval.horizon=2"]
    assert main([*args, "eval.state_reader=null", "rigid_groups=[[1,2,3]]"]) == 0
    wm = WorldModel.from_pretrained(tmp_path / "wm" / "model")
    assert wm.config.rigid_groups == [[1, 2, 3]] and wm.rigid is not None
    dit = wm.dit.config
    assert dit.token_geometry and dit.grid == (1, 8) and dit.size == "micro" and dit.action_dim == 10
    # geometry un-normalises positions with the very statistics the latents were normalised with
    assert dit.position_mean == wm.config.latent_mean[:2] and dit.position_std == wm.config.latent_std[:2]
    assert dit.position_std != [1.0, 1.0]
    wm.reset(torch.rand(1, 1, 3, 32, 32))
    assert wm.step(torch.full((1, 10), 256.0)).shape == (1, 3, 32, 32)
    # a [1, 8] patch reads the 1 x 8 token row as one DiT token per frame (no geometry: it needs one per object)
    frame = [a for a in args if not a.startswith("out=")]
    frame += ["dit.patch_size=[1,8]", "dit.token_geometry=false", "dit.action_points=[]"]
    frame += [f"out={tmp_path / 'frame'}", "eval.state_reader=null", "max_train_episodes=1"]
    assert main([*frame, "rigid_groups=[[0,1]]"]) == 2  # no positions to keep rigid: refused before training
    assert not (tmp_path / "frame").exists()
    assert main(frame) == 0
    wm = WorldModel.from_pretrained(tmp_path / "frame" / "model")
    assert wm.config.meta["train_episodes"] == 1 and wm.config.meta["heldout_episodes"] == 1  # 2 of 3 capped
    assert wm.dit.config.tokens_grid == (1, 1) and not wm.dit.config.token_geometry
    assert tuple(wm.dit.patch_embed.weight.shape[2:]) == (1, 8)
    wm.reset(torch.rand(1, 1, 3, 32, 32))
    assert wm.step(torch.full((1, 10), 256.0)).shape == (1, 3, 32, 32)


def test_single_view_weights_move_to_a_two_view_model(recorded, tmp_path) -> None:
    data = tmp_path / "two_cams"
    two_camera_dataset(recorded, data)
    eps = load_episodes(data, camera_keys=CAMERAS, progress=False)
    assert (
        set(eps[0]["camera_frames"]) == set(CAMERAS)
        and eps[0]["frames"] is eps[0]["camera_frames"][CAMERAS[0]]
    )
    np.testing.assert_array_equal(eps[0]["camera_frames"][CAMERAS[1]], eps[0]["frames"][:, :, ::-1])

    single, multi = tmp_path / "single", tmp_path / "multi"
    base = ["train", f"data={data}", *TINY_TRAIN]
    # resume=true may start a run: its out= does not exist yet, and the run begins at step 0
    assert main([*base, f"camera_key={CAMERAS[0]}", f"out={single}", "optim.steps=2", "resume=true"]) == 0
    cams = f"camera_keys=[{','.join(CAMERAS)}]"
    args = [
        *base,
        cams,
        f"init_from={single}",
        f"out={multi}",
        "optim.steps=3",
        "optim.freeze_backbone_steps=3",
    ]
    assert main(args) == 0
    summary = json.loads((multi / "train_summary.json").read_text())
    init = summary["init_from"]
    assert init["loaded"] > 0 and init["skipped_shape"] == [] and init["missing_in_source"] == []
    assert init["trained_before"]["steps"] == 2 and init["trained_before"]["data"] == str(data)
    assert summary["camera_keys"] == CAMERAS and (multi / "latents_view1.h5").is_file()
    config = json.loads((multi / "model" / "world_model.json").read_text())
    assert config["dit"]["num_views"] == 2 and np.isfinite(config["meta"]["heldout"]["psnr_model"])
    assert config["meta"]["steps"] == 3 and config["meta"]["total_steps"] == 5  # 2 before the warm start

    before = load_file(single / "model" / "dit.safetensors")
    after = load_file(multi / "checkpoints" / "step_00000003" / "model.safetensors")
    frozen = [k for k in after if k.startswith(("spatial_blocks.", "temporal_blocks."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)  # held still while frozen
    assert not torch.equal(before["action_embedder.proj.weight"], after["action_embedder.proj.weight"])

    # resumed, the run keeps the lineage its first snapshot recorded, even when the source has changed since
    (single / "model" / "world_model.json").unlink()
    resumed = [*args[:-2], "optim.steps=4", "optim.freeze_backbone_steps=3", "resume=true"]
    assert main(resumed) == 0
    meta = json.loads((multi / "model" / "world_model.json").read_text())["meta"]
    assert (
        meta["steps"] == 4 and meta["total_steps"] == 6 and meta["init_from"]["trained_before"]["steps"] == 2
    )
    # ... and when the resume does not name init_from at all
    no_init = [a for a in resumed if not a.startswith(("init_from=", "optim.steps="))] + ["optim.steps=5"]
    assert main(no_init) == 0
    meta = json.loads((multi / "model" / "world_model.json").read_text())["meta"]
    assert meta["total_steps"] == 7 and meta["init_from"]["source"] == str(
        single / "model" / "dit.safetensors"
    )


#: `wmeval train` whose rank 1 is slow to reach its output folder: a process that chose its own timestamped
#: folder would choose another one than rank 0
SLOW_RANK_ONE = """
import os, sys, time
import wmeval.commands.train as train
from wmeval.cli import main

prepare = train.prepare_out_dir

def slow_prepare(*args, **kwargs):
    time.sleep(2.0 * (os.environ["RANK"] == "1"))
    return prepare(*args, **kwargs)

train.prepare_out_dir = slow_prepare
sys.exit(main(sys.argv[1:]))
"""


def test_train_under_torchrun_leaves_one_intact_run_folder(recorded, tmp_path) -> None:
    # `wmeval train` itself on 2 CPU processes (gloo), overwrite=true, default out: only rank 0 prepares
    # outputs/train/<timestamp>/; the other process waits for that path instead of picking its own
    args = ["--no-python", sys.executable, "-c", SLOW_RANK_ONE]
    args += ["train", f"data={recorded}", "overwrite=true", "device=cpu"]
    args += [*TINY_TRAIN, "optim.steps=2", "optim.checkpoint_every=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = torchrun(args, port=29537, outputs=tmp_path / "outputs", env=env, cwd=tmp_path)
    assert result.returncode == 0, failure(result)
    runs = list((tmp_path / "outputs" / "train").iterdir())
    assert len(runs) == 1, runs
    summary = json.loads((runs[0] / "train_summary.json").read_text())
    assert summary["steps"] == 2
    wm = WorldModel.from_pretrained(runs[0] / "model")
    assert wm.config.meta["processes"] == 2 and wm.config.meta["steps"] == 2
