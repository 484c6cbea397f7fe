"""PNG figures for the report: the ranking at a glance, success over time, and what the worlds looked like.

Matplotlib's object API on the Agg canvas (no pyplot): no global state, no display needed, safe to call
from any thread. Every figure is written atomically and its path returned, so callers can hand the dict of
paths straight to `markdown.write_report`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from wmeval.errors import WmevalError
from wmeval.io import atomic_path
from wmeval.report.episodes import REAL, EpisodeView

#: Real is always blue, imagined worlds take the next colours (the same order as in Rerun).
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
DPI = 100


def success_scatter(
    path: str | Path,
    blocks: Mapping[str, Mapping[str, Any]],
    *,
    label: str = "success rate",
    title: str = "Imagined vs real success, one point per policy",
) -> Path:
    """Imagined (y) vs real (x) success per policy, one colour per world model, identity line.

    `blocks[name]` is a `ranking_fidelity` block. A policy entry may carry `real_ci95` / `imagined_ci95`
    ([lo, hi]) for bootstrap error bars. Points on the diagonal are policies the world model judges right.
    Each axis spans its own data (a world model whose rates are compressed toward one level still shows
    its order), so read the diagonal as where imagined = real, not as a 45-degree line.
    """
    fig = _figure(5.5, 5.0)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="imagined = real")
    xs, ys = [], []
    for k, (name, block) in enumerate(blocks.items()):
        color = PALETTE[(k + 1) % len(PALETTE)]
        pts = [
            p for p in block.get("policies", []) if _finite(p.get("real_success"), p.get("imagined_success"))
        ]
        if not pts:
            continue
        x = np.array([float(p["real_success"]) for p in pts])
        y = np.array([float(p["imagined_success"]) for p in pts])
        xs.append(x)
        ys.append(y)
        rho = _fmt(block.get("spearman"))
        ax.errorbar(
            x,
            y,
            xerr=_yerr(pts, "real_ci95", x),
            yerr=_yerr(pts, "imagined_ci95", y),
            fmt="osD^v"[k % 5],
            color=color,
            ecolor=color,
            alpha=0.85,
            capsize=2,
            label=f"{name} (Spearman {rho}, Pearson {_fmt(block.get('pearson'))})",
        )
        if len(xs) == 1:  # policy names once: every world model's point of a policy shares its real x
            for p, xi, yi in zip(pts, x, y, strict=True):
                ax.annotate(
                    str(p.get("name", "")), (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points"
                )
    ax.set(
        xlim=_span(xs),
        ylim=_span(ys),
        xlabel=f"real {label}",
        ylabel=f"imagined {label}",
        title=title,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    return _save(fig, path)


def _span(values: list[np.ndarray], pad: float = 0.15, least: float = 0.1) -> tuple[float, float]:
    """Axis limits around `values` (rates in [0, 1]), at least `least` wide, padded; [0, 1] when empty."""
    if not values:
        return (-0.03, 1.03)
    flat = np.concatenate(values)
    lo, hi = float(flat.min()), float(flat.max())
    margin = max(hi - lo, least) * pad
    centre, half = (lo + hi) / 2, max(hi - lo, least) / 2 + margin
    return (max(centre - half, -0.03), min(centre + half, 1.03))


def success_curves(
    path: str | Path,
    curves: Mapping[str, Mapping[str, Any]],
    *,
    ylabel: str = "coverage",
    max_policies: int = 12,
) -> Path:
    """Per-policy mean score over steps, real vs each imagined world, with a ±1 std band over episodes.

    `curves[policy][world]` is [E, T+1] or a list of per-episode traces of any length; a shorter episode
    holds its last value (it ended; its outcome does not change), as the rollout loop pads.
    """
    names = list(curves)[:max_policies]
    if not names:
        raise WmevalError("success_curves needs at least one policy's curves")
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = _figure(4.0 * cols, 2.8 * rows)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    for ax, name in zip(axes.flat, names, strict=False):
        for k, (world, traces) in enumerate(_real_first(curves[name])):
            arr = pad_traces(traces)
            mean, std = arr.mean(axis=0), arr.std(axis=0)
            steps = np.arange(arr.shape[1])
            color = PALETTE[k % len(PALETTE)]
            ax.plot(steps, mean, color=color, label=f"{world} (n={arr.shape[0]})")
            ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.15, linewidth=0)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    return _save(fig, path)


def curves_from_episodes(episodes: Sequence[EpisodeView]) -> dict[str, dict[str, list[np.ndarray]]]:
    """Regroup per-step judge scores of `EpisodeView`s as `curves[policy][world]` for `success_curves`."""
    out: dict[str, dict[str, list[np.ndarray]]] = {}
    for ep in episodes:
        for world, trace in ep.worlds.items():
            if trace.scores is not None:
                out.setdefault(ep.policy, {}).setdefault(world, []).append(trace.scores)
    return out


def frame_grid(
    path: str | Path, episodes: Sequence[EpisodeView], *, n_frames: int = 6, max_episodes: int = 4
) -> Path:
    """Rows of frames (one row per episode x world, real first) at the same steps, to compare by eye.

    The frames are tiled into one mosaic and drawn with a single `imshow`: dozens of small axes would
    cost seconds of layout for no gain.
    """
    eps = list(episodes)[:max_episodes]
    rows = [(ep, world, trace) for ep in eps for world, trace in _real_first(ep.worlds)]
    if not rows or n_frames < 1:
        raise WmevalError("frame_grid needs at least one episode with frames and n_frames >= 1")
    h = max(t.frames.shape[1] for _, _, t in rows)
    w = max(t.frames.shape[2] for _, _, t in rows)
    gap = max(2, h // 16)
    mosaic = np.full((len(rows) * (h + gap) - gap, n_frames * (w + gap) - gap, 3), 255, dtype=np.uint8)
    labels = []
    for r, (ep, world, trace) in enumerate(rows):
        longest = max(t.frames.shape[0] for t in ep.worlds.values())
        steps = np.linspace(0, longest - 1, n_frames).round().astype(int)
        for c, step in enumerate(steps):
            frame = trace.frames[min(step, trace.frames.shape[0] - 1)]
            y, x = r * (h + gap), c * (w + gap)
            mosaic[y : y + frame.shape[0], x : x + frame.shape[1]] = frame
        labels.append(f"{ep.policy} ep{ep.episode_index}\n{world}")
    scale = 1.4 / max(h, w)
    fig = _figure(n_frames * w * scale + 1.4, len(rows) * h * scale + 0.6)
    ax = fig.add_subplot()
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_yticks([r * (h + gap) + h / 2 for r in range(len(rows))], labels, fontsize=7)
    ax.set_xticks(
        [c * (w + gap) + w / 2 for c in range(n_frames)], [f"{k}/{n_frames - 1}" for k in range(n_frames)]
    )
    ax.tick_params(length=0, labelsize=7)
    ax.set_xlabel("time (fraction of the longest world's episode)", fontsize=8)
    for side in ax.spines.values():
        side.set_visible(False)
    return _save(fig, path)


def horizon_curve(
    path: str | Path,
    curves: Mapping[str, Any],
    *,
    ylabel: str,
    xlabel: str = "step",
    steps: Any = None,
    bands: Mapping[str, tuple[Any, Any]] | None = None,
    title: str | None = None,
    ylim: tuple[float, float] | None = None,
) -> Path:
    """A metric against rollout horizon, one line per world model (e.g. PSNR or PCK vs step).

    `curves[name]` holds one value per step (x = `steps`, default 0..T-1); `bands[name]` = (lo, hi)
    draws a confidence band. NaN values leave gaps rather than fake zeros.
    """
    if not curves:
        raise WmevalError("horizon_curve needs at least one curve")
    fig = _figure(6.0, 3.6)
    ax = fig.add_subplot()
    for k, (name, values) in enumerate(_real_first(curves)):
        y = np.asarray(values, dtype=float).reshape(-1)
        x = np.arange(y.size) if steps is None else np.asarray(steps, dtype=float).reshape(-1)
        if x.size != y.size:
            raise WmevalError(f"curve {name!r} has {y.size} values but steps has {x.size}")
        color = PALETTE[k % len(PALETTE)]
        ax.plot(x, y, color=color, label=name, marker="o" if y.size <= 20 else None, markersize=3)
        if bands and name in bands:
            lo, hi = (np.asarray(b, dtype=float).reshape(-1) for b in bands[name])
            ax.fill_between(x, lo, hi, color=color, alpha=0.15, linewidth=0)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title or f"{ylabel} vs {xlabel}")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def pad_traces(traces: Any) -> np.ndarray:
    """[E, T] from an array or a list of 1-D traces of different lengths (each holds its last value)."""
    if isinstance(traces, np.ndarray) and traces.ndim == 2:
        return traces.astype(float)
    items = [np.asarray(t, dtype=float).reshape(-1) for t in (traces if _is_list(traces) else [traces])]
    items = [t for t in items if t.size]
    if not items:
        raise WmevalError("a curve has no values: each episode needs at least one step")
    n = max(t.size for t in items)
    return np.stack([np.concatenate([t, np.full(n - t.size, t[-1])]) for t in items])


def _is_list(x: Any) -> bool:
    return isinstance(x, list | tuple) and len(x) > 0 and np.ndim(x[0]) >= 1


def _real_first(items: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Mapping items with the real world first, so it always gets the first colour and row."""
    return sorted(items.items(), key=lambda kv: kv[0] != REAL)


def _yerr(points: list[Mapping[str, Any]], key: str, centre: np.ndarray) -> np.ndarray | None:
    """Asymmetric error-bar lengths [2, N] from per-policy [lo, hi] CIs, or None if any is missing."""
    cis = [p.get(key) for p in points]
    if any(ci is None or not _finite(*ci) for ci in cis):
        return None
    lo = np.array([float(ci[0]) for ci in cis])
    hi = np.array([float(ci[1]) for ci in cis])
    return np.stack([np.clip(centre - lo, 0, None), np.clip(hi - centre, 0, None)])


def _finite(*values: Any) -> bool:
    try:
        return all(v is not None and math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


def _fmt(value: Any) -> str:
    return f"{float(value):.2f}" if _finite(value) else "n/a"


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return path
