"""RLDS-shaped episodes as plain Python dicts (what TFDS yields as numpy), for tests without TensorFlow.

A WidowX-like toy: two cameras watch a square that moves with the action's xy (Bridge V2 units, metres per
step); each episode has an instruction, and success is whether the square ended right of centre.
"""

from __future__ import annotations

import numpy as np

TASKS = ("push the square right", "push the square left", "wiggle the square")


def rlds_episode(rng: np.random.Generator, task: str, steps: int = 10, size: int = 32) -> dict:
    """One episode: steps with two camera images, 7-d state, 7-d action, the instruction; success in metadata."""
    drift = {TASKS[0]: 0.03, TASKS[1]: -0.03, TASKS[2]: 0.0}[task]
    pos = np.array([0.5, 0.5])
    out = []
    for t in range(steps):
        action = np.zeros(7, np.float32)
        action[:2] = np.clip(rng.normal([drift, 0.0], 0.02), -0.05, 0.05)
        action[3:6] = rng.normal(0, 0.05, 3)
        action[6] = float(t < steps // 2)  # gripper open, then closed
        out.append(
            {
                "observation": {
                    "image_0": _render(pos, size, (200, 40, 40)),
                    "image_1": _render(pos[::-1], size, (40, 40, 200)),
                    "state": np.concatenate([pos, np.zeros(5)]).astype(np.float32),
                },
                "action": action,
                "language_instruction": task.encode() if t else b"",  # some steps carry no text
                "is_first": t == 0,
                "is_last": t == steps - 1,
            }
        )
        pos = np.clip(pos + action[:2] * 4, 0.1, 0.9)
    return {"steps": out, "episode_metadata": {"success": np.bool_(pos[0] > 0.55)}}


def rlds_episodes(n: int, seed: int = 0, steps: int = 10) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [rlds_episode(rng, TASKS[i % len(TASKS)], steps) for i in range(n)]


def _render(pos: np.ndarray, size: int, color: tuple[int, int, int]) -> np.ndarray:
    img = np.full((size, size, 3), 30, np.uint8)
    cx, cy = (pos * size).astype(int)
    img[max(cy - 3, 0) : cy + 3, max(cx - 3, 0) : cx + 3] = color
    return img
