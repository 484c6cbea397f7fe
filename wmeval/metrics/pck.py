"""PCK@k: do points move the same way in the imagined video as in the real one?

A grid of query points on the first frame (paper: 16 x 16, 2% margin) is tracked through the real and the
generated video; PCK@k is the fraction of points visible in both whose positions agree within k px, with k in
{5, 10, 20, 40} px at 256 px scaled to the frame size. Coverage is the fraction of points still visible in the
generated video (the real video's coverage is its ceiling). Trackers share one interface: CoTracker through
`torch.hub` when its repository and weights are already in the local hub cache (never downloaded), otherwise
OpenCV's pyramidal Lucas-Kanade with a forward-backward check for visibility. The result names the tracker.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from wmeval.errors import ConfigError

THRESHOLDS_256 = (5.0, 10.0, 20.0, 40.0)


@dataclass
class PCKConfig:
    grid: int = 16  # query points per side (paper: 16 x 16)
    margin: float = 0.02  # of the frame size, kept free at the borders
    thresholds: list[float] = field(default_factory=lambda: list(THRESHOLDS_256))  # px at 256 px
    tracker: str = "auto"  # auto (CoTracker if cached, else LK) | cotracker | lk
    cotracker_model: str = "cotracker2"  # hub entry point; its weights file must be cached too
    lk_window: int = 15  # LK window side at 256 px (scaled, at least 5)
    lk_levels: int = 3
    fb_threshold: float = 2.0  # forward-backward error (px at 256 px) beyond which a point is lost


class Tracker(Protocol):
    name: str

    def track(self, video: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """video uint8 [T, H, W, 3], queries [P, 2] (x, y) on frame 0 -> tracks [T, P, 2], visible [T, P]."""


def query_grid(height: int, width: int, n: int = 16, margin: float = 0.02) -> np.ndarray:
    """n x n points (x, y) spanning the frame inside a margin (fraction of the size) on each side."""
    xs = np.linspace(margin * (width - 1), (1 - margin) * (width - 1), n)
    ys = np.linspace(margin * (height - 1), (1 - margin) * (height - 1), n)
    return np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2).astype(np.float32)


class LucasKanadeTracker:
    """Frame-to-frame pyramidal LK; a point is lost for good once LK fails or the forward-backward check does."""

    name = "opencv_lucas_kanade"

    def __init__(
        self, window: int = 15, levels: int = 3, fb_threshold: float = 2.0, scale: float = 1.0
    ) -> None:
        side = max(5, int(round(window * scale)) | 1)
        self.params = {
            "winSize": (side, side),
            "maxLevel": levels,
            "criteria": (3, 30, 0.01),  # cv2.TERM_CRITERIA_EPS | COUNT
        }
        self.fb = fb_threshold * scale

    def track(self, video: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import cv2

        gray = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in video]
        h, w = gray[0].shape
        pts = queries.astype(np.float32).reshape(-1, 1, 2)
        visible = np.ones(len(queries), bool)
        tracks, vis = [pts[:, 0].copy()], [visible.copy()]
        for prev, cur in zip(gray[:-1], gray[1:], strict=True):
            nxt, st, _ = cv2.calcOpticalFlowPyrLK(prev, cur, pts, None, **self.params)
            back, st_b, _ = cv2.calcOpticalFlowPyrLK(cur, prev, nxt, None, **self.params)
            fb_err = np.linalg.norm(back[:, 0] - pts[:, 0], axis=-1)
            inside = (
                (nxt[:, 0, 0] >= 0) & (nxt[:, 0, 0] <= w - 1) & (nxt[:, 0, 1] >= 0) & (nxt[:, 0, 1] <= h - 1)
            )
            ok = (
                (st[:, 0] == 1)
                & (st_b[:, 0] == 1)
                & (fb_err <= self.fb)
                & inside
                & np.isfinite(nxt[:, 0]).all(-1)
            )
            visible = visible & ok
            pts = np.where(visible[:, None, None], nxt, pts).astype(np.float32)
            tracks.append(pts[:, 0].copy())
            vis.append(visible.copy())
        return np.stack(tracks), np.stack(vis)


class CoTrackerHub:
    """CoTracker from the local torch.hub cache only: `source="local"` on the cached repository directory."""

    def __init__(self, repo_dir: Path, model: str, device: str = "cpu") -> None:
        self.name = f"cotracker:{model}"
        self.device = device
        self.model = torch.hub.load(str(repo_dir), model, source="local").to(device).eval()

    @torch.no_grad()
    def track(self, video: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(video)).permute(0, 3, 1, 2)[None].float().to(self.device)
        q = torch.cat((torch.zeros(len(queries), 1), torch.from_numpy(queries)), 1)[None].to(self.device)
        tracks, visible = self.model(x, queries=q)
        return tracks[0].cpu().numpy(), visible[0].cpu().numpy().astype(bool)


#: CoTracker weights as its hubconf names them (torch.hub.load_state_dict_from_url caches them under these).
#: Only the offline models: the `*_online` ones take the video in windows (`is_first_step`, then one call per
#: step), another call signature than the one `CoTrackerHub.track` uses.
COTRACKER_WEIGHTS = {
    "cotracker2": "cotracker2.pth",
    "cotracker2v1": "cotracker2v1.pth",
    "cotracker3_offline": "scaled_offline.pth",
}


def cached_cotracker(model: str) -> tuple[Path | None, str]:
    """(repository dir, "") when CoTracker's code and weights are both in the hub cache, else (None, why)."""
    hub = Path(torch.hub.get_dir())
    repos = sorted(hub.glob("facebookresearch_co-tracker_*")) if hub.is_dir() else []
    repo = next((r for r in repos if (r / "hubconf.py").is_file()), None)
    weights = hub / "checkpoints" / COTRACKER_WEIGHTS[model]
    if repo is None:
        return (
            None,
            f"CoTracker's repository is not in {hub} (facebookresearch_co-tracker_<branch>/hubconf.py)",
        )
    if not weights.is_file():
        return None, f"CoTracker weights {weights.name} are not in {weights.parent}"
    return repo, ""


