"""Trajectory-success probe: a classifier on frozen per-frame features, trained on real episodes.

Why: it judges an imagined rollout the way it judges a real one, from pixels alone, and its held-out
accuracy on real episodes (vs. on imagined ones) says how much success-relevant information the world
model keeps.

Difference from the paper (`probe.py::SpatiotemporalProbe`): the paper trains a
6-block spatio-temporal transformer (4x4 super-patch tokens, RMSNorm -> 384-d, cross-attention to
SigLIP 2 instruction tokens, BCE, instruction-mismatch negatives). Here the default is linear: the
per-frame features (e.g. encoder latents average-pooled to a 4x4 grid, `grid_pool`) are pooled over
time (mean, last frame, max) and fed to StandardScaler + class-balanced LogisticRegression. It has no
language input (PushT has one task), trains in seconds on CPU and is deterministic. Model selection
metrics match the paper: balanced accuracy, ROC-AUC.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from wmeval.io import atomic_path
from wmeval.judges.base import JudgeError, episode_frames
from worldmodel.reading import read_tensors

#: frames uint8 [T, H, W, 3] -> per-frame features [T, F].
Featurizer = Callable[[np.ndarray], np.ndarray]

POOLING = ("mean", "last", "max")
_FORMAT = "wmeval.trajectory_probe"
_VERSION = "1"
#: tensor -> its shape for a probe on n pooled features (binary logistic regression)
_SHAPES: dict[str, Callable[[int], tuple[int, ...]]] = {
    "scaler_mean": lambda n: (n,),
    "scaler_var": lambda n: (n,),
    "scaler_scale": lambda n: (n,),
    "coef": lambda n: (1, n),
    "intercept": lambda n: (1,),
    "classes": lambda n: (2,),
}


def grid_pool(latents: np.ndarray, grid: int = 4) -> np.ndarray:
    """Average-pool latent grids [T, h, w, D] to [T, grid * grid * D] (paper: 4x4 super-patches).

    Uneven sizes are split into near-equal bins, so any h, w >= grid works.
    """
    latents = np.asarray(latents, dtype=float)
    if latents.ndim != 4 or latents.shape[1] < grid or latents.shape[2] < grid:
        raise JudgeError(f"latents must be [T, h, w, D] with h, w >= {grid}, got {latents.shape}")
    rows = np.array_split(np.arange(latents.shape[1]), grid)
    cols = np.array_split(np.arange(latents.shape[2]), grid)
    cells = [latents[:, r][:, :, c].mean(axis=(1, 2)) for r in rows for c in cols]
    return np.stack(cells, axis=1).reshape(latents.shape[0], -1)


def pool_time(features: np.ndarray) -> np.ndarray:
    """One episode's per-frame features [T, F] -> [3F]: mean over time, last frame, max over time."""
    f = _as_features(features, "features")
    return np.concatenate([f.mean(axis=0), f[-1], f.max(axis=0)])


def pool_prefixes(features: np.ndarray) -> np.ndarray:
    """`pool_time` of every prefix f[:t+1] at once, [T, 3F]: what the probe would say at each step."""
    f = _as_features(features, "features")
    steps = np.arange(1, f.shape[0] + 1, dtype=float)[:, None]
    return np.concatenate([np.cumsum(f, axis=0) / steps, f, np.maximum.accumulate(f, axis=0)], axis=1)


