"""PushT geometry and contact physics in plain numpy, mirroring gym_pusht's `add_tee` and physics settings.

Kept here (not imported from gym_pusht) because `policies` must not depend on the simulator: the same controller
runs on states estimated from world-model frames. Conventions follow gym_pusht: a pose is (x, y, theta) of the
block's body origin, world = origin + R(theta) @ local; the block rotates about its centre of gravity.
"""

from __future__ import annotations

import numpy as np

GOAL_POSE = np.array([256.0, 256.0, np.pi / 4])
AGENT_RADIUS = 15.0
ARENA = (22.0, 490.0)  # agent-centre limits: walls at 5 and 506, minus the agent radius
BLOCK_MASS = 1.0
BLOCK_INERTIA = 3000.0  # pymunk moment of the tee (2 x moment_for_poly of the bar), about its CoG
PD_GAINS = (100.0, 20.0)  # gym_pusht's agent PD control (k_p, k_v) towards the commanded target
SIM_DT, SUBSTEPS = 0.01, 10  # physics step and physics steps per control step (100 Hz sim, 10 Hz control)
COG_LOCAL = np.array([0.0, 45.0])
# The two rectangles of the tee in local coordinates: (xmin, ymin, xmax, ymax).
RECTS = np.array([[-60.0, 0.0, 60.0, 30.0], [-15.0, 30.0, 15.0, 120.0]])
# Outline, in order; edge i runs from OUTLINE[i] to OUTLINE[i + 1].
OUTLINE = np.array(
    [[-60, 0], [60, 0], [60, 30], [15, 30], [15, 120], [-15, 120], [-15, 30], [-60, 30]], dtype=float
)
CONVEX = np.array([True, True, True, False, True, True, False, True])
# Keypoints for the pose error: the 8 outline corners plus the stem and bar midpoints.
KEYPOINTS = np.concatenate([OUTLINE, [[0.0, 15.0], [0.0, 75.0], [0.0, 120.0], [0.0, 0.0]]])


def rot(theta: np.ndarray | float) -> np.ndarray:
    """Rotation matrices [..., 2, 2]."""
    c, s = np.cos(theta), np.sin(theta)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def to_world(pose: np.ndarray, local: np.ndarray) -> np.ndarray:
    """Local points [N, 2] of a block at `pose` [..., 3] -> world points [..., N, 2]."""
    pose = np.asarray(pose, dtype=float)
    return pose[..., None, :2] + np.einsum("...ij,nj->...ni", rot(pose[..., 2]), local)


def to_local(pose: np.ndarray, world: np.ndarray) -> np.ndarray:
    """World points [N, 2] -> local points of a block at `pose` (single pose)."""
    return (np.asarray(world, dtype=float) - pose[:2]) @ rot(pose[2])


def keypoint_error(pose: np.ndarray, goal: np.ndarray = GOAL_POSE) -> np.ndarray:
    """Mean squared distance (px^2) between block keypoints and goal keypoints; batched over poses."""
    d = to_world(pose, KEYPOINTS) - to_world(goal, KEYPOINTS)
    return (d**2).sum(-1).mean(-1)


def distance_to_tee(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Euclidean distance (px) from world points [N, 2] to the block's solid shape (0 inside)."""
    local = to_local(pose, points)[:, None, :]
    lo, hi = RECTS[None, :, :2], RECTS[None, :, 2:]
    gap = np.maximum(np.maximum(lo - local, local - hi), 0.0)
    return np.sqrt((gap**2).sum(-1)).min(-1)


def offset_outline(distance: float) -> np.ndarray:
    """The outline pushed outward by `distance` (mitre joins): way-points for going around the block."""
    d = distance
    sx = np.array([-1, 1, 1, 1, 1, -1, -1, -1], dtype=float)
    sy = np.array([-1, -1, 1, 1, 1, 1, 1, 1], dtype=float)
    return OUTLINE + d * np.stack([sx, sy], -1)


def push_response(
    pose: np.ndarray, contact: np.ndarray, direction: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Block motion per unit of agent travel for frictionless point pushes (damping 0 in gym_pusht).

    With zero friction and zero damping the block moves only by the normal impulse J at the contact:
    d_cog = J/m n and d_theta = J (r x n) / I, with J chosen so the contact point keeps pace with the agent.
    `contact` and `direction` are world [K, 2]; returns (d_cog [K, 2], d_theta [K]).
    """
    cog = to_world(pose, COG_LOCAL[None])[0]
    r = contact - cog
    k = r[:, 0] * direction[:, 1] - r[:, 1] * direction[:, 0]
    impulse = 1.0 / (1.0 / BLOCK_MASS + k**2 / BLOCK_INERTIA)
    return impulse[:, None] * direction / BLOCK_MASS, impulse * k / BLOCK_INERTIA


def agent_step(
    position: np.ndarray, velocity: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The agent's (position, velocity) one control step later under gym_pusht's PD control, unobstructed."""
    kp, kv = PD_GAINS
    pos, vel = np.asarray(position, dtype=float).copy(), np.asarray(velocity, dtype=float).copy()
    for _ in range(SUBSTEPS):
        vel = vel + (kp * (target - pos) - kv * vel) * SIM_DT
        pos = pos + vel * SIM_DT
    return pos, vel


def apply_push(pose: np.ndarray, d_cog: np.ndarray, d_theta: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Poses after pushing distance `s` [K, S] with the per-unit motion of `push_response` (first order)."""
    cog = to_world(pose, COG_LOCAL[None])[0]
    new_cog = cog + d_cog[:, None, :] * s[..., None]
    theta = pose[2] + d_theta[:, None] * s
    origin = new_cog - np.einsum("...ij,j->...i", rot(theta), COG_LOCAL)
    return np.concatenate([origin, theta[..., None]], -1)


def segment_clear(
    pose: np.ndarray, a: np.ndarray, b: np.ndarray, clearance: float, step: float = 4.0
) -> bool:
    """Whether the agent can move straight from a to b keeping `clearance` from the block."""
    n = max(2, int(np.linalg.norm(b - a) / step) + 1)
    t = np.linspace(0.0, 1.0, n)[:, None]
    return bool(distance_to_tee(pose, a + t * (b - a)).min() >= clearance)


def escape_direction(pose: np.ndarray, point: np.ndarray) -> np.ndarray:
    """World unit vector along which `point` leaves the block fastest (away from its nearest surface)."""
    local = to_local(pose, np.asarray(point, dtype=float)[None])[0]
    best, best_d = np.array([0.0, -1.0]), np.inf
    for xmin, ymin, xmax, ymax in RECTS:
        nearest = np.clip(local, [xmin, ymin], [xmax, ymax])
        gap = local - nearest
        d = np.linalg.norm(gap)
        if d > 0:
            cand, score = gap / d, d
        else:  # inside this rectangle: leave through the closest side
            depths = np.array([local[0] - xmin, xmax - local[0], local[1] - ymin, ymax - local[1]])
            k = int(depths.argmin())
            cand = [np.array([-1.0, 0.0]), np.array([1.0, 0.0]), np.array([0.0, -1.0]), np.array([0.0, 1.0])][
                k
            ]
            score = -depths[k]
        if score < best_d:
            best, best_d = cand, score
    return rot(pose[2]) @ best
