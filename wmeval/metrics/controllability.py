"""Controllability: can the actions be recovered from the world model's own predictions?

Given two real context latents and the real next latent(s), search for the actions whose prediction matches
them best; the error to the true actions says how much the model's predictions depend on the action, and how
precisely. Three optimisers: CEM (paper: population 400, 50 elites, 5 iterations, initialised at the true
actions with std = 1/4 of the action range), Adam through the few-step sampler, and a grid search. For k > 1
the k actions are searched jointly through an autoregressive rollout. Each window gets ONE fixed noise tensor,
reused for every candidate and iteration, so candidates differ only by their actions. All candidates of a
group of windows go through one predictor call, i.e. one DiT call per denoising step.

Errors are in the world model's normalised action units: (1/k) sum_j ||a_plan_j - a*_j||_2 over the searched
dims. Beside them: the latent error under the true actions (the floor the search cannot beat), under a random
action, and the action error of a random guess.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from wmeval.errors import ConfigError
from wmeval.metrics.imagine import Predictor

METHODS = ("cem", "gradient", "grid")


@dataclass
class ControllabilityConfig:
    methods: list[str] = field(default_factory=lambda: ["cem"])
    ks: list[int] = field(default_factory=lambda: [1, 4])
    windows: int = 100  # paper: 100 held-out windows
    context_frames: int = 2  # paper: two real context latents
    population: int = 400  # CEM (paper 400 / 50 / 5)
    elites: int = 50
    iterations: int = 5
    action_range: tuple[float, float] = (-1.0, 1.0)  # normalised range; init std = (hi - lo) / 4
    search_box: tuple[float, float] = (-2.0, 2.0)  # candidates are clipped to this box
    search_dims: list[int] | None = None  # None: every action dim; others stay at the true value
    grad_steps: int = 50  # gradient: Adam steps and learning rate (released code: 50, 0.01)
    grad_lr: float = 0.01
    grid_points: int = 30  # grid: points per searched dim
    grid_sweeps: int = 2  # coordinate sweeps when the full grid is too big
    max_batch: int = 4096  # candidates x windows per predictor call (windows are grouped to fit)
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ConfigError(f"controllability.methods has {unknown}: choose from {', '.join(METHODS)}")
        if not 0 < self.elites <= self.population:
            raise ConfigError(f"controllability.elites={self.elites} must be in [1, population]")
        if self.context_frames < 1 or min(self.ks, default=0) < 1:
            raise ConfigError("controllability.context_frames and every k in controllability.ks must be >= 1")


@dataclass
class Windows:
    """Real context latents [W, C, ...], true target latents [W, K, ...] and normalised actions [W, K, A]."""

    context: torch.Tensor
    targets: torch.Tensor
    actions: torch.Tensor
    where: list[tuple[int, int]]  # (episode, world-model frame index of the first context frame)


def sample_windows(
    latents: list[torch.Tensor], actions: list[torch.Tensor], count: int, context: int, k: int, seed: int
) -> Windows:
    """Draw `count` windows (without replacement when possible) from episodes' latents and chunk actions.

    `actions[e][i]` is the normalised action that led into frame i of episode e (row 0 unused).
    """
    valid = [(e, s) for e, z in enumerate(latents) for s in range(len(z) - context - k + 1)]
    if not valid:
        raise ConfigError(
            f"no episode has {context + k} world-model frames for a controllability window: use longer episodes"
        )
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(valid), size=count, replace=count > len(valid))
    where = [valid[i] for i in sorted(pick)]
    ctx = torch.stack([latents[e][s : s + context] for e, s in where])
    tgt = torch.stack([latents[e][s + context : s + context + k] for e, s in where])
    act = torch.stack([actions[e][s + context : s + context + k] for e, s in where])
    return Windows(ctx.float(), tgt.float(), act.float(), where)


def latent_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per sample over the k frames and every latent element: [..., k, h, w, c] -> [...]."""
    return (pred - target).pow(2).flatten(-4).mean(-1)


def action_error(plan: torch.Tensor, true: torch.Tensor, dims: list[int]) -> torch.Tensor:
    """(1/k) sum_j ||plan_j - true_j||_2 over the searched dims: [W, k, A] -> [W]."""
    return (plan[..., dims] - true[..., dims]).norm(dim=-1).mean(-1)


