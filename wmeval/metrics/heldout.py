"""The shared evaluation set of `wmeval metrics`: held-out episodes, their latents, and open-loop rollouts.

Every metric reads the same set, so their numbers describe the same rollouts: the held-out episodes (the
world model's own split when the data is its training data), their real latents at world-model stride, the
recorded actions replayed from `context` real frames, and four videos over the same frames: real, the model's,
copy-last (the last context frame held) and the encoder's reconstruction (the ceiling).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from wmeval.errors import ConfigError
from wmeval.metrics.imagine import encode_strided, open_loop_latents
from worldmodel import WorldModel
from worldmodel.data.actions import step_actions


@dataclass
class EvalSet:
    heldout: list[dict[str, Any]]  # episodes as `load_episodes` gives them
    train: list[dict[str, Any]]  # the rest: they train the IDM and the success probe
    split: str  # how the split was made, for the report
    horizon: int
    context: int
    real: np.ndarray  # frames [N, C + H, 3, h, w] in [0, 1]
    videos: dict[str, np.ndarray]  # model / copy_last / reconstruction, same shape, first C frames real
    latents: list[torch.Tensor]  # whole held-out episodes at world-model stride
    real_seq: list[torch.Tensor]  # [C + H, ...] real latents per held-out episode
    imagined_seq: list[torch.Tensor]  # [C + H, ...] the first C real, then imagined
    train_latents: list[torch.Tensor] = field(default_factory=list)


def split_heldout(
    wm: WorldModel, episodes: list[dict], data: str | Path, heldout: int | str | None, seed: int
) -> tuple[list[dict], list[dict], str]:
    """The world model's own held-out split when `data` is its training data, else a seeded split.

    `heldout="all"` evaluates every episode in recorded order: a separate test set the model never saw.
    """
    from wmeval.commands.train import split_episodes

    if heldout == "all":
        return [], list(episodes), f"every episode of the data ({len(episodes)}): a separate test set"
    meta = wm.config.meta or {}
    trained = meta.get("config", {})
    same = meta.get("data") is not None and _same_path(meta["data"], data)
    if heldout is None and same and "heldout_episodes" in trained:
        train, held = split_episodes(episodes, int(trained["heldout_episodes"]), int(trained.get("seed", 0)))
        return train, held, "the world model's own held-out episodes (its training data, its seeded split)"
    if isinstance(heldout, str) and not heldout.isdigit():
        raise ConfigError(f"heldout={heldout!r} must be a number of episodes, all, or null")
    n = int(heldout) if heldout is not None else max(1, len(episodes) // 4)
    train, held = split_episodes(episodes, n, seed)
    return train, held, f"seeded split (seed={seed}): {n} held out, {len(train)} train the IDM and probe"


def build_eval_set(
    wm: WorldModel,
    episodes: list[dict],
    *,
    data: str | Path,
    count: int,
    horizon: int,
    context: int,
    heldout: int | str | None = None,
    with_train: bool = True,
    num_steps: int | None = None,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = False,
) -> EvalSet:
    """Split, encode (held-out, and training episodes when `with_train`), imagine, decode."""
    train_eps, held, split = split_heldout(wm, episodes, data, heldout, seed)
    if with_train and not train_eps:
        raise ConfigError(
            "heldout=all leaves no training episodes, and the IDM and the success probe train on them: "
            "pass heldout=N, or metrics= without idm and probe"
        )
    held = held[:count]
    k = wm.config.sim_steps_per_frame
    room = min((len(ep["actions"]) - 1) // k for ep in held) - (context - 1)
    if room < 1:
        raise ConfigError(f"held-out episodes are too short for context={context} at {k} steps per frame")
    horizon = min(horizon, room)
    frames, latents, train_latents = [], [], []
    todo = held + (train_eps if with_train else [])
    for i, ep in enumerate(tqdm(todo, desc="encode episodes", disable=not progress, leave=False)):
        f, z = encode_strided(wm, ep["frames"], k)
        if i < len(held):
            frames.append(f)
            latents.append(z)
        else:
            train_latents.append(z)
    raw = [ep["actions"] for ep in held]
    imagined = open_loop_latents(
        wm,
        latents,
        raw,
        context,
        horizon,
        num_steps=num_steps,
        seed=seed,
        batch_size=batch_size,
        progress=progress,
    )
    span = context + horizon
    real_lat = torch.stack([z[:span] for z in latents])
    real = torch.stack([f[:span] for f in frames])
    videos = {
        "model": torch.cat((real[:, :context], _decode(wm, imagined)), 1).numpy(),
        "copy_last": real[:, context - 1 : context].expand(-1, span, -1, -1, -1).numpy(),
        "reconstruction": torch.cat((real[:, :context], _decode(wm, real_lat[:, context:])), 1).numpy(),
    }
    return EvalSet(
        heldout=held,
        train=train_eps,
        split=split,
        horizon=horizon,
        context=context,
        real=real.numpy(),
        videos=videos,
        latents=latents,
        real_seq=list(real_lat),
        imagined_seq=list(torch.cat((real_lat[:, :context], imagined), 1)),
        train_latents=train_latents,
    )


def frame_actions(wm: WorldModel, raw: np.ndarray, frames: int) -> torch.Tensor:
    """Normalised action into each world-model frame [frames, A]; row 0 (nothing led into it) is zeros."""
    k = wm.config.sim_steps_per_frame
    steps = min(frames - 1, len(raw) // k)
    chunks = torch.as_tensor(step_actions(np.asarray(raw[: steps * k], np.float32), k, wm.config.action_mode))
    out = torch.zeros(frames, wm.action_dim)
    out[1 : steps + 1] = wm.normalize_actions(chunks).cpu()
    return out


def _decode(wm: WorldModel, latents: torch.Tensor, batch: int = 8) -> torch.Tensor:
    return torch.cat(
        [wm.decode_latents(latents[i : i + batch].to(wm.device)).cpu() for i in range(0, len(latents), batch)]
    )


def _same_path(a: Any, b: Any) -> bool:
    try:
        return Path(str(a)).resolve() == Path(str(b)).resolve()
    except OSError:
        return False
