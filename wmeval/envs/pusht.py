"""The PushT task: a gymnasium vector env with LeRobot observation keys, its success rule and its `TASK`.

The wrapper gives every observation what LeRobot's PushT datasets hold (`STATE_OBSERVATIONS`): `agent_pos`,
`environment_state` = the tee's 16 keypoint coordinates (gym-pusht's `obs_type="environment_state_agent_pos"`)
and `pose` = [agent x, agent y, block x, block y, block theta], which `wmeval.rollout.to_policy_observation`
maps to `observation.pose`, where privileged policies read it. Every info carries the same 5-d `state` plus
`coverage`, so the rollout loop never reaches into the simulator; an imagined env fills the same keys from
the state its judge estimates (`TASK.state_keys`).
Coverage and success reuse gym_pusht's own geometry (`add_tee`, `get_goal_pose_body`, `pymunk_to_shapely`) so
that the frame judge applying "the task's success rule to an estimated state" uses exactly the simulator's
rule. `TASK` declares it all to `wmeval.envs.registry`.

Recorded datasets follow LeRobot's PushT layout (`lerobot/pusht_keypoints`, gym-pusht's
`obs_type="environment_state_agent_pos"`): `observation.environment_state` holds the tee's 16 keypoint
coordinates (`block_keypoints`), `observation.state` the agent position, and wmeval keeps the 5-d state the
judge, the state estimator and encoder supervision read under `observation.pose`. Recordings made before that
change hold the 5-d state in `observation.environment_state`; `RECORDING.upgrades` reads them as if they had
the current layout.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any

import gymnasium as gym
import numpy as np

from policies.pusht.state_estimator import (
    ASSET_DIR,
    PushTStateEstimator,
    estimator_errors,
    load_default_estimator,
    train_state_estimator,
)
from policies.registry import family_members, heldout_members
from wmeval.envs.registry import Recording, Task, Upgrades
from wmeval.judges.frame import FrameJudge, batched_reader
from wmeval.judges.outcomes import STRICT_COVERAGE, is_success

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame renders off-screen; no display needed

ENV_ID = "gym_pusht/PushT-v0"
FPS = 10
MAX_EPISODE_STEPS = 300
IMAGE_SIZE = 96
GOAL_POSE = np.array([256.0, 256.0, np.pi / 4])
STATE_NAMES = ["agent_x", "agent_y", "block_x", "block_y", "block_theta"]
#: gym-pusht's keypoint order: the bar's 4 corners, then the stem's 4 (`PushTEnv.get_keypoints`), x then y.
KEYPOINT_NAMES = [f"keypoint_{i}_{axis}" for i in range(8) for axis in "xy"]
POSE_KEY = "observation.pose"
KEYPOINTS_KEY = "observation.environment_state"
REAL_JUDGE = "simulator (gym-pusht coverage / is_success)"
IMAGINED_JUDGE = "state probe (CNN state estimator on generated frames + gym-pusht coverage rule)"
#: The task in words, as the `lerobot/pusht` dataset states it (gym-pusht itself declares none).
TASK_DESCRIPTION = "Push the T-shaped block onto the T-shaped target."


def _import_gym_pusht() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pygame's pkg_resources deprecation warning
        import gym_pusht  # noqa: F401  (registers the env id)
        from gym_pusht.envs import pusht

    return pusht


def state_vector(info: dict[str, Any]) -> np.ndarray:
    """[agent x, agent y, block x, block y, block theta] from a (single or vector) env info dict."""
    return np.concatenate([np.asarray(info["pos_agent"]), np.asarray(info["block_pose"])], -1).astype(
        np.float64
    )


class PushTStateWrapper(gym.Wrapper):
    """Adds the simulator state to observations and infos, and coverage to the reset info.

    `task` / `task_description` are the attributes LeRobot's `add_envs_task` reads to give policies the task.
    """

    task = TASK_DESCRIPTION
    task_description = TASK_DESCRIPTION

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        # obs_type="state" (no rendering, for fast measuring) becomes a dict too, so policies see the same keys.
        self._state_only = not isinstance(env.observation_space, gym.spaces.Dict)
        spaces = {} if self._state_only else dict(env.observation_space.spaces)
        self.observation_space = gym.spaces.Dict({**spaces, **STATE_SPACES})

    def _augment(self, obs: dict, info: dict) -> tuple[dict, dict]:
        state = state_vector(info)
        info["state"] = state
        if "coverage" not in info:
            info["coverage"] = float(pusht_coverage(info["block_pose"]))
        info["is_success"] = bool(info.get("is_success", False))
        obs = {} if self._state_only else dict(obs)
        for key, value in STATE_OBSERVATIONS.items():
            obs.setdefault(key, np.array(value(state)))  # gym-pusht's own `agent_pos` is the same position
        return obs, info

    def reset(self, **kwargs: Any) -> tuple[dict, dict]:
        obs, info = self.env.reset(**kwargs)
        return self._augment(obs, info)

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        obs, info = self._augment(obs, info)
        return obs, reward, terminated, truncated, info


def make_pusht_env(
    num_envs: int = 1,
    *,
    max_episode_steps: int = MAX_EPISODE_STEPS,
    obs_type: str = "pixels_agent_pos",
    asynchronous: bool = False,
) -> gym.vector.VectorEnv:
    """A vector of `num_envs` PushT envs; seed each episode with `env.reset(seed=[...])`.

    Sync by default: PushT steps in ~1 ms plus ~3 ms to render, so process start-up and pickling overheads
    outweigh parallelism for small batches on few cores. `asynchronous=True` uses `AsyncVectorEnv`.
    """
    if num_envs <= 0:
        raise ValueError(f"num_envs must be positive, got {num_envs}")
    _import_gym_pusht()

    def factory() -> gym.Env:
        _import_gym_pusht()
        env = gym.make(
            ENV_ID, obs_type=obs_type, render_mode="rgb_array", max_episode_steps=max_episode_steps
        )
        return PushTStateWrapper(env)

    fns = [factory] * num_envs
    if asynchronous:
        return gym.vector.AsyncVectorEnv(fns, context="spawn")
    return gym.vector.SyncVectorEnv(fns)


@lru_cache(maxsize=1)
def _tee_shapes() -> list:
    """The tee's pymunk shapes, built by gym_pusht itself (coverage is computed on these)."""
    import pymunk

    pusht = _import_gym_pusht()
    _, shapes = pusht.PushTEnv.add_tee(pymunk.Space(), (256, 300), 0)
    return shapes


