import numpy as np
import pytest
import torch

from tests.wm_fixtures import IMAGE, tiny_world_model
from worldmodel import WorldModel
from worldmodel.baselines import CopyLastFrameWorldModel
from worldmodel.data.frames import to_model_frames
from worldmodel.errors import InputError
from worldmodel.objectives.flow_matching import FlowMatchingConfig


def _start(b: int = 2, t: int = 2) -> torch.Tensor:
    return torch.rand(b, t, 3, IMAGE, IMAGE, generator=torch.Generator().manual_seed(0))


def test_cached_and_uncached_generation_agree():
    wm = tiny_world_model(max_frames=8)
    actions = torch.rand(2, 5, 2) * 32
    wm.reset(_start(), use_cache=True, seed=3)
    cached = wm.step(actions)
    wm.reset(_start(), use_cache=False, seed=3)
    uncached = wm.step(actions)
    assert cached.shape == (2, 5, 3, IMAGE, IMAGE)
    assert torch.allclose(cached, uncached, atol=1e-5)


def _guided(guidance: float) -> WorldModel:
    objective = {"type": "flow_matching", **FlowMatchingConfig(num_steps=2, guidance=guidance).to_dict()}
    return tiny_world_model(max_frames=8, objective=objective)


def test_guidance_zero_ignores_the_action_and_guided_frames_keep_cache_parity():
    actions = torch.rand(2, 3, 2) * 32
    frames = {}
    for guidance, other, use_cache in (
        (0.0, False, True),
        (0.0, True, True),
        (2.0, False, True),
        (2.0, False, False),
    ):
        wm = _guided(guidance)
        wm.reset(_start(), use_cache=use_cache, seed=4)
        frames[guidance, other, use_cache] = wm.step(actions.flip(0) if other else actions)
    # the null prediction: the first frame ignores its action (later ones see their context's actions)
    assert torch.allclose(frames[0.0, False, True][:, 0], frames[0.0, True, True][:, 0], atol=1e-6)
    assert torch.allclose(frames[2.0, False, True], frames[2.0, False, False], atol=1e-5)
    wm = _guided(1.0)
    wm.reset(_start(), seed=4)
    unguided = wm.step(actions)
    assert not torch.allclose(unguided, frames[2.0, False, True], atol=1e-3)
    assert not torch.allclose(unguided, frames[0.0, False, True], atol=1e-3)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"guidance": -1.0}, "guidance=-1.0 must be >= 0"),
        ({"guidance": 2.0, "action_dropout": 0.0}, "action_dropout > 0"),
    ],
)
def test_guidance_without_a_learned_null_action_is_refused(options, message):
    with pytest.raises(InputError, match=message):
        FlowMatchingConfig(**options)


def test_same_seed_same_frames_and_actions_matter():
    wm = tiny_world_model()
    actions = torch.rand(2, 3, 2) * 32
    wm.reset(_start(), seed=1)
    a = wm.step(actions)
    wm.reset(_start(), seed=1)
    b = wm.step(actions)
    wm.reset(_start(), seed=1)
    c = wm.step(actions.flip(0))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert 0 <= a.min() and a.max() <= 1


def test_single_step_shape_and_alias():
    wm = tiny_world_model(sim_steps_per_frame=2)
    assert wm.action_dim == 4 and wm.image_size == (IMAGE, IMAGE) and wm.context_frames == 6
    wm.reset(_start(b=3, t=1))
    assert wm.step(torch.zeros(3, 4)).shape == (3, 3, IMAGE, IMAGE)
    assert wm.generate_chunk(torch.zeros(3, 2, 4)).shape == (3, 2, 3, IMAGE, IMAGE)


def test_long_rollout_keeps_the_window_bounded():
    wm = tiny_world_model(max_frames=4)
    wm.reset(_start(b=1, t=1))
    frames = wm.step(torch.rand(1, 12, 2) * 32)
    assert torch.isfinite(frames).all()
    assert len(wm._state.context.cache) == 3 and wm._state.context.latents.shape[1] == 3


def test_save_and_load_round_trip(tmp_path):
    wm = tiny_world_model()
    wm.save_pretrained(tmp_path / "wm")
    loaded = WorldModel.from_pretrained(tmp_path / "wm")
    actions = torch.rand(2, 2, 2) * 32
    wm.reset(_start(), seed=0)
    loaded.reset(_start(), seed=0)
    assert torch.equal(wm.step(actions), loaded.step(actions))


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        (torch.rand(2, 3, IMAGE, IMAGE), "add a time axis"),
        (torch.rand(2, 1, 4, IMAGE, IMAGE), "3 channels"),
        ((torch.rand(2, 1, 3, IMAGE, IMAGE) * 255).to(torch.uint8), "divide uint8"),
        (torch.rand(2, 1, 3, IMAGE, IMAGE) * 2, r"\[0, 1\]"),
        (torch.full((2, 1, 3, IMAGE, IMAGE), float("nan")), "finite"),
    ],
)
def test_bad_frames_are_refused(frames, message):
    with pytest.raises(InputError, match=message):
        tiny_world_model().reset(frames)


