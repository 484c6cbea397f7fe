"""Judges: sim flag, state probe with a toy rule, trajectory probe on a toy separable dataset."""

from __future__ import annotations

import numpy as np
import pytest

from wmeval.judges import (
    Episode,
    Judge,
    JudgeError,
    SimFlagJudge,
    StateProbeJudge,
    StepJudge,
    TrajectoryProbe,
    grid_pool,
    pool_time,
)
from wmeval.judges.trajectory_probe import pool_prefixes


def _frames(t: int = 4, brightness: int = 0) -> np.ndarray:
    return np.full((t, 8, 8, 3), brightness, dtype=np.uint8)


# ---------------------------------------------------------------------------------- sim flag


def test_sim_flag_outcomes():
    eps = [
        Episode(_frames(), success=np.array([0, 0, 1, 0]), coverage=np.array([0.1, 0.5, 0.96, 0.9])),
        Episode(_frames(), success=np.zeros(4), coverage=np.array([0.1, 0.85, 0.8, 0.2])),
        Episode(_frames(), success=np.zeros(4), coverage=np.array([0.0, 0.1, 0.79, 0.2])),
    ]
    assert SimFlagJudge("strict").score(eps).tolist() == [1.0, 0.0, 0.0]
    assert SimFlagJudge("graded").score(eps).tolist() == [1.0, 1.0, 0.0]
    assert SimFlagJudge("coverage").score(eps) == pytest.approx([0.96, 0.85, 0.79])
    assert SimFlagJudge().step_scores(eps[0]) == pytest.approx([0.1, 0.5, 0.96, 0.9])


def test_sim_flag_reads_mappings_and_falls_back_to_coverage():
    # no recorded flag: strict uses gym-pusht's rule, coverage > 0.95 (0.95 itself is not success)
    eps = [{"frames": _frames(), "coverage": [0.2, 0.951]}, {"frames": _frames(), "coverage": [0.95]}]
    assert SimFlagJudge("strict").score(eps).tolist() == [1.0, 0.0]
    with pytest.raises(JudgeError, match="no recorded coverage"):
        SimFlagJudge("graded").score([{"frames": _frames(), "success": [1]}])


def test_judges_satisfy_protocol():
    assert isinstance(SimFlagJudge(), StepJudge)
    assert isinstance(TrajectoryProbe(), Judge)
    assert isinstance(StateProbeJudge(lambda f: f, lambda s: s), StepJudge)


# ---------------------------------------------------------------------------------- state probe


def _toy_estimator(frames: np.ndarray) -> np.ndarray:
    """Reads 'block x' from the frame's mean brightness; other state dims are zero."""
    states = np.zeros((frames.shape[0], 5))
    states[:, 2] = frames.reshape(frames.shape[0], -1).mean(axis=1) / 255.0
    return states


def _toy_rule(states: np.ndarray) -> np.ndarray:
    """Coverage = block x."""
    return states[:, 2]


def _episode_with_coverage(cov: list[float], states: np.ndarray | None = None) -> Episode:
    frames = np.stack([np.full((8, 8, 3), round(c * 255), dtype=np.uint8) for c in cov])
    return Episode(frames, states=states)


def test_state_probe_strict_and_graded_on_toy_rule():
    eps = [
        _episode_with_coverage([0.1, 0.5, 0.98, 0.6]),  # strict and graded
        _episode_with_coverage([0.2, 0.85, 0.3]),  # graded only
        _episode_with_coverage([0.1, 0.2, 0.7]),  # neither
    ]
    judge = StateProbeJudge(_toy_estimator, _toy_rule)
    assert judge.score(eps).tolist() == [1.0, 0.0, 0.0]
    assert StateProbeJudge(_toy_estimator, _toy_rule, outcome="graded").score(eps).tolist() == [1.0, 1.0, 0.0]
    report = judge.evaluate(eps)
    assert report["strict"] == [1.0, 0.0, 0.0]
    assert report["graded"] == [1.0, 1.0, 0.0]
    assert report["strict_rate"] == pytest.approx(1 / 3)
    assert report["graded_rate"] == pytest.approx(2 / 3)
    assert report["mean_max_coverage"] == pytest.approx((0.98 + 0.85 + 0.7) / 3, abs=0.01)
    assert report["state_mae"] is None
    assert judge.step_scores(eps[1]) == pytest.approx([0.2, 0.85, 0.3], abs=0.01)