@lru_cache(maxsize=1)
def _goal_geometry() -> Any:
    pusht = _import_gym_pusht()
    return pusht.pymunk_to_shapely(pusht.PushTEnv.get_goal_pose_body(GOAL_POSE), _tee_shapes())


@lru_cache(maxsize=1)
def _tee_vertices() -> np.ndarray:
    """[8, 2] corners of the tee in its body frame, in the order gym_pusht's shapes list them."""
    return np.array([[v.x, v.y] for shape in _tee_shapes() for v in shape.get_vertices()], dtype=np.float64)


def block_keypoints(block_pose: np.ndarray) -> np.ndarray:
    """Block pose [..., 3] (x, y, theta) -> [..., 16]: gym_pusht's `get_keypoints(block_shapes).flatten()`, the
    tee's 8 corners rotated by theta and moved to (x, y), as LeRobot's PushT datasets store them."""
    pose = np.asarray(block_pose, dtype=np.float64)
    cos, sin = np.cos(pose[..., 2:3]), np.sin(pose[..., 2:3])
    vx, vy = _tee_vertices()[:, 0], _tee_vertices()[:, 1]
    x = vx * cos - vy * sin + pose[..., 0:1]
    y = vx * sin + vy * cos + pose[..., 1:2]
    return np.stack([x, y], axis=-1).reshape(*pose.shape[:-1], 16)


#: gym observation key -> its value from states [..., 5]: the live env, the imagined env (from the judge's
#: estimated state) and recordings (`recorded_columns`) all derive their state observations from here.
STATE_OBSERVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "agent_pos": lambda states: states[..., :2],
    "environment_state": lambda states: block_keypoints(states[..., 2:5]),
    "pose": lambda states: states,
}
#: Their spaces, as gym-pusht declares `agent_pos` and the keypoints (the pose's angle is not wrapped).
STATE_SPACES = {
    "agent_pos": gym.spaces.Box(0.0, 512.0, shape=(2,), dtype=np.float64),
    "environment_state": gym.spaces.Box(0.0, 512.0, shape=(16,), dtype=np.float64),
    "pose": gym.spaces.Box(-np.inf, np.inf, shape=(len(STATE_NAMES),), dtype=np.float64),
}
#: The recorded column of each (LeRobot's keys; `pose` is wmeval's own).
RECORDED_KEYS = {"agent_pos": "observation.state", "environment_state": KEYPOINTS_KEY, "pose": POSE_KEY}


def recorded_columns(states: np.ndarray) -> dict[str, np.ndarray]:
    """Env states [T, 5] -> the task's observation columns of a recorded row (see `RECORDING`)."""
    states = np.asarray(states, dtype=np.float64)
    return {RECORDED_KEYS[key]: value(states).astype(np.float32) for key, value in STATE_OBSERVATIONS.items()}


