"""Train the `object_tokens` latent space, self-supervised from frames or supervised by a state column.

Loss = reconstruction MSE of decode(encode(frame)) (the keypoint bottleneck must carry the scene), with
       pixels that differ from the median training frame weighted 1 + `foreground_weight`: the moving objects
       cover a few percent of a frame, and unweighted the decoder long settles for the static background
     + `spread_weight` * heat-map variance around each soft-argmax position (peaked heat-maps, so a position
       is a place in the frame rather than the average of a diffuse map)
     + `separation_weight` * mean exp(-d^2 / 2 `separation_sigma`^2) over token pairs (keeps free tokens from
       collapsing onto one spot; pairs of state-pinned tokens are exempt, their targets may touch)
and, when the encoder's config names state dims (supervised variant):
     + `state_weight` * MSE(pinned token positions, state points in image units)
     + `angle_weight` * MSE(state head (cos, sin), true (cos, sin)).

Renderer refit (`keep_encoder=`): a trained encoder's keypoint encoder and state head are kept frozen and only a
new renderer (`decoder_channels` from `config`, everything else from the kept encoder) is trained on the
reconstruction term. The latents are bit-identical, so a latent cache and a world model trained on them stay
valid; what changes is how (and how cheaply) they are drawn.

Resumable: every `checkpoint_every` steps the model, optimizer, batch generator and loss history are saved with
`worldmodel.training.checkpoint`; `resume=True` continues from the newest one bit-exactly on CPU. Deterministic
for a seed on CPU: initialisation and batch order come from seeded generators.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from worldmodel.encoders.object_tokens import (
    ObjectTokensConfig,
    ObjectTokensEncoder,
    cell_centres,
    init_kwargs,
)
from worldmodel.encoders.train_common import (
    check_out_dir,
    default_device,
    frames_to_tensor,
    lr_factor,
    reconstruction_psnr,
)
from worldmodel.errors import InputError
from worldmodel.training.checkpoint import checkpoints, load_checkpoint, save_checkpoint
from worldmodel.training.results import TrainResult

#: held-out frames evaluated at the end (every one is encoded and decoded once)
_EVAL_FRAMES = 512
#: frames the static background (per-pixel median) is taken from, evenly spaced over the training set
_MEDIAN_FRAMES = 1024
#: a pixel is foreground where some channel differs from the background by more than this (in [0, 1])
_FOREGROUND_THRESHOLD = 0.1


@dataclass
class ObjectTokensTrainConfig:
    """Optimisation and loss weights (the architecture lives in `ObjectTokensConfig`)."""

    steps: int = 4000
    batch_size: int = 16
    lr: float = 1e-3
    spread_weight: float = 0.05
    separation_weight: float = 0.05
    separation_sigma: float = 0.1
    foreground_weight: float = 10.0
    state_weight: float = 5.0
    angle_weight: float = 0.5
    checkpoint_every: int = 250
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0 or self.checkpoint_every < 1:
            raise InputError(
                f"steps, batch_size, lr and checkpoint_every must be positive, got {self.steps}, "
                f"{self.batch_size}, {self.lr}, {self.checkpoint_every}"
            )


@dataclass
class ObjectTokensTrainResult(TrainResult):
    """What a run produced; `to_dict()` is the JSON-safe summary (without the model)."""

    out_dir: str | None
    steps: int
    resumed_from: int
    supervised: bool
    final_loss: float
    final_terms: dict[str, float]
    psnr_holdout: float
    psnr_train: float
    state_errors_holdout: dict[str, float]
    num_train: int
    num_holdout: int
    seconds: float
    loss_history: list[float] = field(default_factory=list)
    encoder: ObjectTokensEncoder | None = field(default=None, repr=False)


def train_object_tokens(
    frames: np.ndarray,
    states: np.ndarray | None = None,
    config: ObjectTokensConfig | dict[str, Any] | None = None,
    train: ObjectTokensTrainConfig | dict[str, Any] | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    *,
    holdout_frames: np.ndarray,
    holdout_states: np.ndarray | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    device: str | torch.device | None = None,
    overwrite: bool = False,
    keep_encoder: ObjectTokensEncoder | None = None,
) -> ObjectTokensTrainResult:
    """Train a fresh (or, with `resume`, the checkpointed) encoder on uint8 frames `[N, H, W, 3]`.

    `states [N, S]` are required exactly when the config pins tokens (`state_points`) or reads angles
    (`state_angles`). Held-out frames (whole episodes, ideally) give the reported PSNR and state errors.
    With `keep_encoder`, only a new renderer trains (module docstring); states then only feed the report.
    """
    tc = train if isinstance(train, ObjectTokensTrainConfig) else ObjectTokensTrainConfig(**(train or {}))
    check_out_dir(out_dir, overwrite or resume)
    dev = torch.device(device) if device is not None else default_device()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if keep_encoder is None:
            encoder = ObjectTokensEncoder(**init_kwargs(config))
        else:
            encoder = with_new_renderer(keep_encoder, init_kwargs(config).get("decoder_channels"))
    cfg = encoder.config
    data = frames_to_tensor(frames, cfg.image_size, "frames")
    held = frames_to_tensor(holdout_frames, cfg.image_size, "holdout_frames")
    if keep_encoder is None:
        state_t = _states(states, len(data), cfg, "states")
        held_states = (
            _states(holdout_states, len(held), cfg, "holdout_states") if state_t is not None else None
        )
    else:  # a refit trains on frames alone; held-out states only feed the report
        state_t = None
        held_states = (
            None if holdout_states is None else _states(holdout_states, len(held), cfg, "holdout_states")
        )

    encoder.to(dev).train()
    if keep_encoder is not None:
        encoder.encoder.eval()  # frozen, batch-norm statistics included: the latents must not move
    trained = encoder.parameters() if keep_encoder is None else encoder.renderer.parameters()
    opt = torch.optim.AdamW(trained, lr=tc.lr, betas=(0.9, 0.99), weight_decay=1e-4)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    history: list[float] = []
    start_step = 0
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if resume and ckpt_dir is not None and checkpoints(ckpt_dir):
        saved = load_checkpoint(checkpoints(ckpt_dir)[-1], encoder, encoder, opt, gen)
        start_step, history = int(saved["step"]), list(saved["history"])
    warmup = max(1, tc.steps // 20)
    background = median_frame(data).to(dev)
    terms: dict[str, torch.Tensor] = {}
    started = time.perf_counter()
    bar = tqdm(
        range(start_step, tc.steps), desc="train object_tokens", disable=not progress, dynamic_ncols=True
    )
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = tc.lr * lr_factor(step, warmup, tc.steps)
        idx = torch.randint(0, len(data), (min(tc.batch_size, len(data)),), generator=gen)
        x = data[idx].to(dev).float().div_(255.0)
        s = state_t[idx].to(dev) if state_t is not None else None
        if keep_encoder is None:
            terms = object_token_losses(encoder, x, s, tc, background)
        else:
            with torch.no_grad():
                tokens = encoder.encode(x)[:, 0]
            terms = {"recon": reconstruction_error(encoder, tokens, x, tc, background)}
        loss = sum(_weight(tc, k) * v for k, v in terms.items())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(encoder.parameters(), 1.0)
        opt.step()
        history.append(float(loss.detach()))
        if step % 10 == 0 or step == tc.steps - 1:
            bar.set_postfix(loss=f"{history[-1]:.4f}", recon=f"{float(terms['recon'].detach()):.4f}")
        done = step + 1
        if ckpt_dir is not None and (done % tc.checkpoint_every == 0 or done == tc.steps):
            extra = {"history": history, "seed": seed, "train": asdict(tc)}
            save_checkpoint(ckpt_dir, done, encoder, encoder, opt, gen, extra, keep=tc.keep_checkpoints)
    seconds = time.perf_counter() - started

    encoder.eval()
    with torch.inference_mode():
        pick = torch.randperm(len(held), generator=torch.Generator().manual_seed(seed))[:_EVAL_FRAMES]
        psnr_held = reconstruction_psnr(encoder, held[pick], 64)
        psnr_train = reconstruction_psnr(encoder, data[: len(pick)], 64)
        errors = {} if held_states is None else state_errors(encoder, held[pick], held_states[pick])
    encoder.to("cpu")
    if out_dir is not None:
        encoder.pretrained = str(out_dir)
        encoder.save_pretrained(out_dir)
    tail = history[-max(1, len(history) // 20) :] or [float("nan")]
    return ObjectTokensTrainResult(
        out_dir=None if out_dir is None else str(out_dir),
        steps=tc.steps,
        resumed_from=start_step,
        supervised=state_t is not None,
        final_loss=float(np.mean(tail)),
        final_terms={k: float(v.detach()) for k, v in terms.items()},
        psnr_holdout=psnr_held,
        psnr_train=psnr_train,
        state_errors_holdout=errors,
        num_train=len(data),
        num_holdout=len(held),
        seconds=seconds,
        loss_history=history,
        encoder=encoder,
    )


def object_token_losses(
    encoder: ObjectTokensEncoder,
    x: torch.Tensor,
    states: torch.Tensor | None,
    tc: ObjectTokensTrainConfig,
    background: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Loss terms (before `tc`'s weights) for frames `x` in [0, 1], states for the supervised variant, and the
    static `background` `[3, H, W]` in [0, 1] whose differing pixels get the foreground weight."""
    cfg = encoder.config
    positions, feats, prob = encoder.tokens(x)
    tokens = torch.cat([positions, feats], -1)
    terms = {"recon": reconstruction_error(encoder, tokens, x, tc, background)}
    centres = cell_centres(*encoder.renderer.base_size, device=x.device)
    offsets = ((centres[None, None] - positions[:, :, None]) ** 2).sum(-1)  # [B, K, h * w]
    terms["spread"] = (prob * offsets).sum(-1).mean()
    pinned = torch.zeros(cfg.num_tokens, dtype=torch.bool, device=x.device)
    pinned[: len(cfg.state_points) if states is not None else 0] = True
    pairs = torch.triu(torch.ones_like(pinned[:, None] & pinned[None]), 1) & ~(pinned[:, None] & pinned[None])
    if pairs.any():
        d2 = torch.cdist(positions, positions) ** 2
        terms["separation"] = torch.exp(-d2[:, pairs] / (2 * tc.separation_sigma**2)).mean()
    if states is not None and cfg.state_points:
        dims = torch.tensor(cfg.state_points, device=x.device)  # [P, 2]
        target = cfg.to_image_units(states[:, dims])  # [B, P, 2]
        terms["state"] = F.mse_loss(positions[:, : len(cfg.state_points)], target)
    if states is not None and cfg.state_angles:
        angle = states[:, list(cfg.state_angles)]
        target = torch.stack([torch.cos(angle), torch.sin(angle)], -1)
        terms["angle"] = F.mse_loss(encoder.state_head(tokens.flatten(1)).unflatten(-1, (-1, 2)), target)
    return terms