class CandidateObjective:
    """Latent error of candidate actions for a group of windows, one predictor call per evaluation."""

    def __init__(self, predict: Predictor, context: torch.Tensor, targets: torch.Tensor, noise: torch.Tensor):
        self.predict, self.context, self.targets, self.noise = predict, context, targets, noise

    def __call__(self, candidates: torch.Tensor) -> torch.Tensor:
        """candidates [W, P, k, A] -> latent error [W, P] (window-major batch of W * P)."""
        w, p = candidates.shape[:2]
        rep = lambda x: x.repeat_interleave(p, dim=0)  # noqa: E731
        pred = self.predict(
            rep(self.context), candidates.reshape(w * p, *candidates.shape[2:]), rep(self.noise)
        )
        return latent_error(pred, rep(self.targets)).reshape(w, p)


def _fill(values: torch.Tensor, true: torch.Tensor, dims: list[int]) -> torch.Tensor:
    """Candidates over the searched dims [W, P, k, D] -> full actions [W, P, k, A] (others at the true value)."""
    full = true[:, None].expand(-1, values.shape[1], -1, -1).clone()
    full[..., dims] = values
    return full


@torch.no_grad()
def cem(
    objective: CandidateObjective,
    true: torch.Tensor,
    dims: list[int],
    cfg: ControllabilityConfig,
    gen: torch.Generator,
) -> torch.Tensor:
    """Cross-entropy method from the true actions: sample, keep the elites, refit a diagonal Gaussian."""
    lo, hi = cfg.action_range
    mean = true[..., dims].clone()
    std = torch.full_like(mean, (hi - lo) / 4)
    for _ in range(cfg.iterations):
        eps = torch.randn((mean.shape[0], cfg.population, *mean.shape[1:]), generator=gen).to(mean)
        samples = (mean[:, None] + std[:, None] * eps).clamp(*cfg.search_box)
        loss = objective(_fill(samples, true, dims))
        elite = loss.topk(cfg.elites, dim=1, largest=False).indices
        chosen = samples.gather(1, elite[:, :, None, None].expand(-1, -1, *samples.shape[2:]))
        mean = chosen.mean(1)
        std = chosen.std(1, unbiased=False).clamp_min(1e-4)
    return _fill(mean[:, None], true, dims)[:, 0]


def gradient_search(
    objective: CandidateObjective,
    true: torch.Tensor,
    dims: list[int],
    cfg: ControllabilityConfig,
    gen: torch.Generator,
) -> torch.Tensor:
    """Adam on the actions through the sampler, from the true actions plus one init-std perturbation."""
    lo, hi = cfg.action_range
    start = true[..., dims] + (hi - lo) / 4 * torch.randn(true[..., dims].shape, generator=gen).to(true)
    values = start.clamp(*cfg.search_box).clone().requires_grad_(True)
    opt = torch.optim.Adam([values], lr=cfg.grad_lr)
    with torch.enable_grad():
        for _ in range(cfg.grad_steps):
            loss = objective(_fill(values[:, None], true, dims)).sum()
            (values.grad,) = torch.autograd.grad(loss, [values])  # no gradients into the model's weights
            opt.step()
            with torch.no_grad():
                values.clamp_(*cfg.search_box)
    return _fill(values.detach()[:, None], true, dims)[:, 0]


@torch.no_grad()
def grid_search(
    objective: CandidateObjective,
    true: torch.Tensor,
    dims: list[int],
    cfg: ControllabilityConfig,
    gen: torch.Generator,
) -> torch.Tensor:
    """Full grid over the action range when it fits in `population`-sized batches, else coordinate sweeps.

    A sweep evaluates, for every searched coordinate at once, `grid_points` values with the others held at the
    current estimate (starting from the true actions), then moves each coordinate to its best value.
    """
    lo, hi = cfg.action_range
    points = torch.linspace(lo, hi, cfg.grid_points).to(true)
    current = true[..., dims].clone()  # [W, k, D]
    n = current[0].numel()
    if cfg.grid_points**n <= cfg.max_batch:
        grid = (
            torch.cartesian_prod(*[points] * n).reshape(-1, *current.shape[1:]) if n > 1 else points[:, None]
        )
        cands = grid.reshape(1, -1, *current.shape[1:]).expand(current.shape[0], -1, -1, -1)
        loss = objective(_fill(cands, true, dims))
        return _fill(cands[torch.arange(len(cands)), loss.argmin(1)][:, None], true, dims)[:, 0]
    for _ in range(cfg.grid_sweeps):
        flat = current.reshape(len(current), 1, 1, n).expand(-1, n, cfg.grid_points, -1).clone()
        idx = torch.arange(n)
        flat[:, idx, :, idx] = points  # candidate (i, g): coordinate i set to point g
        cands = flat.reshape(len(current), n * cfg.grid_points, *current.shape[1:])
        loss = objective(_fill(cands, true, dims)).reshape(len(current), n, cfg.grid_points)
        current = points[loss.argmin(-1)].reshape(current.shape)
    return _fill(current[:, None], true, dims)[:, 0]


