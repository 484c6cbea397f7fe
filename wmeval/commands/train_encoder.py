"""`wmeval train-encoder`: train a small latent space on a LeRobotDataset's frames.

`encoder=conv_vae` (default): the offline alternative to a pretrained VAE. The default architecture is the
fast one (64 px, block widths 16/32/64, 16 GroupNorm groups -> a 16x16x8 latent grid; use `dit.patch_size=2`
for 8x8 tokens), several times cheaper per step than the library's 96 px default (32/64/128).
`encoder=object_tokens`: K object tokens per frame (position + features, latents [1, K, 2 + F]),
self-supervised from frames, or supervised by state columns with `tokens.state_key=...` (PushT: the pose
`observation.pose` and the tee's corners `observation.environment_state`, which older recordings derive from
their 5-d pose); resumable with
`resume=true` (checkpoints in out/checkpoints).
Whole episodes are held out for the reported numbers (neighbouring frames of one episode look alike, so a
random-frame split would flatter them).
    wmeval train-encoder data=DS out=E
    wmeval train data=DS encoder=conv_vae encoder.pretrained=E/encoder dit.patch_size=2
    wmeval train-encoder encoder=object_tokens data=DS out=E tokens.state_key=[observation.pose,observation.environment_state]
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from wmeval.commands.train import load_split
from wmeval.commands.train_adapter import _device
from wmeval.data.lerobot_episodes import dataset_info
from wmeval.data.sources import resolve_data, view_episodes
from wmeval.envs.registry import recording_upgrades
from wmeval.errors import ConfigError, WmevalError
from wmeval.io import prepare_out_dir, resume_out_dir, write_json
from worldmodel.errors import WorldModelError

FAMILIES = ("conv_vae", "object_tokens")


def run(cfg: DictConfig) -> dict[str, Any]:
    started = time.perf_counter()
    family = str(cfg.encoder.type)
    if family not in FAMILIES:
        raise ConfigError(f"encoder={family} cannot be trained here: choose one of {', '.join(FAMILIES)}")
    if int(cfg.steps) < 1 or int(cfg.batch_size) < 1:
        raise ConfigError(f"steps={cfg.steps} and batch_size={cfg.batch_size} must be positive")
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    state_key = _state_key(cfg) if family == "object_tokens" else None
    if state_key is not None:
        info = dataset_info(resolve_data(cfg.data))
        features = info["features"]
        known = {*features, *recording_upgrades(info.get("robot_type"), features)}
        missing = [k for k in ([state_key] if isinstance(state_key, str) else state_key) if k not in known]
        if missing:
            raise ConfigError(
                f"tokens.state_key={state_key}: {', '.join(missing)} is not in data={cfg.data}; its keys are "
                f"{', '.join(features)}: name its state columns, or drop tokens.state_key for self-supervised "
                "training"
            )
    kept = _kept_encoder(cfg)
    device = _device(str(cfg.device))
    load_cfg = OmegaConf.merge(cfg, {"state_key": state_key}) if family == "object_tokens" else cfg
    train_eps, held_eps = load_split(cfg, load_cfg)
    frames, states = _stack(train_eps, state_key)
    held, held_states = _stack(held_eps, state_key) if held_eps else (None, None)
    if held is not None and len(held) > int(cfg.max_heldout_frames):
        pick = np.sort(
            np.random.default_rng(int(cfg.seed)).choice(len(held), int(cfg.max_heldout_frames), False)
        )
        held, held_states = held[pick], None if held_states is None else held_states[pick]
    supervision = _supervision(cfg, states)
    out = _out_dir(cfg)
    try:
        if family == "conv_vae":
            result = _train_conv_vae(cfg, frames, held, out, device)
        else:
            result = _train_object_tokens(
                cfg, frames, states, held, held_states, supervision, kept, out, device
            )
    except WorldModelError as err:
        raise WmevalError(str(err)) from err
    summary = {
        "encoder_dir": str(out / "encoder"),
        "data": str(cfg.data),
        "train_episodes": len(train_eps),
        "heldout_episodes": len(held_eps),
        "latent_shape": list(result.encoder.latent_shape),
        **result.to_dict(),
        "total_s": time.perf_counter() - started,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    if cfg.judge is not None and held is not None:
        summary["judge_holdout"] = _judge_holdout(str(cfg.judge), result.encoder, held, device)
    summary.pop("loss_history")
    summary["loss_curve"] = result.loss_history[:: max(1, len(result.loss_history) // 100)]
    write_json(out / "train_encoder_summary.json", summary)
    keys = ("psnr_holdout", "psnr_train", "scaling_factor", "state_errors_holdout", "judge_holdout")
    keys += ("latent_shape", "seconds")
    print(json.dumps({k: summary[k] for k in keys if k in summary}, indent=2))
    print(
        f"encoder saved to {out / 'encoder'}; use it with: encoder={family} encoder.pretrained={out / 'encoder'}"
    )
    return summary


def _judge_holdout(task: str, encoder: Any, held: np.ndarray, device: torch.device) -> dict[str, Any]:
    """The task's frame judge on decode(encode(held-out frames)), shown at the real frames' size."""
    from wmeval.envs.registry import get_task
    from wmeval.judges.readability import reconstruction_readability
    from wmeval.metrics.open_loop import to_uint8_frames
    from worldmodel.encoders.common import resize_frames

    judge = get_task(task, key="judge").judge()
    decoded = []
    with torch.inference_mode():
        for i in range(0, len(held), 64):
            x = torch.from_numpy(held[i : i + 64]).permute(0, 3, 1, 2).float().div(255.0)
            x = resize_frames(x, encoder.image_size).to(device)
            decoded.append(
                to_uint8_frames(encoder.decode(encoder.encode(x)).float().cpu().numpy(), held.shape[1:3])
            )
    return {"task": task, **reconstruction_readability(judge, held, np.concatenate(decoded))}


def _state_key(cfg: DictConfig) -> str | list[str] | None:
    """`tokens.state_key` as one column name or a list of them (read side by side), None when unset."""
    key = cfg.tokens.state_key
    if key is None or isinstance(key, str):
        return key
    return [str(k) for k in key]


def _out_dir(cfg: DictConfig) -> Path:
    """A fresh out dir, or with `resume=true` the existing run directory (object_tokens only)."""
    if not cfg.resume:
        return prepare_out_dir(cfg.out, "train-encoder", overwrite=bool(cfg.overwrite))
    if cfg.encoder.type != "object_tokens":
        raise ConfigError("resume=true is supported for encoder=object_tokens only: drop it")
    return resume_out_dir(cfg.out)


def _stack(episodes: list[dict], state_key: str | list[str] | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Every camera view's frames (and, with a state key, the matching states) of `episodes`, concatenated."""
    views = view_episodes(episodes)
    frames = np.concatenate([ep["frames"] for ep in views])
    if state_key is None:
        return frames, None
    return frames, np.concatenate([ep["states"] for ep in views]).astype(np.float32)


