"""THE rollout loop: one batched loop for real and imagined vector envs, so their numbers are comparable.

LeRobot-eval style (reset the policy, reset the envs with per-episode seeds, step until every episode is done),
plus what ranking needs: per-step frames, states and coverage, each episode stopped at its first
success/termination/time limit and masked after it (gymnasium 1.x vector envs auto-reset an env on the step
after it finishes, so anything recorded later belongs to another episode and is discarded), and `obs_every=k`,
under which the policy sees a fresh observation only every k steps, as it would inside a world model that
produces one frame per k sim steps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

from wmeval.errors import WmevalError
from wmeval.judges.outcomes import episode_outcomes
from worldmodel.threads import one_thread


@dataclass
class Rollouts:
    """Episodes padded to a common length; `lengths[i]` steps are real, later entries repeat the last one.

    frames [N, T+1, H, W, 3] uint8 (None when not kept), actions [N, T, A] float32 (zeros after the end),
    states [N, T+1, S] float64 (None when the env reports none), coverage [N, T+1] float64 (0 = at reset),
    step_success [N, T] bool, success [N] bool, lengths [N] int (steps taken), seeds [N] int.
    """

    actions: np.ndarray
    coverage: np.ndarray
    step_success: np.ndarray
    success: np.ndarray
    lengths: np.ndarray
    seeds: np.ndarray
    frames: np.ndarray | None = None
    states: np.ndarray | None = None
    policy_name: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_episodes(self) -> int:
        return len(self.lengths)

    def success_rate(self) -> float:
        return float(np.mean(self.success)) if self.num_episodes else float("nan")

    def max_coverage(self) -> np.ndarray:
        """Best coverage reached in each episode [N] (strict success is rare for weak policies)."""
        return self.coverage.max(axis=1)

    def mask(self) -> np.ndarray:
        """[N, T] True where a step really happened."""
        return np.arange(self.actions.shape[1])[None, :] < self.lengths[:, None]

    def episode(self, i: int) -> dict[str, Any]:
        """Episode i trimmed to its real length: frames/states/coverage have T_i + 1 entries, actions T_i."""
        n = int(self.lengths[i])
        return {
            "frames": None if self.frames is None else self.frames[i, : n + 1],
            "actions": self.actions[i, :n],
            "states": None if self.states is None else self.states[i, : n + 1],
            "coverage": self.coverage[i, : n + 1],
            "step_success": self.step_success[i, :n],
            "success": bool(self.success[i]),
            "seed": int(self.seeds[i]),
            "length": n,
        }

    def summary(self) -> dict[str, Any]:
        maxcov = self.max_coverage()
        graded = episode_outcomes(self, "graded")  # the key below names judges.outcomes.GRADED_COVERAGE
        return {
            "policy": self.policy_name,
            "episodes": self.num_episodes,
            "success_rate": self.success_rate(),
            "max_coverage_mean": float(maxcov.mean()) if self.num_episodes else float("nan"),
            "max_coverage_ge_0.8": float(graded.mean()) if self.num_episodes else float("nan"),
            "mean_length": float(self.lengths.mean()) if self.num_episodes else float("nan"),
        }

    @staticmethod
    def concatenate(parts: list[Rollouts]) -> Rollouts:
        """Join batches (same max_steps) episode-wise."""
        if not parts:
            raise ValueError("nothing to concatenate")

        def cat(name: str) -> np.ndarray | None:
            vals = [getattr(p, name) for p in parts]
            return None if any(v is None for v in vals) else np.concatenate(vals)

        return Rollouts(
            actions=cat("actions"),
            coverage=cat("coverage"),
            step_success=cat("step_success"),
            success=cat("success"),
            lengths=cat("lengths"),
            seeds=cat("seeds"),
            frames=cat("frames"),
            states=cat("states"),
            policy_name=parts[0].policy_name,
            meta=dict(parts[0].meta),
        )


#: The gym keys LeRobot's `preprocess_observation` maps itself.
LEROBOT_GYM_KEYS = ("pixels", "agent_pos", "environment_state", "robot_state", "policy", "camera_obs")


def to_policy_observation(observation: Any) -> dict[str, torch.Tensor]:
    """Gym keys -> LeRobot keys; LeRobot keys pass through.

    LeRobot maps `pixels`, `agent_pos` and `environment_state`; any other key `k` an env adds (PushT's `pose`)
    becomes `observation.k`, a float32 batch like `environment_state`, so policies can read it too.
    """
    if isinstance(observation, dict) and all(str(k).startswith("observation.") for k in observation):
        return {k: torch.as_tensor(v) for k, v in observation.items()}
    from lerobot.envs.utils import preprocess_observation

    mapped = preprocess_observation(observation)
    for key, value in observation.items():
        if key not in LEROBOT_GYM_KEYS:
            batch = torch.as_tensor(np.asarray(value), dtype=torch.float32)
            mapped[f"observation.{key}"] = batch[None] if batch.dim() == 1 else batch  # as LeRobot batches
    return mapped


def add_task(env: gym.vector.VectorEnv, observation: dict[str, Any]) -> dict[str, Any]:
    """`observation["task"]`: one task string per env, as LeRobot's eval adds it (`add_envs_task`).

    An imagined env's task is the one its real start env declares; sub-envs in other processes (async) are
    asked through `call`, which `add_envs_task` does not support.
    """
    source = getattr(env, "start_env", env)
    if hasattr(source, "envs"):
        from lerobot.envs.utils import add_envs_task

        return add_envs_task(source, observation)
    try:
        observation["task"] = [str(t) for t in source.call("task_description")]
    except AttributeError:
        observation["task"] = [""] * env.num_envs
    return observation


def _validate_action(action: Any, batch: int, dim: int, name: str) -> np.ndarray:
    if isinstance(action, torch.Tensor):
        action = action.detach().to("cpu", torch.float32).numpy()
    action = np.asarray(action, dtype=np.float32)
    if action.shape != (batch, dim):
        raise WmevalError(
            f"policy {name!r} returned an action of shape {tuple(action.shape)}; the env needs [{batch}, {dim}] "
            "(one action per batch element): fix the policy's select_action"
        )
    if not np.all(np.isfinite(action)):
        raise WmevalError(
            f"policy {name!r} returned NaN or infinite actions: fix the policy or its checkpoint"
        )
    return action


def _frames_of(observation: Any) -> np.ndarray | None:
    if isinstance(observation, dict):
        for key in ("pixels", "observation.image"):
            if key in observation:
                img = np.asarray(observation[key])
                if img.dtype != np.uint8:  # LeRobot layout [B, 3, H, W] in [0, 1]
                    img = (np.clip(np.moveaxis(img, 1, -1), 0, 1) * 255).round().astype(np.uint8)
                return img
    return None


def _rollout_batch(
    env: gym.vector.VectorEnv,
    policy: Any,
    seeds: list[int],
    max_steps: int,
    obs_every: int,
    keep_frames: bool,
    name: str,
    bar: tqdm | None,
) -> Rollouts:
    b = env.num_envs
    dim = int(np.prod(env.single_action_space.shape))
    low = np.broadcast_to(env.single_action_space.low, (dim,)).astype(np.float32)
    high = np.broadcast_to(env.single_action_space.high, (dim,)).astype(np.float32)
    policy.reset()
    obs, info = env.reset(seed=list(seeds))
    first = _frames_of(obs) if keep_frames else None
    frames = None if first is None else [first]
    states = [np.asarray(info["state"], dtype=np.float64)] if "state" in info else None
    coverage = [np.asarray(info.get("coverage", np.zeros(b)), dtype=np.float64)]
    actions, step_success = [], []
    done = np.zeros(b, dtype=bool)
    lengths = np.zeros(b, dtype=np.int64)
    held = None
    for t in range(max_steps):
        if t % obs_every == 0:
            held = add_task(env, to_policy_observation(obs))
        with torch.inference_mode(), one_thread():
            raw = policy.select_action(held)
        action = np.clip(_validate_action(raw, b, dim, name), low, high)
        obs, _, terminated, truncated, info = env.step(action)
        live = ~done
        lengths[live] += 1
        success = np.asarray(info.get("is_success", np.zeros(b)), dtype=bool)
        actions.append(np.where(live[:, None], action, 0.0))
        step_success.append(success & live)

        def hold(new: np.ndarray, prev: np.ndarray, live: np.ndarray = live) -> np.ndarray:
            mask = live.reshape((-1,) + (1,) * (new.ndim - 1))
            return np.where(mask, new, prev)

        if frames is not None:
            frames.append(hold(_frames_of(obs), frames[-1]))
        if states is not None:
            states.append(hold(np.asarray(info["state"], dtype=np.float64), states[-1]))
        coverage.append(hold(np.asarray(info.get("coverage", np.zeros(b)), dtype=np.float64), coverage[-1]))
        done |= np.asarray(terminated, bool) | np.asarray(truncated, bool) | success
        if bar is not None:
            bar.update(1)
        if done.all():
            break
    if bar is not None:
        bar.update(max_steps - len(actions))
    pad = max_steps - len(actions)
    acts = np.stack(actions, 1).astype(np.float32)
    succ = np.stack(step_success, 1)
    if pad:
        acts = np.concatenate([acts, np.zeros((b, pad, dim), np.float32)], 1)
        succ = np.concatenate([succ, np.zeros((b, pad), bool)], 1)

    def stack(seq: list[np.ndarray] | None) -> np.ndarray | None:
        if seq is None or seq[0] is None:
            return None
        arr = np.stack(seq, 1)
        return np.concatenate([arr, np.repeat(arr[:, -1:], pad, 1)], 1) if pad else arr

    return Rollouts(
        actions=acts,
        coverage=stack(coverage),
        step_success=succ,
        success=succ.any(1),
        lengths=lengths,
        seeds=np.asarray(seeds, dtype=np.int64),
        frames=stack(frames),
        states=stack(states),
        policy_name=name,
    )


def rollout(
    env: gym.vector.VectorEnv,
    policy: Any,
    *,
    max_steps: int,
    seeds: list[int] | np.ndarray,
    obs_every: int = 1,
    progress: bool = True,
    keep_frames: bool = True,
    policy_name: str | None = None,
) -> Rollouts:
    """Roll `policy` for one episode per seed, `env.num_envs` episodes at a time; returns padded `Rollouts`.

    The policy follows LeRobot's contract (`reset()`, batched `select_action(obs) -> [B, A]`, the env's task
    strings under `obs["task"]`); its actions are checked (shape, NaN) and clipped to the action space, and the
    executed actions are what is recorded. The policy acts on one intra-op thread: a parallel network (a
    LeRobot policy on the CPU) sums in a thread-count-dependent order, and the same seed must give the same
    actions whatever `threads=` says.
    """
    name = policy_name or getattr(policy, "name", None) or type(policy).__name__
    seeds = [int(s) for s in np.asarray(seeds).reshape(-1)]
    if not seeds:
        raise WmevalError("rollout needs at least one seed (one episode per seed)")
    if max_steps <= 0:
        raise WmevalError(f"max_steps={max_steps} must be positive")
    if obs_every <= 0:
        raise WmevalError(f"obs_every={obs_every} must be a positive number of steps")
    started = time.perf_counter()
    b = env.num_envs
    batches = [seeds[i : i + b] for i in range(0, len(seeds), b)]
    bar = tqdm(total=len(batches) * max_steps, desc=f"rollout {name}", unit="step", disable=not progress)
    parts = []
    try:
        for batch in batches:
            real = len(batch)
            padded = batch + [batch[-1] + 1_000_003 * (k + 1) for k in range(b - real)]
            part = _rollout_batch(env, policy, padded, max_steps, obs_every, keep_frames, name, bar)
            if real < b:
                part = _take(part, real)
            parts.append(part)
            bar.set_postfix(success=f"{np.mean(np.concatenate([p.success for p in parts])):.2f}")
    finally:
        bar.close()
    out = Rollouts.concatenate(parts)
    out.meta = {
        "max_steps": max_steps,
        "obs_every": obs_every,
        "num_envs": b,
        "eval_s": time.perf_counter() - started,  # wall time, as lerobot-eval reports it
    }
    return out


def _take(r: Rollouts, n: int) -> Rollouts:
    """The first n episodes of a batch (the rest were padding to fill the vector env)."""

    def cut(x: np.ndarray | None) -> np.ndarray | None:
        return None if x is None else x[:n]

    return Rollouts(
        actions=r.actions[:n],
        coverage=r.coverage[:n],
        step_success=r.step_success[:n],
        success=r.success[:n],
        lengths=r.lengths[:n],
        seeds=r.seeds[:n],
        frames=cut(r.frames),
        states=cut(r.states),
        policy_name=r.policy_name,
    )