def reconstruction_error(
    encoder: ObjectTokensEncoder,
    tokens: torch.Tensor,
    x: torch.Tensor,
    tc: ObjectTokensTrainConfig,
    background: torch.Tensor | None,
) -> torch.Tensor:
    """Mean squared error of the rendered `tokens [B, K, 2 + F]` against `x`, moving pixels up-weighted."""
    err = (encoder.renderer(tokens) - x) ** 2
    if background is not None and tc.foreground_weight:
        moving = ((x - background).abs().amax(1, keepdim=True) > _FOREGROUND_THRESHOLD).to(x.dtype)
        err = err * (1.0 + tc.foreground_weight * moving)
    return err.mean()


def with_new_renderer(
    kept: ObjectTokensEncoder, decoder_channels: tuple[int, ...] | list[int] | None
) -> ObjectTokensEncoder:
    """A copy of `kept` with `kept`'s keypoint encoder and state head (the caller keeps them frozen) and a fresh
    renderer of `decoder_channels` (None: the kept ones). Latents are unchanged; only drawing them is retrained."""
    arch = init_kwargs(kept.config)
    if decoder_channels is not None:
        arch["decoder_channels"] = tuple(int(c) for c in decoder_channels)
    fresh = ObjectTokensEncoder(**arch)
    # the same config but the renderer: every other tensor is there, with its shape
    fresh.load_state_dict(
        {k: v for k, v in kept.state_dict().items() if not k.startswith("renderer.")}, strict=False
    )
    return fresh


