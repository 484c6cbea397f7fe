"""The DiT training loop: CPU, one GPU or many (DDP under torchrun), with EMA, schedule and exact resume."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from worldmodel.data.clips import ClipSampler
from worldmodel.errors import InputError
from worldmodel.io import remove_temporaries
from worldmodel.objectives import Objective
from worldmodel.training.checkpoint import checkpoints, load_checkpoint, save_checkpoint
from worldmodel.training.distributed import DistInfo, all_reduce_mean
from worldmodel.training.init_from import is_backbone


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 16  # global; each of N processes draws batch_size / N
    lr: float = 1e-4
    weight_decay: float = 2e-3
    betas: tuple[float, float] = (0.9, 0.99)
    warmup_steps: int = 100
    min_lr_ratio: float = 0.7  # cosine decays to this fraction of lr
    grad_clip: float = 1.0
    ema_decay: float = 0.9995
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 10
    precision: str = "auto"  # auto (bf16 autocast on GPU, fp32 on CPU) | fp32 | bf16
    compile: bool = False
    seed: int = 0
    freeze_backbone_steps: int = 0  # the transformer blocks get no updates for this many steps (transfer)

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        if self.steps < 1 or self.batch_size < 1:
            raise InputError(f"steps={self.steps} and batch_size={self.batch_size} must be >= 1")
        if self.freeze_backbone_steps < 0:
            raise InputError(f"freeze_backbone_steps={self.freeze_backbone_steps} must be >= 0")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise InputError(f"precision='{self.precision}' is unknown; use auto, fp32 or bf16")


def lr_at(step: int, config: TrainConfig) -> float:
    """Linear warmup, then cosine from lr down to min_lr_ratio * lr at the last step."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, step: int, decay: float) -> None:
    """EMA with the usual warmup, so short CPU runs are not dominated by the random initialisation."""
    d = min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p.detach(), 1 - d)


def train(
    model: torch.nn.Module,
    objective: Objective,
    sampler: ClipSampler,
    config: TrainConfig,
    out_dir: Path,
    dist_info: DistInfo,
    on_checkpoint: Callable[[int, torch.nn.Module, dict[str, Any]], dict[str, Any]] | None = None,
    progress: bool = True,
    on_log: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Train `model` to `config.steps`, resuming from the newest checkpoint in `out_dir/checkpoints`.

    Returns a summary (steps, losses, wall time, throughput). `on_checkpoint(step, ema_model, history)` runs on the
    main process at each checkpoint (sample videos, held-out metrics, exports) with the
    history so far (losses, `wall_s`); its result joins the history. `on_log(step, {"loss", "lr"})` runs on the
    main process every `log_every` steps (a tracker such as TensorBoard).
    """
    device = dist_info.device
    model = model.to(device)
    ema = copy.deepcopy(model).requires_grad_(False).eval()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay, eps=1e-8
    )
    generator = torch.Generator().manual_seed(config.seed * 1000 + dist_info.rank)
    ckpt_dir = out_dir / "checkpoints"
    history: dict[str, list] = {"loss": [], "evals": []}
    step, wall_before = 0, 0.0
    if dist_info.is_main:  # what a killed run was writing when it died
        remove_temporaries(ckpt_dir)
        remove_temporaries(out_dir)
    existing = checkpoints(ckpt_dir)
    if existing:
        state = load_checkpoint(existing[-1], model, ema, optimizer, generator)
        sampler.load_state_dict(state["sampler"][dist_info.rank])
        step, history, wall_before = state["step"], state["history"], state["wall_s"]
    per_rank_batch = config.batch_size // dist_info.world_size
    if per_rank_batch < 1:
        raise InputError(
            f"batch_size={config.batch_size} is smaller than the {dist_info.world_size} processes"
        )

    net: torch.nn.Module = model
    if dist_info.world_size > 1:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        net = torch.compile(net)
    use_bf16 = config.precision == "bf16" or (config.precision == "auto" and device.type == "cuda")

    # Frozen by dropping their gradients after backward (not requires_grad), so DDP's hooks stay valid and
    # AdamW skips them entirely: no moment updates and no weight decay while frozen.
    backbone = [p for n, p in model.named_parameters() if is_backbone(n)]
    start_time, start_step = time.perf_counter(), step
    bar = tqdm(total=config.steps, initial=step, disable=not (progress and dist_info.is_main), desc="train")
    while step < config.steps:
        batch = sampler.sample(per_rank_batch)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = objective.loss(
                net,
                batch["latents"].to(device),
                batch["actions"].to(device),
                batch["num_history"],
                generator=generator,
            )
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}: lower lr or check the data")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if step < config.freeze_backbone_steps:
            for p in backbone:
                p.grad = None
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        update_ema(ema, model, step, config.ema_decay)
        step += 1
        loss_value = float(all_reduce_mean(loss.detach(), dist_info))
        if step % config.log_every == 0 or step == config.steps:
            history["loss"].append([step, loss_value])
            if on_log is not None and dist_info.is_main:
                on_log(step, {"loss": loss_value, "lr": optimizer.param_groups[0]["lr"]})
        elapsed = time.perf_counter() - start_time
        bar.set_postfix(
            loss=f"{loss_value:.4f}", samples_s=f"{(step - start_step) * config.batch_size / elapsed:.1f}"
        )
        bar.update(1)
        if step % config.checkpoint_every == 0 or step == config.steps:
            _checkpoint(
                step,
                model,
                ema,
                optimizer,
                generator,
                sampler,
                history,
                wall_before + elapsed,
                config,
                ckpt_dir,
                dist_info,
                on_checkpoint,
            )
    bar.close()
    elapsed = time.perf_counter() - start_time
    trained = step - start_step
    return {
        "steps": step,
        "final_loss": history["loss"][-1][1] if history["loss"] else None,
        "loss_history": history["loss"],
        "evals": history["evals"],
        "wall_s": wall_before + elapsed,
        "samples_per_s_this_run": trained * config.batch_size / elapsed if trained else None,
        "config": asdict(config),
        "ema": ema,
    }


def _checkpoint(
    step,
    model,
    ema,
    optimizer,
    generator,
    sampler,
    history,
    wall_s,
    config,
    ckpt_dir,
    dist_info,
    on_checkpoint,
) -> None:  # noqa: ANN001
    """Gather every rank's sampler state, then the main process writes the checkpoint and runs the hook."""
    sampler_states = [sampler.state_dict()]
    if dist_info.world_size > 1:
        gathered: list[Any] = [None] * dist_info.world_size
        torch.distributed.all_gather_object(gathered, sampler.state_dict())
        sampler_states = gathered
    if dist_info.is_main:
        if on_checkpoint is not None:
            history["evals"].append({"step": step, **on_checkpoint(step, ema, {**history, "wall_s": wall_s})})
        extra = {"sampler": sampler_states, "history": history, "wall_s": wall_s, "config": asdict(config)}
        save_checkpoint(ckpt_dir, step, model, ema, optimizer, generator, extra, keep=config.keep_checkpoints)
    if dist_info.world_size > 1:
        torch.distributed.barrier()