def test_bad_actions_are_refused():
    wm = tiny_world_model()
    with pytest.raises(InputError, match="reset"):
        wm.step(torch.zeros(2, 2))
    wm.reset(_start())
    with pytest.raises(InputError, match="action_dim"):
        wm.step(torch.zeros(2, 3))
    with pytest.raises(InputError, match="NaN"):
        wm.step(torch.full((2, 2), float("nan")))
    with pytest.raises(InputError, match="inf"):
        wm.step(torch.full((2, 2), float("inf")))
    with pytest.raises(InputError, match="batch"):
        wm.step(torch.zeros(3, 2))


def test_missing_or_foreign_checkpoint(tmp_path):
    with pytest.raises(InputError, match="world_model.json"):
        WorldModel.from_pretrained(tmp_path)
    wm = tiny_world_model()
    wm.save_pretrained(tmp_path / "wm")
    weights = tmp_path / "wm" / "dit.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(InputError, match="cannot be read"):
        WorldModel.from_pretrained(tmp_path / "wm")


def test_copy_last_baseline_never_changes():
    baseline = CopyLastFrameWorldModel((IMAGE, IMAGE), raw_action_dim=2, sim_steps_per_frame=2)
    start = _start()
    baseline.reset(start)
    out = baseline.step(torch.rand(2, 3, 4))
    assert torch.equal(out, start[:, -1:].expand(-1, 3, -1, -1, -1))


def test_switching_the_cache_mid_rollout_keeps_the_frames():
    wm = tiny_world_model(max_frames=8)
    actions = torch.rand(2, 6, 2) * 32
    wm.reset(_start(), use_cache=True, seed=2)
    reference = wm.step(actions)
    wm.reset(_start(), use_cache=False, seed=2)
    first = wm.step(actions[:, :3])
    wm.set_use_cache(True)
    second = wm.step(actions[:, 3:])
    assert torch.allclose(torch.cat((first, second), 1), reference, atol=1e-5)


@pytest.mark.parametrize("use_cache", [True, False])
def test_residual_model_with_a_silent_network_copies_the_last_frame(use_cache):
    wm = tiny_world_model(residual=True)
    for p in wm.dit.head.parameters():
        p.data.zero_()
    start = _start()
    wm.reset(start, use_cache=use_cache, seed=0)
    frames = wm.step(torch.rand(2, 3, 2) * 32)
    expected = start[:, -1:].expand(-1, 3, -1, -1, -1)
    assert torch.allclose(frames, expected, atol=1e-5)


def test_residual_loss_measures_the_change_from_the_previous_frame():
    wm = tiny_world_model(residual=True)
    static = torch.randn(1, 4, 8, 8, 192).expand(2, -1, -1, -1, -1).clone()
    static[:] = static[:, :1]  # every frame equals the first: nothing changes
    silent = lambda x, *args, **kwargs: torch.zeros_like(x)  # noqa: E731
    actions, history = torch.zeros(2, 4, 2), torch.tensor([1, 2])
    gen = torch.Generator().manual_seed(0)
    assert wm.objective.loss(silent, static, actions, history, gen) == 0
    wm.objective.config.residual = False
    assert wm.objective.loss(silent, static, actions, history, gen) > 0.1


def test_recorded_uint8_frames_become_model_frames_at_its_resolution():
    frames = np.random.default_rng(0).integers(0, 256, size=(2, 3, 64, 64, 3), dtype=np.uint8)
    same = to_model_frames(frames, (64, 64))
    assert same.shape == (2, 3, 3, 64, 64) and torch.equal(
        same[1, 2, 0], torch.from_numpy(frames[1, 2, ..., 0]) / 255
    )
    small = to_model_frames(frames, (IMAGE, IMAGE))
    assert small.shape == (2, 3, 3, IMAGE, IMAGE) and 0 <= small.min() and small.max() <= 1
    assert torch.allclose(
        small.mean(dim=(-1, -2)), same.mean(dim=(-1, -2)), atol=1e-3
    )  # a resize, not a crop


def test_imagination_runs_on_one_cpu_thread_and_restores_the_callers_count():
    """A parallel sum's last bits depend on the thread count, and policies reading the frames amplify them:
    pinning one thread is what makes a seed give the same rollouts whatever `threads=` is."""
    wm = tiny_world_model()
    seen: list[int] = []
    wm.dit.register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        wm.reset(_start(), seed=0)
        wm.step(torch.rand(2, 2, 2) * 32)
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {1}
    assert after == 2