def recording_upgrades(features: Any) -> Upgrades:
    """An older recording (5-d state in `observation.environment_state`, no `observation.pose`) reads with the
    current columns: the pose from that column, the keypoints computed from it."""
    env_state = features.get(KEYPOINTS_KEY)
    if POSE_KEY in features or env_state is None or list(env_state["shape"]) != [len(STATE_NAMES)]:
        return {}
    return {
        POSE_KEY: (KEYPOINTS_KEY, lambda s: s),
        KEYPOINTS_KEY: (KEYPOINTS_KEY, lambda s: block_keypoints(s[..., 2:5]).astype(np.float32)),
    }


RECORDING = Recording(
    features={
        "observation.state": {"dtype": "float32", "shape": (2,), "names": ["agent_x", "agent_y"]},
        KEYPOINTS_KEY: {"dtype": "float32", "shape": (16,), "names": KEYPOINT_NAMES},
        POSE_KEY: {"dtype": "float32", "shape": (5,), "names": STATE_NAMES},
        "action": {"dtype": "float32", "shape": (2,), "names": ["target_x", "target_y"]},
    },
    columns=recorded_columns,
    upgrades=recording_upgrades,
)


def pusht_coverage(block_pose: np.ndarray) -> np.ndarray | float:
    """Fraction of the goal area the block covers, exactly as gym_pusht computes it; batched over [..., 3]."""
    pusht = _import_gym_pusht()
    poses = np.asarray(block_pose, dtype=np.float64)
    flat = poses.reshape(-1, 3)
    goal = _goal_geometry()
    out = np.empty(len(flat))
    for i, pose in enumerate(flat):
        geom = pusht.pymunk_to_shapely(pusht.PushTEnv.get_goal_pose_body(pose), _tee_shapes())
        out[i] = goal.intersection(geom).area / goal.area
    return float(out[0]) if poses.ndim == 1 else out.reshape(poses.shape[:-1])


def pusht_success(block_pose: np.ndarray) -> np.ndarray | bool:
    """The task's success rule (`is_success` of its coverage) applied to a block pose, e.g. one estimated from
    a frame."""
    cov = pusht_coverage(block_pose)
    return bool(is_success(cov)) if np.ndim(cov) == 0 else is_success(cov)


def pusht_reward(coverage: np.ndarray) -> np.ndarray:
    """gym_pusht's reward for a coverage, `clip(coverage / 0.95, 0, 1)`; batched."""
    return np.clip(np.asarray(coverage, dtype=np.float64) / STRICT_COVERAGE, 0.0, 1.0)


def state_success(state: np.ndarray) -> np.ndarray | bool:
    """Success rule on a full state vector [..., 5] (agent x, y, block x, y, theta)."""
    return pusht_success(np.asarray(state)[..., 2:5])


def load_estimator(directory: str | None = None) -> Any:
    """The PushT state estimator in `directory`, or the shipped one (loaded once per process)."""
    return PushTStateEstimator.from_pretrained(directory) if directory else load_default_estimator()


def frame_judge(estimator: Any) -> FrameJudge:
    """Imagined PushT frames -> estimated state -> gym-pusht's coverage of the goal; the estimator's keypoint
    spread says how sharply it reads each frame."""
    return FrameJudge(
        state_reader=batched_reader(estimator.predict_state),
        coverage_rule=lambda states: np.asarray(pusht_coverage(states[:, 2:5])),
        description=IMAGINED_JUDGE,
        spread_reader=batched_reader(lambda x: estimator.keypoint_spread(x).amax(-1)),
    )


def train_estimator(
    frames: int, val_frames: int, *, epochs: int, batch_size: int, lr: float, seed: int
) -> tuple[Any, dict[str, Any]]:
    """A state estimator trained on `frames` simulator-rendered random states, and its errors on `val_frames`
    others."""
    from wmeval.envs.pusht_frames import random_state_frames  # it renders with this module's env

    train = random_state_frames(frames, seed=seed, progress=True)
    val = random_state_frames(val_frames, seed=seed + 1_000_003)
    model = train_state_estimator(*train, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    return model, estimator_errors(model, *val)


TASK = Task(
    name="pusht",
    make_env=make_pusht_env,
    real_judge=REAL_JUDGE,
    fps=FPS,
    state_keys=STATE_OBSERVATIONS,
    policy_sets={"family": partial(family_members, "pusht"), "heldout": partial(heldout_members, "pusht")},
    load_estimator=load_estimator,
    shipped_estimator=str(ASSET_DIR),
    frame_judge=frame_judge,
    train_estimator=train_estimator,
    reward=pusht_reward,
    recording=RECORDING,
)
