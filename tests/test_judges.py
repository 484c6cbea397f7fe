"""Judges: the outcome rules, the frame judge on toy readers, trajectory probe on a toy separable dataset."""

from __future__ import annotations

import numpy as np
import pytest

from wmeval.errors import ConfigError
from wmeval.judges.base import JudgeError
from wmeval.judges.frame import EVERY_FRAME, GATED, FrameJudge
from wmeval.judges.outcomes import GRADED_COVERAGE, STRICT_COVERAGE, check_outcome, is_graded, is_success
from wmeval.judges.trajectory_probe import TrajectoryProbe, grid_pool, pool_prefixes, pool_time


def _frames(t: int = 4, brightness: int = 0) -> np.ndarray:
    return np.full((t, 8, 8, 3), brightness, dtype=np.uint8)


# ---------------------------------------------------------------------------------- outcome rules


def test_outcome_thresholds_are_gym_pushts_strict_bar_and_an_inclusive_graded_one():
    assert is_success(np.array([STRICT_COVERAGE, 0.951])).tolist() == [False, True]  # strictly above
    assert is_graded(np.array([0.79, GRADED_COVERAGE])).tolist() == [False, True]  # at the bar counts
    assert check_outcome("graded") == "graded"
    with pytest.raises(
        ConfigError, match="outcome='lenient' is unknown: choose one of strict, graded, coverage"
    ):
        check_outcome("lenient")


# ---------------------------------------------------------------------------------- frame judge


def _level(frames: np.ndarray) -> np.ndarray:
    return frames[:, 0, 0, 0] / 255.0


def _toy_judge(**kwargs) -> FrameJudge:
    """'State' [level, 2 * level]; coverage is the level; the spread grows with brightness."""
    return FrameJudge(
        state_reader=lambda f: np.stack([_level(f), 2 * _level(f)], axis=1),
        coverage_rule=lambda s: s[:, 0],
        description="toy probe",
        spread_reader=lambda f: 100 * _level(f),
        **kwargs,
    )


def _levels(*levels: float) -> np.ndarray:
    return np.stack([np.full((8, 8, 3), round(v * 255), np.uint8) for v in levels])


def test_reconstruction_readability_calibrates_on_the_real_frames():
    from wmeval.judges.readability import reconstruction_readability

    real = _levels(*np.linspace(0.1, 0.5, 100))
    same = reconstruction_readability(_toy_judge(), real, real.copy())
    assert same["readable"] == same["readable_real"] == 0.99 and same["coverage_abs_diff"] == 0.0
    # reconstructions brighter by 0.2: read less sharply than nearly every real frame, coverage moved by 0.2
    brighter = _levels(*np.linspace(0.3, 0.7, 100))
    moved = reconstruction_readability(_toy_judge(), real, brighter)
    assert moved["readable"] == pytest.approx(0.49, abs=0.02) and moved["readable_real"] == 0.99
    assert moved["coverage_abs_diff"] == pytest.approx(0.2, abs=0.01)
    with pytest.raises(JudgeError, match="do not match"):
        reconstruction_readability(_toy_judge(), real, real[:5])


def test_the_frame_judge_reads_state_then_coverage_then_success():
    reading = _toy_judge().read(_levels(0.2, 0.98, 0.9))
    assert reading.states[:, 1] == pytest.approx([0.4, 1.96, 1.8], abs=0.01)
    assert reading.coverage == pytest.approx([0.2, 0.98, 0.9], abs=0.01)
    assert reading.readable.all()  # no gate: every frame is read, even with a spread reader
    assert _toy_judge().success(reading.coverage).tolist() == [False, True, False]
    assert _toy_judge().describe() == "toy probe" + EVERY_FRAME


