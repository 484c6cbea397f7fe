"""The held-out PushT set: every policy builds in both variants, is deterministic for a seed and pushes the block."""

from __future__ import annotations

import numpy as np
import pytest

from policies.errors import PolicyError
from policies.registry import heldout_members, known_policies, make_policy
from wmeval.envs.pusht import make_pusht_env
from wmeval.rollout import rollout

NAMES = heldout_members("pusht")


@pytest.fixture(scope="module")
def env():
    env = make_pusht_env(3, obs_type="state")
    yield env
    env.close()


def test_the_set_is_listed_and_builds_in_both_variants() -> None:
    assert len(NAMES) >= 6 and all(n.startswith("pusht/heldout/") for n in NAMES)
    assert set(NAMES) <= set(known_policies())
    for name in NAMES:
        assert make_policy(name).variant == "state"
        assert make_policy(f"{name}@image").name == f"{name}@image"
    with pytest.raises(PolicyError, match="unknown PushT held-out policy 'pusht/heldout/nope'"):
        make_policy("pusht/heldout/nope")
    with pytest.raises(PolicyError, match="held-out"):
        heldout_members("cartpole")


@pytest.mark.parametrize("name", NAMES)
def test_each_is_deterministic_and_moves_the_block(env, name) -> None:
    runs = [
        rollout(env, make_policy(name, seed=2), max_steps=60, seeds=[11, 12, 13], obs_every=5, progress=False)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0].actions, runs[1].actions)
    block = runs[0].states[:, :, 2:5]
    assert (np.abs(block[:, -1] - block[:, 0]).max(-1) > 1.0).any(), name