def test_state_probe_reports_estimator_error_with_wrapped_angle():
    true = np.zeros((2, 5))
    true[:, 2] = [0.2, 0.4]
    true[:, 4] = [np.pi - 0.05, 0.0]
    ep = _episode_with_coverage([0.2, 0.4], states=true)
    # the estimator always says theta = -pi + 0.05: 0.1 rad from pi - 0.05 (across the wrap), pi - 0.05 from 0
    judge = StateProbeJudge(lambda f: _toy_estimator(f) + np.array([0, 0, 0, 0, -np.pi + 0.05]), _toy_rule)
    mae = judge.evaluate([ep])["state_mae"]
    assert mae["block_x"] == pytest.approx(0.0, abs=0.01)
    assert mae["agent_x"] == 0.0
    assert mae["block_theta"] == pytest.approx((0.1 + (np.pi - 0.05)) / 2)


def test_state_probe_rejects_bad_callables():
    ep = _episode_with_coverage([0.1, 0.2])
    with pytest.raises(JudgeError, match="expected \\(2, 5\\)"):
        StateProbeJudge(lambda f: np.zeros((2, 3)), _toy_rule).score([ep])
    with pytest.raises(JudgeError, match="one coverage per step"):
        StateProbeJudge(_toy_estimator, lambda s: s[:1, 2]).score([ep])
    with pytest.raises(JudgeError, match=r"\[0, 1\]"):
        StateProbeJudge(_toy_estimator, lambda s: s[:, 2] + 2).score([ep])
    with pytest.raises(JudgeError, match="uint8"):
        StateProbeJudge(_toy_estimator, _toy_rule).score([Episode(np.zeros((2, 8, 8, 3)))])
    with pytest.raises(JudgeError, match="outcome"):
        StateProbeJudge(_toy_estimator, _toy_rule, outcome="lenient")


# ---------------------------------------------------------------------------------- trajectory probe


def _toy_features(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Episodes of varying length; successful ones drift upward in feature 0 towards the end."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    feats = []
    for y in labels:
        t = int(rng.integers(5, 12))
        f = rng.normal(size=(t, 6))
        f[:, 0] += np.linspace(0, 3.0 if y else -1.0, t)
        feats.append(f)
    return feats, labels


def test_pooling_helpers():
    f = np.array([[1.0, 5.0], [3.0, 2.0], [2.0, 0.0]])
    assert pool_time(f).tolist() == [2.0, 7 / 3, 2.0, 0.0, 3.0, 5.0]
    prefixes = pool_prefixes(f)
    assert prefixes.shape == (3, 6)
    for t in range(3):
        assert prefixes[t] == pytest.approx(pool_time(f[: t + 1]))
    lat = np.arange(2 * 8 * 8 * 3, dtype=float).reshape(2, 8, 8, 3)
    pooled = grid_pool(lat, grid=4)
    assert pooled.shape == (2, 4 * 4 * 3)
    assert pooled[0, :3] == pytest.approx(lat[0, :2, :2].mean(axis=(0, 1)))


def test_trajectory_probe_separates_toy_data_and_round_trips(tmp_path):
    x_train, y_train = _toy_features(80, seed=0)
    x_test, y_test = _toy_features(40, seed=1)
    probe = TrajectoryProbe(featurizer_name="toy").fit(x_train, y_train)
    metrics = probe.evaluate(x_test, y_test)
    assert metrics["balanced_accuracy"] > 0.9
    assert metrics["roc_auc"] > 0.9
    assert metrics["n_episodes"] == 40 and metrics["n_positive"] == 20

    path = probe.save(tmp_path / "probe.safetensors")
    assert path.read_bytes()[:8] != b"\x80\x04\x95"  # not a pickle
    loaded = TrajectoryProbe.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(x_test), probe.predict_proba(x_test))
    assert loaded.featurizer_name == "toy"


def test_trajectory_probe_as_judge():
    # featurizer: mean brightness per frame and a constant; success = bright at the end
    def featurize(frames: np.ndarray) -> np.ndarray:
        b = frames.reshape(frames.shape[0], -1).mean(axis=1, keepdims=True) / 255.0
        return np.concatenate([b, np.ones_like(b)], axis=1)

    ramps = [np.linspace(0, 1, 6), np.linspace(0, 0.1, 6)] * 10
    eps = [Episode(np.stack([np.full((4, 4, 3), round(v * 255), np.uint8) for v in r])) for r in ramps]
    labels = np.array([1, 0] * 10)
    probe = TrajectoryProbe(featurize).fit([featurize(e.frames) for e in eps], labels)
    scores = probe.score(eps[:2])
    assert scores[0] > 0.5 > scores[1]
    assert TrajectoryProbe(featurize, hard=True).fit([featurize(e.frames) for e in eps], labels).score(
        eps[:2]
    ).tolist() == [1.0, 0.0]
    steps = probe.step_scores(eps[0])
    assert steps.shape == (6,) and steps[-1] == pytest.approx(scores[0])


