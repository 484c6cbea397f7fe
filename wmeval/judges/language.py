"""Language for the success probe: an instruction as a fixed-size feature, and mismatched-instruction negatives.

Why these and not a text encoder: nothing may download weights at run time, and a hashed bag of words is
deterministic, needs no model and separates the instructions of a dataset well enough to condition a probe
on which task it judges. The paper's probe cross-attends to frozen SigLIP 2 text tokens;
with the linear `TrajectoryProbe` the instruction enters additively, so it can shift the probe's belief per
instruction but cannot check that the video agrees with it. Mismatched-instruction negatives (an episode
paired with another task's instruction, labelled failure) are the paper's trick for teaching that agreement;
they are offered here so a stronger probe can use the same training set.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

TEXT_DIM = 32


def text_features(instruction: str, dim: int = TEXT_DIM) -> np.ndarray:
    """Signed hashed bag of words of `instruction` [dim], L2-normalised (zeros for an empty one)."""
    out = np.zeros(dim)
    for token in re.findall(r"[a-z0-9]+", instruction.lower()):
        h = zlib.crc32(token.encode())
        out[h % dim] += 1.0 if (h >> 16) & 1 else -1.0
    norm = np.linalg.norm(out)
    return out / norm if norm > 0 else out


def with_instruction(features: np.ndarray, instruction: str, dim: int = TEXT_DIM) -> np.ndarray:
    """Per-frame features [T, F] -> [T, F + dim]: the instruction's features appended to every frame."""
    text = np.broadcast_to(text_features(instruction, dim), (len(features), dim))
    return np.concatenate([np.asarray(features, float), text], axis=1)


def mismatched_negatives(
    features: Sequence[np.ndarray], tasks: Sequence[str], labels: Sequence[bool], seed: int = 0
) -> tuple[list[np.ndarray], list[str]]:
    """Each successful episode's features with an instruction from a different task (labelled failure).

    Returns (features, instructions) of the negatives; empty when the data has fewer than two instructions.
    """
    distinct = sorted(set(tasks))
    if len(distinct) < 2:
        return [], []
    rng = np.random.default_rng(seed)
    feats, instructions = [], []
    for f, task, ok in zip(features, tasks, labels, strict=True):
        if ok:
            others = [t for t in distinct if t != task]
            feats.append(f)
            instructions.append(others[int(rng.integers(len(others)))])
    return feats, instructions