def _train_conv_vae(cfg: DictConfig, frames: np.ndarray, held: np.ndarray | None, out: Path, device):  # noqa: ANN001, ANN202
    from worldmodel.encoders.train_conv_vae import train_conv_vae

    return train_conv_vae(
        frames,
        OmegaConf.to_container(cfg.vae, resolve=True),
        steps=int(cfg.steps),
        batch_size=int(cfg.batch_size),
        lr=float(cfg.lr),
        seed=int(cfg.seed),
        out_dir=out / "encoder",
        progress=bool(cfg.progress),
        kl_weight=float(cfg.kl_weight),
        holdout_frames=held,
        device=device,
    )


def _supervision(cfg: DictConfig, states: np.ndarray | None) -> dict[str, Any]:
    """The encoder config's state dims for `states` (none without them); a state of another width than the
    dims index (`tokens.supervision.state_dim`) is refused before anything is written."""
    if states is None:
        return {}
    supervision = OmegaConf.to_container(cfg.tokens.supervision, resolve=True)
    width = int(supervision.pop("state_dim"))
    if states.shape[1] != width:
        raise ConfigError(
            f"tokens.state_key={cfg.tokens.state_key} holds {states.shape[1]}-d states but tokens.supervision "
            f"reads a {width}-d state (tokens.supervision.state_dim): name the column it describes "
            "(PushT: tokens.state_key=[observation.pose,observation.environment_state]) or change tokens.supervision"
        )
    return supervision


def _kept_encoder(cfg: DictConfig) -> Any:
    """`tokens.keep_encoder`'s encoder (loaded before any data is read, so a bad path fails at once), or None."""
    if cfg.encoder.type != "object_tokens" or cfg.tokens.keep_encoder is None:
        return None
    from worldmodel.encoders import load_encoder

    try:
        return load_encoder("object_tokens", pretrained=str(cfg.tokens.keep_encoder))
    except WorldModelError as err:
        raise ConfigError(f"tokens.keep_encoder={cfg.tokens.keep_encoder}: {err}") from err


def _train_object_tokens(cfg, frames, states, held, held_states, supervision, kept, out: Path, device):  # noqa: ANN001, ANN202
    from worldmodel.encoders.train_object_tokens import train_object_tokens

    if held is None:
        raise ConfigError("encoder=object_tokens reports on held-out episodes: set heldout_episodes >= 1")
    arch = {**OmegaConf.to_container(cfg.tokens.arch, resolve=True), **supervision}
    return train_object_tokens(
        frames,
        states,
        arch,
        OmegaConf.to_container(cfg.tokens.train, resolve=True),
        seed=int(cfg.seed),
        out_dir=out / "encoder",
        holdout_frames=held,
        holdout_states=held_states,
        checkpoint_dir=out / "checkpoints",
        resume=bool(cfg.resume),
        progress=bool(cfg.progress),
        device=device,
        keep_encoder=kept,  # a renderer refit trains on frames; held-out states report what the latents hold
    )
