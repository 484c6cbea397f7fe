"""Rank policies in the real env and inside world models on paired start states; measure fidelity."""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch

from wmeval.envs.imagined import make_imagined_env
from wmeval.envs.registry import get_task
from wmeval.errors import ConfigError
from wmeval.judges.frame import FrameJudge
from wmeval.judges.outcomes import OUTCOMES, episode_outcomes
from wmeval.judges.readability import READABLE_QUANTILE, judge_readability, real_spreads
from wmeval.metrics.precision import sized_run
from wmeval.ranking.config import RankConfig
from wmeval.ranking.fidelity import FIDELITY_KEYS, fidelity_blocks, ranking_fidelity
from wmeval.ranking.inputs import resolve_policy_sets, resolve_world_models, warn_in_training_data
from wmeval.rollout import Rollouts, rollout
from wmeval.sharding import Sharding, map_units

log = logging.getLogger(__name__)
#: The copy-last-frame world model's name: a reference, never the headline.
BASELINE = "copy_last"


@dataclass
class RankResult:
    real: dict[str, Rollouts]
    imagined: dict[str, dict[str, Rollouts]]  # world model -> policy -> rollouts
    blocks: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=dict
    )  # wm -> outcome -> ranking block
    timings_s: dict[str, float] = field(default_factory=dict)
    fps: int = 10  # the real env's control rate, which saved rollouts keep
    readability: dict[str, Any] | None = None  # share of each world's frames the judge can read
    judge: str = ""  # how the imagined worlds were judged (says so when frames were skipped)
    real_judge: str = ""  # how the real world was judged
    sharding: dict[str, Any] = field(default_factory=dict)  # how the units were spread over processes


def _every_frame_read_fidelity(
    result: RankResult, judge: FrameJudge
) -> dict[str, dict[str, dict[str, float]]]:
    """What the ranking owes to skipping unreadable frames: fidelity of the same rollouts, every frame read."""
    blocks: dict[str, dict[str, dict[str, float]]] = {}
    for wm_name, by_policy in result.imagined.items():
        blocks[wm_name] = {}
        for outcome in OUTCOMES:
            real = {p: episode_outcomes(r, outcome) for p, r in result.real.items()}
            naive = {p: episode_outcomes(judge.read_every_frame(r), outcome) for p, r in by_policy.items()}
            block = ranking_fidelity(naive, real, n_boot=0)
            blocks[wm_name][outcome] = {k: block[k] for k in FIDELITY_KEYS}
    return blocks


@dataclass(frozen=True)
class _Unit:
    """One policy in one world (`world_model` None: the real env), every start state: seeds itself."""

    env: str
    policy_name: str
    policy: Any
    world_name: str
    world_model: Any
    seeds: tuple[int, ...]
    max_steps: int
    obs_every: int
    seed: int
    batch: int
    num_steps: int | None
    max_spread: float | None
    progress: bool


def _roll_unit(unit: _Unit) -> Rollouts:
    """Every unit starts from the policy as built (a copy: its noise stream restarts), so a policy meets the
    same noise in each world and a unit's numbers do not depend on which process rolled it or after what."""
    policy = copy.deepcopy(unit.policy)
    if unit.world_model is None:
        env = get_task(unit.env).make_env(unit.batch, max_episode_steps=unit.max_steps)
        label = unit.policy_name
    else:
        env = make_imagined_env(
            unit.env,
            unit.world_model,
            unit.batch,
            max_episode_steps=unit.max_steps,
            num_steps=unit.num_steps,
            seed=unit.seed,
            max_spread=unit.max_spread,
        )
        label = f"{unit.policy_name} in {unit.world_name}"
    torch.manual_seed(unit.seed)
    try:
        return rollout(
            env,
            policy,
            max_steps=unit.max_steps,
            seeds=list(unit.seeds),
            obs_every=unit.obs_every,
            progress=unit.progress,
            policy_name=label,
        )
    finally:
        env.close()


