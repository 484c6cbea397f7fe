"""`wmeval/WorldModel-v0`: a world model registered with gymnasium, so LeRobot's tooling can build it by id.

    import wmeval.envs.registration  # or gym.make_vec("wmeval.envs.registration:wmeval/WorldModel-v0", ...)
    env = gym.make_vec("wmeval/WorldModel-v0", num_envs=8, world_model="path/to/model", env="pusht")

`gym.make_vec` gives one batched world model (one world-model call per frame for all episodes);
`gym.make` gives one episode as a plain `gym.Env`, which LeRobot's `make_env` vectorises itself. Either way the
env is the one `wmeval rank` ranks in: start states from the real env's seeded resets, success from the
task's judge on the generated frames (see `wmeval.envs.world_model_env`), plus the surface LeRobot's eval loop
reads (`wmeval.envs.lerobot_env`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from wmeval.errors import ConfigError

ENV_ID = "wmeval/WorldModel-v0"


def _imagined(world_model: Any, env: str, num_envs: int, device: str, **kwargs: Any) -> tuple[Any, int, Any]:
    """`env`'s imagined env around `world_model` (a model, a `wmeval train` model dir or a cached Hub id),
    the real env's frame rate and its reward formula."""
    from wmeval.envs.imagined import make_imagined_env
    from wmeval.envs.lerobot_env import env_reward
    from wmeval.ranking.inputs import load_world_model

    reward = env_reward(env)
    if isinstance(world_model, str):
        world_model = load_world_model(world_model, device=device)
    imagined = make_imagined_env(env, world_model, num_envs, **kwargs)
    return imagined, int(imagined.start_env.metadata.get("render_fps", 10)), reward


def make_world_model_vec_env(
    num_envs: int = 1, *, world_model: Any, env: str = "pusht", device: str = "cpu", **kwargs: Any
) -> gym.vector.VectorEnv:
    """`gym.make_vec`'s entry point: `num_envs` imagined episodes stepped together.

    kwargs go to `wmeval.envs.imagined.make_imagined_env` (`max_episode_steps`, `num_steps`, `seed`,
    `max_spread`)."""
    from wmeval.envs.lerobot_env import LeRobotVectorEnv

    return LeRobotVectorEnv(*_imagined(world_model, env, num_envs, device, **kwargs))


def make_world_model_env(
    *,
    world_model: Any,
    env: str = "pusht",
    device: str = "cpu",
    render_mode: str | None = "rgb_array",
    **kwargs: Any,
) -> gym.Env:
    """`gym.make`'s entry point: one imagined episode (pass a path, not a model, when making several: each
    episode steps its own copy of the world model). Frames render as `rgb_array`, the only mode."""
    from wmeval.envs.lerobot_env import WorldModelSingleEnv

    if render_mode not in (None, "rgb_array"):
        raise ConfigError(f"render_mode={render_mode!r}: a world model env renders rgb_array frames only")

    return WorldModelSingleEnv(*_imagined(world_model, env, 1, device, **kwargs))


def register_envs() -> None:
    """Register `ENV_ID` once (importing this module does it)."""
    if ENV_ID not in gym.registry:
        gym.register(
            ENV_ID,
            entry_point=f"{__name__}:make_world_model_env",
            vector_entry_point=f"{__name__}:make_world_model_vec_env",
            disable_env_checker=True,
        )


register_envs()