def test_trajectory_probe_errors(tmp_path):
    x, y = _toy_features(10, seed=0)
    with pytest.raises(JudgeError, match="both successful and failed"):
        TrajectoryProbe().fit(x, np.ones(10))
    with pytest.raises(JudgeError, match="not trained"):
        TrajectoryProbe().predict_proba(x)
    probe = TrajectoryProbe().fit(x, y)
    with pytest.raises(JudgeError, match="features per frame"):
        probe.predict_proba([np.zeros((3, 4))])
    with pytest.raises(JudgeError, match="no featurizer"):
        probe.score([Episode(_frames())])
    with pytest.raises(JudgeError, match="does not exist"):
        TrajectoryProbe.load(tmp_path / "missing.safetensors")


# ---------------------------------------------------------------------------------- readability


def test_readability_is_calibrated_on_real_frames_and_counts_only_generated_frames():
    from wmeval.judges.readability import judge_readability, real_spreads
    from wmeval.rollout import Rollouts

    def rollouts(spreads: list[list[int]], lengths: list[int]) -> Rollouts:
        # each frame's pixel value is the spread the fake reader reports for it
        s = np.asarray(spreads, dtype=np.uint8)
        n, t = s.shape
        return Rollouts(
            actions=np.zeros((n, t - 1, 2)),
            coverage=np.zeros((n, t)),
            step_success=np.zeros((n, t - 1), bool),
            success=np.zeros(n, bool),
            lengths=np.asarray(lengths),
            seeds=np.arange(n),
            frames=np.broadcast_to(s[:, :, None, None, None], (n, t, 2, 2, 3)).copy(),
        )

    def spread(frames: np.ndarray) -> np.ndarray:
        return frames[:, 0, 0, 0].astype(float)

    real = {"a": rollouts([[10, 99, 12, 99, 11]] * 2, [4, 4])}  # odd steps are held frames: never read
    imagined = {
        "good": {"a": rollouts([[10, 0, 11, 0, 12], [12, 0, 12, 0, 12]], [4, 4])},
        # episode 2 ended after step 1: its later frames (all unreadable) are padding and do not count
        "bad": {"a": rollouts([[10, 0, 50, 0, 60], [12, 0, 90, 0, 90]], [4, 1])},
    }
    out = judge_readability(real_spreads(real, spread, every=2), imagined, spread, every=2, quantile=1.0)
    assert out["threshold"] == 12 and out["real"] == 1.0
    assert out["worlds"] == {"good": 1.0, "bad": pytest.approx(2 / 4)}
    assert out["policies"]["bad"] == {"a": pytest.approx(2 / 4)}


def test_the_gated_imagined_judge_keeps_the_last_readable_coverage():
    """An unreadable frame (a dissolved block) must not move the judged coverage, nor end the episode."""
    import torch

    from wmeval.envs import make_env
    from wmeval.envs.world_model_env import WorldModelEnv
    from wmeval.errors import WmevalError
    from worldmodel.baselines import CopyLastFrameWorldModel

    class ScriptedWorldModel(CopyLastFrameWorldModel):
        """Each generated frame is one grey level: the fake readers below read coverage and spread off it."""

        def step(self, actions: torch.Tensor, num_steps: int | None = None) -> torch.Tensor:
            return torch.full((len(actions), 3, *self.image_size), next(self.levels))

    def read_level(frames: np.ndarray) -> np.ndarray:
        return frames[:, 0, 0, 0] / 255.0

    def env(max_spread: float | None) -> WorldModelEnv:
        world_model = ScriptedWorldModel((16, 16), raw_action_dim=2)
        world_model.levels = iter([0.2, 0.99, 0.3, 0.99])
        return WorldModelEnv(
            world_model,
            make_env("pusht", num_envs=1, max_episode_steps=10),
            lambda px: np.repeat(read_level(px)[:, None], 5, axis=1),  # "states" whose coverage is the level
            lambda states: states[:, 0],
            spread_reader=lambda px: 100 * read_level(px),  # brighter = less readable
            max_spread=max_spread,
        )

    gated, ungated = env(max_spread=50.0), env(max_spread=None)
    gated.reset(seed=0)
    ungated.reset(seed=0)
    action = np.zeros((1, 2), np.float32)
    seen = {"gated": [], "ungated": []}
    for _ in range(4):
        for name, e in (("gated", gated), ("ungated", ungated)):
            _, reward, terminated, _, info = e.step(action)
            seen[name].append((round(float(reward[0]), 2), bool(terminated[0]), bool(info["readable"][0])))
    assert seen["ungated"] == [(0.2, False, True), (0.99, True, True), (0.3, False, True), (0.99, True, True)]
    assert seen["gated"] == [(0.2, False, True), (0.2, False, False), (0.3, False, True), (0.3, False, False)]
    with pytest.raises(WmevalError, match="spread_reader"):
        WorldModelEnv(
            ScriptedWorldModel((16, 16), raw_action_dim=2),
            make_env("pusht", num_envs=1, max_episode_steps=10),
            read_level,
            read_level,
            max_spread=1.0,
        )