def rank_policies(
    policies: dict[str, Any],
    world_models: dict[str, Any],
    cfg: RankConfig,
    sharding: Sharding | None = None,
) -> RankResult:
    """Roll every policy in the real env and in every world model from the same seeded start states
    (`cfg.episodes` of them; `cfg.env`, `max_steps`, `seed`, `num_envs`, `num_steps`, `n_boot`, `progress`
    and `readable_only` are read; `policies`, `world_models` and `baseline` are the caller's: `rank` resolves them).

    The policy sees a fresh observation every `sim_steps_per_frame` steps in BOTH worlds (the cadence at
    which a world model produces frames), so imagined and real numbers come from the same protocol.
    The imagined judge reads every generated frame. Where the env has a spread reader, the share of frames it
    reads as sharply as real ones is reported beside (a diagnostic); `readable_only` instead skips the
    less readable frames (`FrameJudge.gated`), which the judge string and the report flag.
    `sharding` spreads the (policy, world) units over local processes or torchrun ranks (`wmeval.sharding`):
    each unit seeds itself, so the numbers do not depend on the split.
    """
    if cfg.episodes == "auto":
        raise ConfigError("episodes=auto sizes a run in `rank`; rank_policies needs a number of episodes")
    env, episodes, max_steps, seed = cfg.env, int(cfg.episodes), cfg.max_steps, cfg.seed
    num_envs, num_steps, n_boot, progress = cfg.num_envs, cfg.num_steps, cfg.n_boot, cfg.progress
    cadences = {int(wm.config.sim_steps_per_frame) for wm in world_models.values()}
    if len(cadences) != 1:
        raise ConfigError(
            f"world models disagree on sim_steps_per_frame {sorted(cadences)}: rank them separately"
        )
    obs_every = cadences.pop()
    sharding = sharding or Sharding()
    task = get_task(env)
    unit = partial(
        _Unit,
        env=env,
        seeds=tuple(seed * 100_000 + i for i in range(episodes)),
        max_steps=max_steps,
        obs_every=obs_every,
        seed=seed,
        batch=min(num_envs, episodes),
        num_steps=num_steps,
        progress=progress and sharding.world_size == 1 and sharding.workers == 1,
    )
    result = RankResult(real={}, imagined={name: {} for name in world_models}, real_judge=task.real_judge)
    result.fps = task.fps

    started = time.perf_counter()
    names = list(policies)
    real_units = [
        unit(policy_name=n, policy=policies[n], world_name="real", world_model=None, max_spread=None)
        for n in names
    ]
    real = map_units(_roll_unit, real_units, sharding, desc="real", progress=progress)
    result.real = dict(zip(names, real, strict=True))
    judge = task.judge()
    spread = judge.spread_reader
    real_spread = None if spread is None else real_spreads(result.real, spread, obs_every)
    if real_spread is not None and cfg.readable_only:
        judge = judge.gated(float(np.quantile(real_spread, READABLE_QUANTILE)))
    result.timings_s["real"] = time.perf_counter() - started

    started = time.perf_counter()
    worlds = [(w, n) for w in world_models for n in names]
    imagined_units = [
        unit(
            policy_name=n,
            policy=policies[n],
            world_name=w,
            world_model=world_models[w],
            max_spread=judge.max_spread,  # units rebuild the judge: a reader holding a network may not pickle
        )
        for w, n in worlds
    ]
    rolled = map_units(_roll_unit, imagined_units, sharding, desc="imagined", progress=progress)
    for (w, n), rollouts in zip(worlds, rolled, strict=True):
        result.imagined[w][n] = rollouts
    result.timings_s["imagined"] = time.perf_counter() - started
    result.sharding = sharding.describe(len(real_units) + len(imagined_units))

    gated = judge.max_spread is not None
    if real_spread is not None:
        result.readability = judge_readability(real_spread, result.imagined, spread, obs_every)
        result.readability["gated"] = gated
    result.judge = judge.describe()
    result.blocks = fidelity_blocks(result, list(policies), n_boot=n_boot, seed=seed)
    if gated:
        result.readability["every_frame_read"] = _every_frame_read_fidelity(result, judge)
    return result


@dataclass
class Ranking:
    """A finished ranking: the rollouts and blocks, what was ranked, and the config with the episodes used."""

    result: RankResult
    world_models: dict[str, Any]
    policy_sets: dict[str, list[str]]
    cfg: RankConfig


def rank(cfg: RankConfig, sharding: Sharding | None = None) -> Ranking | None:
    """Resolve `cfg.policies` and `cfg.world_models`, then `rank_policies` with `cfg.episodes` (or, with
    `episodes="auto"`, as many as `cfg.precision` needs: `wmeval.metrics.precision.sized_run`). Under torchrun
    every process rolls its share; only the main one gets the ranking, the others None."""
    from policies.registry import make_policy

    sharding = sharding or Sharding()
    sets = resolve_policy_sets(cfg.env, cfg.policies)
    policies = {name: make_policy(name, seed=cfg.seed) for group in sets.values() for name in group}
    world_models = resolve_world_models(cfg.world_models, cfg.baseline, sharding.device or cfg.device)
    if sharding.is_main:
        warn_in_training_data(policies, world_models)
    result, sampling = sized_run(
        lambda episodes: rank_policies(
            policies, world_models, dataclasses.replace(cfg, episodes=episodes), sharding
        ),
        lambda res: {n: b[cfg.outcome] for n, b in res.blocks.items() if n != BASELINE},
        episodes=cfg.episodes,
        target=cfg.precision,
        pilot=cfg.pilot_episodes,
        max_episodes=cfg.max_episodes,
        multiple_of=cfg.num_envs,
    )
    if not sharding.is_main:
        return None
    for line in sampling["warnings"]:
        log.warning(line)
    for name, blocks in result.blocks.items():
        if name != BASELINE:
            blocks[cfg.outcome]["sampling"] = sampling
    return Ranking(result, world_models, sets, dataclasses.replace(cfg, episodes=sampling["episodes"]))