def test_a_gated_frame_judge_keeps_each_episodes_last_coverage_on_unreadable_frames():
    judge = _toy_judge().gated(50.0)
    assert judge.describe() == "toy probe" + GATED
    reading = judge.read(_levels(0.3, 0.99), last_coverage=np.array([0.1, 0.25]))
    assert reading.readable.tolist() == [True, False]
    assert reading.coverage == pytest.approx([0.3, 0.25], abs=0.01)  # the dissolved frame does not count
    assert reading.states[1, 0] == pytest.approx(0.99, abs=0.01)  # its raw reading is kept
    # start frames (no last coverage) are real: judged whatever their spread
    assert judge.read(_levels(0.99)).readable.tolist() == [True]
    assert judge.gated(None).describe() == "toy probe" + EVERY_FRAME


def test_the_frame_judge_refuses_readers_of_the_wrong_shape():
    with pytest.raises(JudgeError, match="spread_reader"):
        FrameJudge(lambda f: f, lambda s: s, "x", max_spread=1.0)
    with pytest.raises(JudgeError, match="one row each"):
        FrameJudge(lambda f: np.zeros(3), lambda s: s, "x").read(_levels(0.1, 0.2))
    with pytest.raises(JudgeError, match="one each"):
        FrameJudge(lambda f: np.zeros((2, 5)), lambda s: s[:1, 0], "x").read(_levels(0.1, 0.2))
    with pytest.raises(JudgeError, match="no spread reader"):
        FrameJudge(lambda f: f, lambda s: s, "x").spreads(_levels(0.1))


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
    eps = [{"frames": np.stack([np.full((4, 4, 3), round(v * 255), np.uint8) for v in r])} for r in ramps]
    labels = np.array([1, 0] * 10)
    probe = TrajectoryProbe(featurize).fit([featurize(e["frames"]) for e in eps], labels)
    scores = probe.score(eps[:2])
    assert scores[0] > 0.5 > scores[1]
    assert TrajectoryProbe(featurize, hard=True).fit([featurize(e["frames"]) for e in eps], labels).score(
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
        probe.score([{"frames": _frames()}])
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
    from worldmodel.baselines import CopyLastFrameWorldModel

    class ScriptedWorldModel(CopyLastFrameWorldModel):
        """Each generated frame is one grey level: the fake readers below read coverage and spread off it."""

        def step(self, actions: torch.Tensor, num_steps: int | None = None) -> torch.Tensor:
            return torch.full((len(actions), 3, *self.image_size), next(self.levels))

    def env(max_spread: float | None) -> WorldModelEnv:
        world_model = ScriptedWorldModel((16, 16), raw_action_dim=2)
        world_model.levels = iter([0.2, 0.99, 0.3, 0.99])
        judge = FrameJudge(
            lambda px: np.repeat(_level(px)[:, None], 5, axis=1),  # "states" whose coverage is the level
            lambda states: states[:, 0],
            "scripted",
            spread_reader=lambda px: 100 * _level(px),  # brighter = less readable
        )
        start = make_env("pusht", num_envs=1, max_episode_steps=10)
        return WorldModelEnv(
            world_model, start, judge.gated(max_spread), state_keys={"agent_pos": lambda s: s[:, 1:3]}
        )

    gated, ungated = env(max_spread=50.0), env(max_spread=None)
    gated.reset(seed=0)
    ungated.reset(seed=0)
    action = np.zeros((1, 2), np.float32)
    seen = {"gated": [], "ungated": []}
    for _ in range(4):
        for name, e in (("gated", gated), ("ungated", ungated)):
            obs, reward, terminated, _, info = e.step(action)
            seen[name].append((round(float(reward[0]), 2), bool(terminated[0]), bool(info["readable"][0])))
    assert seen["ungated"] == [(0.2, False, True), (0.99, True, True), (0.3, False, True), (0.99, True, True)]
    assert seen["gated"] == [(0.2, False, True), (0.2, False, False), (0.3, False, True), (0.3, False, False)]
    assert obs["agent_pos"][0] == pytest.approx([0.99, 0.99], abs=0.01)  # the state keys read off the frame