def make_tracker(cfg: PCKConfig, frame_size: int, device: str = "cpu") -> tuple[Tracker, str]:
    """The tracker to use and a note on why (e.g. why CoTracker was not used)."""
    note = ""
    if cfg.tracker in ("auto", "cotracker"):
        if cfg.cotracker_model not in COTRACKER_WEIGHTS:
            raise ConfigError(
                f"cotracker_model={cfg.cotracker_model!r} is not supported: choose one of "
                f"{', '.join(COTRACKER_WEIGHTS)} (the online models track in windows, another call signature)"
            )
        repo, why = cached_cotracker(cfg.cotracker_model)
        if repo is not None:
            return CoTrackerHub(repo, cfg.cotracker_model, device), "CoTracker from the local torch.hub cache"
        note = f"CoTracker not used: {why} (nothing is downloaded); fell back to OpenCV Lucas-Kanade"
        if cfg.tracker == "cotracker":
            note = f"tracker=cotracker requested but {why}; fell back to OpenCV Lucas-Kanade"
    elif cfg.tracker != "lk":
        raise ConfigError(f"pck.tracker={cfg.tracker!r} is unknown: choose auto, cotracker or lk")
    scale = frame_size / 256.0
    return LucasKanadeTracker(cfg.lk_window, cfg.lk_levels, cfg.fb_threshold, scale), note


def pck_scores(
    real_tracks: np.ndarray,
    real_vis: np.ndarray,
    gen_tracks: np.ndarray,
    gen_vis: np.ndarray,
    thresholds_px: dict[str, float],
) -> dict[str, np.ndarray]:
    """Per-frame PCK at each named threshold (over points visible in both; nan if none) and coverage, [T]."""
    both = real_vis & gen_vis
    dist = np.linalg.norm(real_tracks - gen_tracks, axis=-1)
    out: dict[str, np.ndarray] = {}
    count = both.sum(-1)
    for label, thr in thresholds_px.items():
        hits = ((dist <= thr) & both).sum(-1)
        out[label] = np.where(count > 0, hits / np.maximum(count, 1), np.nan)
    out["coverage"] = gen_vis.mean(-1)
    out["coverage_real"] = real_vis.mean(-1)
    return out


def pck(
    real: np.ndarray,
    videos: dict[str, np.ndarray],
    context: int,
    cfg: PCKConfig | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """PCK and coverage of each video in `videos` against `real`, all uint8 [N, T, H, W, 3] sharing frame 0.

    Queries sit on the first (context) frame; scores are over the frames after the `context` real ones.
    """
    from tqdm.auto import tqdm

    cfg = cfg or PCKConfig()
    n, t, h, w = real.shape[:4]
    tracker, note = make_tracker(cfg, min(h, w), device)
    scale = min(h, w) / 256.0
    thresholds = {f"pck@{thr:g}": thr * scale for thr in cfg.thresholds}
    queries = query_grid(h, w, cfg.grid, cfg.margin)
    per_video: dict[str, list[dict[str, np.ndarray]]] = {name: [] for name in videos}
    for i in tqdm(range(n), desc=f"track points ({tracker.name})", disable=not progress, leave=False):
        r_tracks, r_vis = tracker.track(real[i], queries)
        for name, video in videos.items():
            g_tracks, g_vis = tracker.track(video[i], queries)
            per_video[name].append(
                pck_scores(
                    r_tracks[context:], r_vis[context:], g_tracks[context:], g_vis[context:], thresholds
                )
            )
    values: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nan where no point is visible in both videos
        for name, scores in per_video.items():
            by_step = {key: np.nanmean(np.stack([s[key] for s in scores]), 0) for key in scores[0]}
            values[name] = {key: float(np.nanmean(v)) for key, v in by_step.items()}
            values[name]["by_step"] = {key: v.tolist() for key, v in by_step.items()}
    return {
        "tracker": tracker.name,
        "tracker_note": note,
        "values": values,
        "thresholds_px": thresholds,
        "queries": len(queries),
        "frame_size": [h, w],
    }
