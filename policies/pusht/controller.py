"""A scripted PushT controller that plans pushes with the simulator's own (frictionless) contact physics.

Why a model-based greedy planner: in gym_pusht the block has zero damping and frictionless contacts, so a push
of length s at a contact moves the block exactly as `geometry.push_response` predicts. Every step we score
every reachable contact (points on each face, fans at each convex corner) by how much a push there reduces the
keypoint error to the goal, per pixel the agent must travel (going around the block, never through it), then
either travel to the best contact or push. Committing to a contact until it stops paying avoids dithering.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from policies.pusht import geometry as G


@dataclass
class ControllerConfig:
    """Knobs of the controller; the policy family varies them to make policies of graded skill."""

    goal: tuple[float, float, float] = (256.0, 256.0, float(np.pi / 4))
    ignore_rotation: bool = False  # judge pushes by the position of the block only (a flawed member)
    push_speed: float = 12.0  # px of agent travel commanded per step while pushing
    travel_speed: float = 60.0  # px of way-point lead per step while going around the block
    travel_rate: float = 25.0  # px per step the agent actually covers when travelling (for time estimates)
    clearance: float = 5.0  # px kept between agent and block while travelling
    switch_ratio: float = 1.3  # a new contact must score this much better to abandon the current one
    overhead: float = 2.0  # fixed cost in steps of starting a new push (approach + settle)


def _candidates() -> tuple[np.ndarray, np.ndarray]:
    """Body-frame contact points [K, 2] and outward unit directions [K, 2] the agent may push from."""
    points, normals = [], []
    n = len(G.OUTLINE)
    for i in range(n):
        a, b = G.OUTLINE[i], G.OUTLINE[(i + 1) % n]
        tangent = (b - a) / np.linalg.norm(b - a)
        out = np.array([tangent[1], -tangent[0]])
        for t in np.linspace(0.0, 1.0, max(2, int(np.linalg.norm(b - a) / 5) + 1))[1:-1]:
            points.append(a + t * (b - a))
            normals.append(out)
    for i in range(n):
        if not G.CONVEX[i]:
            continue
        prev_t = G.OUTLINE[i] - G.OUTLINE[i - 1]
        next_t = G.OUTLINE[(i + 1) % n] - G.OUTLINE[i]
        a0 = np.arctan2(-prev_t[0], prev_t[1])  # outward normal of the incoming edge
        a1 = np.arctan2(-next_t[0], next_t[1])
        if a1 < a0:
            a1 += 2 * np.pi
        for ang in np.linspace(a0, a1, 7)[1:-1]:
            points.append(G.OUTLINE[i])
            normals.append(np.array([np.cos(ang), np.sin(ang)]))
    points, normals = np.array(points), np.array(normals)
    # Keep contacts where the agent disc touches only there (not also the other arm of the tee).
    centres = points + normals * G.AGENT_RADIUS
    ok = G.distance_to_tee(np.zeros(3), centres) >= G.AGENT_RADIUS - 0.5
    return points[ok], normals[ok]


CONTACTS, OUTWARD = _candidates()
PUSH_LENGTHS = np.array([1.5, 3.0, 6.0, 10.0, 16.0, 25.0, 40.0])


def _segments_clear(pose: np.ndarray, a: np.ndarray, b: np.ndarray, clearance: float) -> np.ndarray:
    """For segments a[M] -> b[M], whether the agent keeps `clearance` from the block all along.

    An end point closer than `clearance` (the agent touching the block, a contact inside the tee's concave
    corner) relaxes the test for that segment to its own distance, so leaving or entering such a spot is allowed
    but cutting through the block is not.
    """
    if len(a) == 0:  # no way-point left inside the arena (the block pressed into a wall)
        return np.zeros(0, dtype=bool)
    t = np.linspace(0.0, 1.0, 24)[None, :, None]
    pts = a[:, None, :] + t * (b - a)[:, None, :]
    d = G.distance_to_tee(pose, pts.reshape(-1, 2)).reshape(len(a), -1)
    need = np.minimum(clearance, np.minimum(d[:, 0], d[:, -1]) - 0.5)
    return d.min(-1) >= need


class PushTController:
    """Single-episode controller: `act(agent_xy, block_pose) -> absolute agent target`."""

    def __init__(self, config: ControllerConfig | None = None) -> None:
        self.config = config or ControllerConfig()
        self.goal = np.asarray(self.config.goal, dtype=float)
        self.reset()

    def reset(self) -> None:
        self.current: int | None = None
        self.pushing: tuple[np.ndarray, np.ndarray] | None = None  # (contact, outward) of the last push

    def plan(
        self, agent: np.ndarray, pose: np.ndarray, velocity: np.ndarray, steps: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """An action chunk: `steps` successive targets from one observation, rolling the controller's own
        model forward (PD agent, frictionless push response) between them. Returns (targets [steps, 2], the
        agent velocity the model expects at the end), so the next chunk can start from it."""
        agent = np.asarray(agent, dtype=float)
        pose = np.asarray(pose, dtype=float)
        targets = []
        for _ in range(steps):
            target = self.act(agent, pose)
            targets.append(target)
            agent, velocity = G.agent_step(agent, velocity, target)
            if self.pushing is not None:
                contact, outward = self.pushing
                depth = float(((contact + outward * G.AGENT_RADIUS - agent) * outward).sum())
                if depth > 0:  # the agent disc moved into the block: the block gives way by that much
                    d_cog, d_theta = G.push_response(pose, contact[None], -outward[None])
                    pose = G.apply_push(pose, d_cog, d_theta, np.array([[depth]]))[0, 0]
        return np.stack(targets), velocity

    # --- scoring -------------------------------------------------------------------------------------
    def _cost(self, poses: np.ndarray) -> np.ndarray:
        if self.config.ignore_rotation:
            cog = G.to_world(poses, G.COG_LOCAL[None])[..., 0, :]
            goal_cog = G.to_world(self.goal, G.COG_LOCAL[None])[0]
            return ((cog - goal_cog) ** 2).sum(-1)
        return G.keypoint_error(poses, self.goal)

    def _evaluate(self, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per contact: best push length, improvement, world contact point and world outward direction."""
        r = G.rot(pose[2])
        contact = G.to_world(pose, CONTACTS)
        outward = OUTWARD @ r.T
        d_cog, d_theta = G.push_response(pose, contact, -outward)
        s = np.broadcast_to(PUSH_LENGTHS, (len(contact), len(PUSH_LENGTHS)))
        gain = self._cost(pose) - self._cost(G.apply_push(pose, d_cog, d_theta, s))
        # The agent centre must stay in the arena over the whole push.
        lo, hi = G.ARENA
        start = contact + outward * G.AGENT_RADIUS
        end = start[:, None, :] - outward[:, None, :] * s[..., None]
        pre = start + outward * (self.config.clearance + 2.0)
        inside = ((end >= lo) & (end <= hi)).all(-1) & ((pre >= lo) & (pre <= hi)).all(-1)[:, None]
        gain = np.where(inside, gain, -np.inf)
        best = gain.argmax(-1)
        idx = np.arange(len(contact))
        return PUSH_LENGTHS[best], gain[idx, best], contact, outward

    def _travel(
        self, pose: np.ndarray, agent: np.ndarray, targets: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Shortest way around the block to each target: (length [M], first way-point [M, 2])."""
        clear = G.AGENT_RADIUS + self.config.clearance
        nodes = G.to_world(pose, G.offset_outline(clear + 3.0))
        lo, hi = G.ARENA
        nodes = nodes[((nodes >= lo) & (nodes <= hi)).all(-1)]
        # Dijkstra from the agent over the way-points.
        k = len(nodes)
        direct = _segments_clear(pose, np.repeat(agent[None], k, 0), nodes, clear - 0.5)
        ii, jj = np.triu_indices(k, 1)
        pair_ok = _segments_clear(pose, nodes[ii], nodes[jj], clear - 0.5)
        adj = np.full((k, k), np.inf)
        lens = np.linalg.norm(nodes[ii] - nodes[jj], axis=-1)
        adj[ii[pair_ok], jj[pair_ok]] = lens[pair_ok]
        adj[jj[pair_ok], ii[pair_ok]] = lens[pair_ok]
        dist = np.where(direct, np.linalg.norm(nodes - agent, axis=-1), np.inf)
        first = np.arange(k)
        heap = [(d, i) for i, d in enumerate(dist) if np.isfinite(d)]
        heapq.heapify(heap)
        done = np.zeros(k, bool)
        while heap:
            d, i = heapq.heappop(heap)
            if done[i]:
                continue
            done[i] = True
            for j in np.nonzero(np.isfinite(adj[i]))[0]:
                if d + adj[i, j] < dist[j]:
                    dist[j] = d + adj[i, j]
                    first[j] = first[i]
                    heapq.heappush(heap, (dist[j], j))
        m = len(targets)
        length = np.full(m, np.inf)
        way = np.repeat(agent[None], m, 0)
        ok = _segments_clear(pose, np.repeat(agent[None], m, 0), targets, clear - 0.5)
        length[ok] = np.linalg.norm(targets[ok] - agent, axis=-1)
        way[ok] = targets[ok]
        if k:
            vis = _segments_clear(
                pose, np.repeat(nodes, m, 0), np.tile(targets, (k, 1)), clear - 0.5
            ).reshape(k, m)
            via = dist[:, None] + np.linalg.norm(nodes[:, None] - targets[None], axis=-1)
            via = np.where(vis, via, np.inf)
            j = via.argmin(0)
            better = via[j, np.arange(m)] < length
            length[better] = via[j, np.arange(m)][better]
            way[better] = nodes[first[j[better]]]
        return length, way

    def _steps(self, push: np.ndarray, travel: np.ndarray, in_contact: np.ndarray) -> np.ndarray:
        """Estimated control steps a push costs: scoring improvement per step, not per pixel, stops the
        planner from nudging a contact 1 px per step when a better contact is a few steps away."""
        cfg = self.config
        return 1.0 + push / cfg.push_speed + travel / cfg.travel_rate + cfg.overhead * ~in_contact

    # --- acting --------------------------------------------------------------------------------------
    def act(self, agent: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """One absolute target for the agent, given its position and the block pose (x, y, theta)."""
        cfg = self.config
        agent = np.asarray(agent, dtype=float)
        pose = np.asarray(pose, dtype=float)
        self.pushing = None
        s, gain, contact, outward = self._evaluate(pose)
        spot = contact + outward * G.AGENT_RADIUS  # agent centre when touching the contact
        pre = spot + outward * (cfg.clearance + 2.0)
        rel = agent - spot
        along = (rel * outward).sum(-1)
        lateral = np.abs(rel[:, 0] * outward[:, 1] - rel[:, 1] * outward[:, 0])
        # On the push line, behind the contact: pushing from here needs no travel.
        in_contact = (lateral < 2.5) & (along > -2.0) & (along < cfg.clearance + 4.0)
        # Upper bound of each score with straight-line travel; exact travel only for the promising ones.
        approx = np.where(in_contact, 0.0, np.linalg.norm(pre - agent, axis=-1))
        bound = np.where(gain > 0, gain / self._steps(s, approx, in_contact), -np.inf)
        top = np.argsort(-bound)[:12]
        top = top[np.isfinite(bound[top])]
        if self.current is not None and self.current not in top and np.isfinite(bound[self.current]):
            top = np.append(top, self.current)
        if len(top) == 0:
            self.current = None
            return agent.copy()
        far = top[~in_contact[top]]
        travel = np.zeros(len(top))
        way = np.repeat(agent[None], len(top), 0)
        if len(far):
            length, first = self._travel(pose, agent, pre[far])
            pos = np.nonzero(~in_contact[top])[0]
            travel[pos], way[pos] = length, first
        score = gain[top] / self._steps(s[top], travel, in_contact[top])
        best = int(np.argmax(score))
        if self.current is not None and self.current in top:
            cur = int(np.nonzero(top == self.current)[0][0])
            if np.isfinite(score[cur]) and score[cur] > 0 and score[best] < cfg.switch_ratio * score[cur]:
                best = cur
        if not np.isfinite(score[best]) or score[best] <= 0:
            self.current = None
            return agent.copy()
        self.current = int(top[best])
        c = self.current
        if in_contact[c]:
            step = min(s[c], cfg.push_speed)
            self.pushing = (contact[c], outward[c])
            return spot[c] - outward[c] * step
        return self._lead(agent, pose, way[best], cfg.travel_speed)

    def travel_toward(
        self, agent: np.ndarray, pose: np.ndarray, target: np.ndarray, speed: float | None = None
    ) -> np.ndarray:
        """Next agent target on the shortest way around the block to `target`, at most `speed` px ahead."""
        agent = np.asarray(agent, dtype=float)
        pose = np.asarray(pose, dtype=float)
        _, way = self._travel(pose, agent, np.asarray(target, dtype=float).reshape(1, 2))
        return self._lead(agent, pose, way[0], self.config.travel_speed if speed is None else speed)

    def _lead(self, agent: np.ndarray, pose: np.ndarray, way: np.ndarray, speed: float) -> np.ndarray:
        gap = float(G.distance_to_tee(pose, agent[None])[0]) - G.AGENT_RADIUS
        if gap < 0.5:  # touching (or spawned inside) the block: back off before travelling
            return agent + G.escape_direction(pose, agent) * (self.config.clearance + 2.0 - gap)
        delta = way - agent
        dist = np.linalg.norm(delta)
        return agent + delta / dist * speed if dist > speed else way.copy()