SEARCH = {"cem": cem, "gradient": gradient_search, "grid": grid_search}


def _candidates_per_window(cfg: ControllabilityConfig, n: int) -> int:
    """The largest batch per window any chosen method sends to the predictor (n = searched coordinates)."""
    sizes = [3]
    if "cem" in cfg.methods:
        sizes.append(cfg.population)
    if "grid" in cfg.methods:
        full = cfg.grid_points**n
        sizes.append(full if full <= cfg.max_batch else n * cfg.grid_points)
    return max(sizes)


def controllability(
    predict: Predictor, windows: Windows, cfg: ControllabilityConfig, progress: bool = False
) -> dict[str, Any]:
    """Action recovery for every method and k; the report block (values, baselines, settings)."""
    a_dim = windows.actions.shape[-1]
    dims = list(range(a_dim)) if cfg.search_dims is None else [int(d) for d in cfg.search_dims]
    if any(not 0 <= d < a_dim for d in dims):
        raise ConfigError(f"controllability.search_dims={dims} is out of range for {a_dim}-dim actions")
    n_win = len(windows.context)
    noise_gen = torch.Generator().manual_seed(cfg.seed)
    device = windows.context.device
    noise = torch.randn((n_win, *windows.targets.shape[1:]), generator=noise_gen).to(device)
    lo, hi = cfg.action_range
    random_actions = (lo + (hi - lo) * torch.rand(windows.actions.shape, generator=noise_gen)).to(device)
    results: dict[str, Any] = {}
    for k in cfg.ks:
        per_k: dict[str, Any] = {}
        true, tgt, nz = windows.actions[:, :k], windows.targets[:, :k], noise[:, :k]
        fixed = [d for d in range(a_dim) if d not in dims]
        rand = random_actions[:, :k].clone()
        rand[..., fixed] = true[..., fixed]
        group = max(1, cfg.max_batch // _candidates_per_window(cfg, len(dims) * k))
        floor, random_err, copy_err = [], [], []
        plans: dict[str, list[torch.Tensor]] = {m: [] for m in cfg.methods}
        plan_err: dict[str, list[torch.Tensor]] = {m: [] for m in cfg.methods}
        starts = range(0, n_win, group)
        bar = tqdm(total=len(starts) * len(cfg.methods), desc=f"controllability k={k}", disable=not progress)
        for s in starts:
            sl = slice(s, s + group)
            objective = CandidateObjective(predict, windows.context[sl], tgt[sl], nz[sl])
            with torch.no_grad():
                base = objective(torch.stack((true[sl], rand[sl]), 1))
            floor.append(base[:, 0])
            random_err.append(base[:, 1])
            last = windows.context[sl][:, -1:].expand(-1, k, -1, -1, -1)
            copy_err.append(latent_error(last, tgt[sl]))
            for m in cfg.methods:
                gen = torch.Generator().manual_seed(cfg.seed * 7919 + s * 31 + k)
                plan = SEARCH[m](objective, true[sl], dims, cfg, gen)
                with torch.no_grad():
                    plan_err[m].append(objective(plan[:, None])[:, 0])
                plans[m].append(plan)
                bar.update(1)
        bar.close()
        rand_action_l2 = action_error(rand, true, dims)
        for m in cfg.methods:
            plan = torch.cat(plans[m])
            err = action_error(plan, true, dims)
            per_dim = (plan - true).abs().mean(dim=(0, 1))[dims]
            per_k[m] = {
                "action_l2": float(err.mean()),
                "action_l2_std": float(err.std(unbiased=False)),
                "action_abs_error_per_dim": per_dim.tolist(),
                "latent_mse": float(torch.cat(plan_err[m]).mean()),
            }
        per_k["floor_latent_mse_true_action"] = float(torch.cat(floor).mean())
        per_k["baseline"] = {
            "random_action_l2": float(rand_action_l2.mean()),
            "random_action_latent_mse": float(torch.cat(random_err).mean()),
            "copy_last_latent_mse": float(torch.cat(copy_err).mean()),
        }
        results[f"k{k}"] = per_k
    settings = asdict(cfg)
    settings["searched_dims"] = dims
    settings["noise"] = "one fixed tensor per window, shared by all candidates and iterations"
    settings["units"] = "world-model normalised actions; latent MSE on normalised latents"
    return {"values": results, "settings": settings, "windows": n_win}
