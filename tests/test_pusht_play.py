"""`pusht/play`: seeded and deterministic, and it actually pushes the block (play data must be contact-rich)."""

from __future__ import annotations

import numpy as np
import pytest

from policies.pusht.family import MEMBERS
from policies.pusht.play import PlayConfig
from policies.registry import known_policies, make_policy
from wmeval.envs.pusht import make_pusht_env
from wmeval.rollout import rollout


@pytest.fixture(scope="module")
def env():
    env = make_pusht_env(4, obs_type="state")
    yield env
    env.close()


def _run(env, seed: int, steps: int):
    return rollout(
        env, make_policy("pusht/play", seed=seed), max_steps=steps, seeds=[5, 6, 7, 8], progress=False
    )


def test_play_is_seeded_and_deterministic(env) -> None:
    a, b, c = _run(env, 3, 30), _run(env, 3, 30), _run(env, 4, 30)
    np.testing.assert_array_equal(a.actions, b.actions)
    assert not np.allclose(a.actions, c.actions)
    assert "pusht/play" in known_policies()


def test_play_moves_the_block_in_most_episodes(env) -> None:
    r = _run(env, 0, 120)
    block = r.states[:, :, 2:5]
    moved = np.abs(block[:, -1] - block[:, 0]).max(-1) > 1.0
    assert moved.sum() >= 3, block[:, -1] - block[:, 0]


def test_routing_survives_a_block_pressed_out_of_the_arena() -> None:
    """Play pushes hard enough to press the block into a wall; with no way-point left in the arena the router
    goes straight instead of failing."""
    from policies.pusht.controller import PushTController

    agent, pose = np.array([100.0, 100.0]), np.array([700.0, 700.0, 0.3])
    target = PushTController().travel_toward(agent, pose, np.array([300.0, 300.0]), speed=20.0)
    np.testing.assert_allclose(np.linalg.norm(target - agent), 20.0)


def test_play_spans_the_speeds_of_the_family_it_will_judge() -> None:
    """A world model only learns the block's reaction to pushes as fast as its play data's; the family's faster
    pushes and approaches would otherwise be imagined as slower ones that miss contacts."""
    play = PlayConfig()
    controllers = [m.knobs.controller for m in MEMBERS.values() if m.kind == "controller"]
    assert max(c.push_speed for c in controllers) <= min(play.push_speed[1], play.goal_push_speed[1])
    assert max(c.travel_speed for c in controllers) <= play.travel_speed[1]