@torch.no_grad()
def state_errors(
    encoder: ObjectTokensEncoder, frames: torch.Tensor, states: torch.Tensor
) -> dict[str, float]:
    """Mean error of `read_state(encode(frames))` against the true states, in state units (angles in degrees):
    `point{i}` per pinned token (Euclidean), `angle{d}_deg` per angle dim."""
    cfg = encoder.config
    dev = next(encoder.parameters()).device
    read = torch.cat(
        [
            encoder.read_state(encoder.encode(frames[i : i + 64].to(dev).float() / 255.0))
            for i in range(0, len(frames), 64)
        ]
    ).cpu()
    out = {}
    for i, (dx, dy) in enumerate(cfg.state_points):
        out[f"point{i}"] = float((read[:, [dx, dy]] - states[:, [dx, dy]]).norm(dim=-1).mean())
    for d in cfg.state_angles:
        diff = torch.remainder(read[:, d] - states[:, d] + torch.pi, 2 * torch.pi) - torch.pi
        out[f"angle{d}_deg"] = float(torch.rad2deg(diff.abs()).mean())
    return out


def median_frame(data: torch.Tensor) -> torch.Tensor:
    """Per-pixel median `[3, H, W]` in [0, 1] of uint8 frames `[N, 3, H, W]`: what never moves."""
    pick = torch.linspace(0, len(data) - 1, min(len(data), _MEDIAN_FRAMES)).round().long()
    return data[pick].float().median(0).values / 255.0


def _weight(tc: ObjectTokensTrainConfig, term: str) -> float:
    return 1.0 if term == "recon" else float(getattr(tc, f"{term}_weight"))


def _states(states: np.ndarray | None, n: int, cfg: ObjectTokensConfig, name: str) -> torch.Tensor | None:
    """Float32 `[n, S]` states, checked against what the config reads; None for the self-supervised variant."""
    if cfg.state_dims == 0:
        if states is not None:
            raise InputError(
                f"{name} were given but the encoder config has no state_points/state_angles to supervise: "
                "set them, or drop the states for self-supervised training"
            )
        return None
    if states is None:
        raise InputError(
            f"the encoder config reads state dims (state_points/state_angles) but no {name} were given: "
            "pass them (a dataset with a state column) or drop state_points/state_angles"
        )
    arr = np.asarray(states, dtype=np.float32)
    if arr.ndim != 2 or len(arr) != n or arr.shape[1] < cfg.state_dims or not np.isfinite(arr).all():
        raise InputError(
            f"{name} must be finite [N={n}, S>={cfg.state_dims}] to match the frames and the config's state dims, "
            f"got shape {arr.shape}"
        )
    return torch.from_numpy(arr)