class TrajectoryProbe:
    """Linear success probe on time-pooled frozen features; also a judge of episodes when given `featurize`.

    `fit` / `predict_proba` / `evaluate` take per-episode feature arrays [T, F] (T may vary);
    `score` / `step_scores` take episodes and call `featurize(frames)` first. `hard=True` makes
    `score` return 0/1 at `threshold` instead of a probability.
    """

    def __init__(
        self,
        featurize: Featurizer | None = None,
        *,
        C: float = 1.0,
        max_iter: int = 2000,
        hard: bool = False,
        threshold: float = 0.5,
        name: str = "trajectory_probe",
        featurizer_name: str = "",
    ) -> None:
        self.featurize = featurize
        self.C = float(C)
        self.max_iter = int(max_iter)
        self.hard = hard
        self.threshold = float(threshold)
        self.name = name
        self.featurizer_name = featurizer_name
        self.pipeline: Pipeline | None = None

    # ----------------------------------------------------------------------------------------- fit

    def fit(self, features_list: Sequence[np.ndarray], labels: Sequence[float]) -> TrajectoryProbe:
        """Train on episodes' per-frame features and their 0/1 success labels (both classes needed)."""
        x = self._pool_all(features_list)
        y = np.asarray(labels, dtype=float).reshape(-1)
        if y.size != x.shape[0]:
            raise JudgeError(f"got {x.shape[0]} episodes but {y.size} labels: pass one label per episode")
        if not np.isin(y, (0.0, 1.0)).all():
            raise JudgeError("labels must be 0/1 success flags: threshold graded outcomes first")
        if np.unique(y).size < 2:
            raise JudgeError(
                "labels are all one class: the probe needs both successful and failed episodes to train"
            )
        self.pipeline = Pipeline(
            [
                ("scaler", StandardScaler()),
                ("clf", LogisticRegression(C=self.C, class_weight="balanced", max_iter=self.max_iter)),
            ]
        ).fit(x, y.astype(int))
        return self

    def predict_proba(self, features_list: Sequence[np.ndarray]) -> np.ndarray:
        """P(success) per episode, [N]."""
        return self._proba(self._pool_all(features_list))

    def evaluate(
        self, features_list: Sequence[np.ndarray], labels: Sequence[float], threshold: float | None = None
    ) -> dict[str, Any]:
        """Held-out balanced accuracy (at `threshold`) and ROC-AUC (nan if one class only)."""
        y = np.asarray(labels, dtype=int).reshape(-1)
        proba = self.predict_proba(features_list)
        if y.size != proba.size:
            raise JudgeError(f"got {proba.size} episodes but {y.size} labels: pass one label per episode")
        thr = self.threshold if threshold is None else float(threshold)
        both = np.unique(y).size == 2
        return {
            "balanced_accuracy": float(balanced_accuracy_score(y, proba >= thr)),
            "roc_auc": float(roc_auc_score(y, proba)) if both else float("nan"),
            "n_episodes": int(y.size),
            "n_positive": int(y.sum()),
            "threshold": thr,
        }

    # --------------------------------------------------------------------------------------- judge

    def score(self, episodes: Sequence[Any]) -> np.ndarray:
        proba = self.predict_proba([self._featurize(ep) for ep in episodes])
        return (proba >= self.threshold).astype(float) if self.hard else proba

    def step_scores(self, episode: Any) -> np.ndarray:
        """P(success) judged on each prefix of the episode, [T] (for success-over-time plots)."""
        return self._proba(pool_prefixes(self._featurize(episode)))

    # ---------------------------------------------------------------------------------- save/load

    def save(self, path: str | Path) -> Path:
        """Write coefficients and scaler statistics to one safetensors file (no pickle), atomically."""
        scaler, clf = self._fitted()
        tensors = {
            "scaler_mean": np.ascontiguousarray(scaler.mean_, dtype=np.float64),
            "scaler_var": np.ascontiguousarray(scaler.var_, dtype=np.float64),
            "scaler_scale": np.ascontiguousarray(scaler.scale_, dtype=np.float64),
            "coef": np.ascontiguousarray(clf.coef_, dtype=np.float64),
            "intercept": np.ascontiguousarray(clf.intercept_, dtype=np.float64),
            "classes": np.ascontiguousarray(clf.classes_, dtype=np.int64),
        }
        meta = {
            "format": _FORMAT,
            "version": _VERSION,
            "pooling": ",".join(POOLING),
            "config": json.dumps(
                {
                    "C": self.C,
                    "max_iter": self.max_iter,
                    "hard": self.hard,
                    "threshold": self.threshold,
                    "name": self.name,
                    "featurizer_name": self.featurizer_name,
                    "n_samples_seen": int(np.max(scaler.n_samples_seen_)),
                }
            ),
        }
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, featurize: Featurizer | None = None) -> TrajectoryProbe:
        """Rebuild a fitted probe from `save`'s file; pass the same featurizer it was trained with."""
        path = Path(path)
        if not path.is_file():
            raise JudgeError(f"probe file {path} does not exist: train one first or fix the path")
        fix = "fit a probe and save it again (TrajectoryProbe.save)"
        t, meta = read_tensors(path, fix, framework="numpy")
        if meta.get("format") != _FORMAT:
            raise JudgeError(
                f"{path} is not a wmeval trajectory probe (format={meta.get('format')!r}): {fix}"
            )
        if meta.get("pooling") != ",".join(POOLING):
            raise JudgeError(
                f"{path} uses pooling {meta.get('pooling')!r}; this version expects {POOLING}: {fix}"
            )
        try:
            cfg = json.loads(meta["config"])
            n_features = int(t["coef"].shape[-1])
            shapes = {k: tuple(t[k].shape) for k in _SHAPES}
        except (KeyError, TypeError, ValueError) as err:
            raise JudgeError(f"{path} lacks the probe's config or tensors ({err!r}): {fix}") from err
        expected = {k: shape(n_features) for k, shape in _SHAPES.items()}
        if shapes != expected:
            raise JudgeError(f"{path} holds tensors of shapes {shapes}, a probe needs {expected}: {fix}")
        probe = cls(
            featurize,
            C=cfg["C"],
            max_iter=cfg["max_iter"],
            hard=cfg["hard"],
            threshold=cfg["threshold"],
            name=cfg["name"],
            featurizer_name=cfg["featurizer_name"],
        )
        scaler = StandardScaler()
        scaler.mean_, scaler.var_, scaler.scale_ = t["scaler_mean"], t["scaler_var"], t["scaler_scale"]
        scaler.n_features_in_ = n_features
        scaler.n_samples_seen_ = cfg["n_samples_seen"]
        clf = LogisticRegression(C=probe.C, class_weight="balanced", max_iter=probe.max_iter)
        clf.coef_, clf.intercept_, clf.classes_ = t["coef"], t["intercept"], t["classes"]
        clf.n_features_in_ = n_features
        clf.n_iter_ = np.zeros(1, dtype=np.int32)
        probe.pipeline = Pipeline([("scaler", scaler), ("clf", clf)])
        return probe

    # ------------------------------------------------------------------------------------ helpers

    def _fitted(self) -> tuple[StandardScaler, LogisticRegression]:
        if self.pipeline is None:
            raise JudgeError("trajectory probe is not trained: call fit(...) or TrajectoryProbe.load(path)")
        return self.pipeline.named_steps["scaler"], self.pipeline.named_steps["clf"]

    def _proba(self, pooled: np.ndarray) -> np.ndarray:
        scaler, clf = self._fitted()
        if pooled.shape[1] != scaler.n_features_in_:
            raise JudgeError(
                f"probe expects {scaler.n_features_in_ // len(POOLING)} features per frame, got "
                f"{pooled.shape[1] // len(POOLING)}: use the featurizer the probe was trained with"
            )
        positive = int(np.flatnonzero(clf.classes_ == 1)[0])
        return self.pipeline.predict_proba(pooled)[:, positive]

    def _featurize(self, episode: Any) -> np.ndarray:
        if self.featurize is None:
            raise JudgeError("trajectory probe has no featurizer: pass featurize= to score episodes")
        frames = episode_frames(episode)
        feats = _as_features(self.featurize(frames), "featurize(frames)")
        if feats.shape[0] != frames.shape[0]:
            raise JudgeError(
                f"featurize returned {feats.shape[0]} rows for {frames.shape[0]} frames: one row per frame"
            )
        return feats

    @staticmethod
    def _pool_all(features_list: Sequence[np.ndarray]) -> np.ndarray:
        if len(features_list) == 0:
            raise JudgeError("no episodes given: pass a list of per-frame feature arrays [T, F]")
        pooled = [pool_time(f) for f in features_list]
        widths = {p.size for p in pooled}
        if len(widths) != 1:
            raise JudgeError(f"episodes have different feature widths {sorted(widths)}: use one featurizer")
        return np.stack(pooled)


def _as_features(features: Any, where: str) -> np.ndarray:
    f = np.asarray(features, dtype=float)
    if f.ndim != 2 or f.shape[0] == 0 or f.shape[1] == 0:
        raise JudgeError(f"{where} must be per-frame features [T, F] with T, F >= 1, got shape {f.shape}")
    if not np.isfinite(f).all():
        raise JudgeError(f"{where} contains nan or inf: check the featurizer")
    return f
