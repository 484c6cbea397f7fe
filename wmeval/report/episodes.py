"""What the report and the Rerun recording show of one episode: each world's frames, actions, states, scores.

Kept free of rerun and matplotlib so that building views (from `wmeval.rollout.Rollouts` or by hand)
costs nothing until something is drawn. Shapes are checked here, once, with errors naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wmeval.errors import WmevalError

REAL = "real"


@dataclass
class WorldTrace:
    """One world's view of an episode. T steps: T+1 frames, T actions.

    frames uint8 [T+1, H, W, 3]; actions [T, A]; states [T+1, S] (true in the real world, estimated in
    imagination); scores [T+1] (per-step judge output: success probability or coverage); points
    [T+1, K, 2] pixel (x, y) of tracked points, NaN where a point is lost; fps of the rollout.
    """

    frames: np.ndarray
    actions: np.ndarray | None = None
    states: np.ndarray | None = None
    scores: np.ndarray | None = None
    points: np.ndarray | None = None
    fps: float | None = None

    def __post_init__(self) -> None:
        f = self.frames = np.asarray(self.frames)
        if f.ndim != 4 or f.shape[-1] != 3 or f.shape[0] == 0 or f.dtype != np.uint8:
            raise WmevalError(f"frames must be uint8 [T+1, H, W, 3], got {f.dtype} {f.shape}")
        n = f.shape[0]
        self.actions = _rows(self.actions, "actions", (n - 1, n), 2)
        self.states = _rows(self.states, "states", (n,), 2)
        self.scores = _rows(self.scores, "scores", (n,), 1)
        self.points = _rows(self.points, "points", (n,), 3)
        if self.points is not None and self.points.shape[-1] != 2:
            raise WmevalError(f"points must be [T+1, K, 2] pixel (x, y), got {self.points.shape}")
        if self.fps is not None and not self.fps > 0:
            raise WmevalError(f"fps={self.fps} must be positive (or None when unknown)")


@dataclass
class EpisodeView:
    """One policy's episode from one start state, as every world saw it (real first, by convention).

    `worlds` maps "real", "imagined" or a world model's name to its `WorldTrace` (a mapping with the same
    fields is converted). `score_name` says what `scores` mean, for axis labels.
    """

    policy: str
    episode_index: int
    worlds: dict[str, WorldTrace]
    seed: int | None = None
    score_name: str = "success probability"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.worlds:
            raise WmevalError(
                f"episode {self.policy}/{self.episode_index} has no worlds: pass real and imagined"
            )
        self.worlds = {w: t if isinstance(t, WorldTrace) else _trace(t) for w, t in self.worlds.items()}


def as_episode_view(obj: Any) -> EpisodeView:
    """Accept an `EpisodeView`, or a mapping / object with the same fields (a rollout loop's record)."""
    if isinstance(obj, EpisodeView):
        return obj
    worlds = _get(obj, "worlds")
    if worlds is None:
        raise WmevalError(f"episode record {type(obj).__name__} has no `worlds`: build an EpisodeView")
    extra = {"score_name": _get(obj, "score_name")} if _get(obj, "score_name") else {}
    return EpisodeView(
        policy=str(_get(obj, "policy")),
        episode_index=int(_get(obj, "episode_index") or 0),
        worlds={name: w if isinstance(w, WorldTrace) else _trace(w) for name, w in dict(worlds).items()},
        seed=_get(obj, "seed"),
        **extra,
    )


def episodes_from_rollouts(
    real: Mapping[str, Any],
    imagined: Mapping[str, Mapping[str, Any]],
    *,
    per_policy: int = 2,
    fps: float | Mapping[str, float] | None = None,
    scores: Mapping[str, Mapping[str, Sequence[np.ndarray]]] | None = None,
    score_name: str = "coverage",
) -> list[EpisodeView]:
    """Pair `wmeval.rollout.Rollouts` episode by episode (same start state) into views for Rerun and plots.

    real[policy] and imagined[world_model][policy] are `Rollouts` rolled from the same seeds, as `rank`
    produces them; the first `per_policy` episodes of each policy are taken. Per-step scores default to the
    rollout's coverage (the simulator's in the real world, the estimator's in imagination); pass
    `scores[world][policy][i]` (e.g. `TrajectoryProbe.step_scores`) to show a judge instead.
    """
    views = []
    for policy, real_runs in real.items():
        runs = {REAL: real_runs} | {
            wm: by_policy[policy] for wm, by_policy in imagined.items() if policy in by_policy
        }
        count = min([per_policy] + [int(r.num_episodes) for r in runs.values()])
        for i in range(count):
            worlds = {}
            for world, run in runs.items():
                ep = run.episode(i)
                if ep.get("frames") is None:
                    raise WmevalError(
                        f"{world} rollouts of {policy!r} kept no frames: roll out with keep_frames=True"
                    )
                step_scores = scores.get(world, {}).get(policy) if scores else None
                worlds[world] = WorldTrace(
                    frames=ep["frames"],
                    actions=ep.get("actions"),
                    states=ep.get("states"),
                    scores=ep.get("coverage") if step_scores is None else step_scores[i],
                    fps=fps.get(world) if isinstance(fps, Mapping) else fps,
                )
            seed = real_runs.episode(i).get("seed")
            views.append(EpisodeView(policy, i, worlds, seed=seed, score_name=score_name))
    return views


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def _trace(w: Any) -> WorldTrace:
    return WorldTrace(**{k: _get(w, k) for k in ("frames", "actions", "states", "scores", "points", "fps")})


def _rows(x: Any, name: str, lengths: tuple[int, ...], ndim: int) -> np.ndarray | None:
    """`x` as float with `ndim` dims and one of `lengths` rows (a 1-D action/state gets a unit last axis)."""
    if x is None:
        return None
    a = np.asarray(x, dtype=float)
    if ndim == 2 and a.ndim == 1:
        a = a[:, None]
    if a.ndim != ndim or a.shape[0] not in lengths:
        want = " or ".join(str(n) for n in lengths)
        raise WmevalError(
            f"{name} must have {ndim} dims and {want} rows (frames have {lengths[-1]}), got {a.shape}"
        )
    return a
