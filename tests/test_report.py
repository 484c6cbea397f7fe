"""PNG plots and report.md / report.html: they render, hold the numbers, and say n/a for undefined ones."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from wmeval.errors import WmevalError
from wmeval.io import to_json_safe
from wmeval.report import plots
from wmeval.report.episodes import EpisodeView, WorldTrace
from wmeval.report.markdown import write_report


def _block(imagined: list[float], spearman: float, mmrv: float) -> dict:
    real = [0.2, 0.5, 0.9]
    return {
        "policies": [
            {
                "name": n,
                "real_success": r,
                "imagined_success": s,
                "episodes": 10,
                "imagined_ci95": [s - 0.1, s + 0.1],
            }
            for n, r, s in zip(("slow", "mid", "fast|best"), real, imagined, strict=True)
        ],
        "pearson": 0.9,
        "spearman": spearman,
        "kendall": 0.8,
        "mmrv": mmrv,
        "pairwise_accuracy": 1.0,
        "ci95": {
            "pearson": [0.5, 1.0],
            "spearman": [math.nan, math.nan],
            "kendall": [0.1, 1.0],
            "mmrv": [0.0, 0.2],
        },
        "judge": "state probe",
    }


@pytest.fixture
def episodes() -> list[EpisodeView]:
    rng = np.random.default_rng(0)

    def trace(t: int) -> WorldTrace:
        frames = rng.integers(0, 256, (t + 1, 24, 32, 3), dtype=np.uint8)
        return WorldTrace(frames=frames, actions=rng.normal(size=(t, 2)), scores=np.linspace(0, 1, t + 1))

    return [
        EpisodeView(p, i, {"real": trace(6), "imagined": trace(4 + i)}) for p in ("a", "b") for i in range(2)
    ]


def _png(path) -> tuple[int, int]:
    with Image.open(path) as img:
        assert img.format == "PNG"
        img.load()
        return img.size


def test_plots_render_as_pngs_of_plausible_size(tmp_path, episodes):
    blocks = {"wm": _block([0.3, 0.4, 0.8], 1.0, 0.0), "copy_last": _block([0.5, 0.5, 0.5], math.nan, 0.4)}
    w, h = _png(plots.success_scatter(tmp_path / "scatter.png", blocks))
    assert 300 <= w <= 2000 and 300 <= h <= 2000
    w, h = _png(plots.success_curves(tmp_path / "curves.png", plots.curves_from_episodes(episodes)))
    assert w > h > 150
    two = _png(plots.frame_grid(tmp_path / "grid2.png", episodes, max_episodes=2, n_frames=5))
    four = _png(plots.frame_grid(tmp_path / "grid4.png", episodes, max_episodes=4, n_frames=5))
    assert four[0] == two[0] and four[1] > 1.5 * two[1]  # one row per episode x world
    w, h = _png(plots.horizon_curve(tmp_path / "h.png", {"wm": [30, 25, math.nan, 20]}, ylabel="PSNR"))
    assert w > 300 and h > 200
    assert not list(tmp_path.glob(".*"))  # no temporaries left behind


def test_curves_hold_the_last_value_of_shorter_episodes():
    np.testing.assert_array_equal(
        plots.pad_traces([[0.1, 0.5], [0.2, 0.3, 0.9]]), [[0.1, 0.5, 0.5], [0.2, 0.3, 0.9]]
    )


def test_horizon_curve_rejects_mismatched_steps(tmp_path):
    with pytest.raises(WmevalError, match="steps"):
        plots.horizon_curve(tmp_path / "x.png", {"wm": [1, 2, 3]}, steps=[0, 1], ylabel="PSNR")


def test_report_has_tables_baseline_and_na_for_nan(tmp_path):
    fig = plots.horizon_curve(tmp_path / "fig.png", {"wm": [1.0, 2.0]}, ylabel="x")
    report = {
        "ranking": _block([0.3, 0.4, 0.8], 1.0, 0.0),
        "world_model": {"checkpoint": "runs/wm", "encoder": "conv_vae", "adapter": "identity", "dit": "tiny"},
        "baselines": {"copy_last": {"pearson": math.nan, "spearman": 0.25, "kendall": 0.1, "mmrv": 0.3}},
        "timings_s": {"record": 1.0, "train": 2.0, "rank": 3.0, "total": 6.0},
        "seed": 3,
    }
    md_path = write_report(tmp_path, report, {"A horizon plot": fig})
    md = md_path.read_text()
    assert md_path.name == "report.md"
    assert "| slow | 0.200 | 0.300 | 10 |" in md and "| fast\\|best | 0.900 | 0.800 | 10 |" in md
    assert "| Spearman ρ | 1.000 | n/a | 0.250 |" in md  # NaN CI -> n/a; baseline beside it
    assert "| Pearson r | 0.900 | [0.500, 1.000] | n/a |" in md  # NaN baseline -> n/a
    assert "copy_last (baseline)" in md and "state probe" in md and "conv_vae" in md
    assert "![A horizon plot](fig.png)" in md and "nan" not in md.lower()
    page = (tmp_path / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<td>fast|best</td>" in page
    assert "data:image/png;base64," in page and "n/a" in page


def test_several_world_models_are_ordered_by_fidelity(tmp_path):
    blocks = {
        "undefined": _block([0.5, 0.5, 0.5], math.nan, 0.4),
        "good": _block([0.3, 0.4, 0.8], 1.0, 0.0),
        "fair": _block([0.4, 0.3, 0.8], 0.5, 0.1),
    }
    report = {
        "ranking": blocks["good"],
        "world_models": {n: {"ranking": b} for n, b in blocks.items()},
        "seed": 0,
    }
    md = write_report(tmp_path, report, {}).read_text()
    board = md.split("## World models, most faithful first")[1].split("## Ranking")[0]
    assert board.index("| 1 | good |") < board.index("| 2 | fair |") < board.index("| 3 | undefined | n/a |")
    assert md.count("## Ranking: ") == 3


def test_to_json_safe_writes_nan_as_null():
    data = {"r": math.nan, "ci": (np.float64(0.1), np.inf), "arr": np.array([1.0, np.nan]), "n": np.int64(3)}
    safe = to_json_safe(data)
    assert safe == {"r": None, "ci": [0.1, None], "arr": [1.0, None], "n": 3}
    assert json.loads(json.dumps(safe, allow_nan=False)) == safe


def test_terminal_summary_shows_every_world_and_orders_the_world_models():
    from wmeval.report.summary import summary_text

    blocks = {"fair": _block([0.4, 0.3, 0.8], 0.5, 0.1), "good": _block([0.3, 0.4, 0.7], 1.0, 0.0)}
    report = {
        "ranking": blocks["fair"],
        "world_models": {n: {"ranking": b} for n, b in blocks.items()},
        "baselines": {"copy_last": {"pearson": None, "spearman": None, "kendall": None, "mmrv": 0.3}},
        "judge_readability": {
            "real": 0.99,
            "worlds": {"fair": 0.5, "good": 0.25},
            "threshold": 30.0,
            "every_frame_read": {"good": {"coverage": {"spearman": 0.1, "pearson": 0.2, "mmrv": 0.25}}},
        },
        "outcome": "coverage",
        "seed": 0,
    }
    text = summary_text(report)
    lines = text.splitlines()
    assert lines[0].split() == ["policy", "real", "in", "good", "in", "fair"]
    assert lines[3].split() == ["fast|best", "0.900", "0.700", "0.800"]  # real, then each world's imagined
    board = text.split("most faithful first")[1]
    assert board.index(" good ") < board.index(" fair ") < board.index("copy_last (baseline)")
    assert "n/a" in board.split("copy_last (baseline)")[1].splitlines()[0]
    assert "judge-readable frames: fair 50%, good 25% (real frames 99%)" in text
    assert (
        "good with every frame read (unreadable ones too): Spearman 0.100, Pearson 0.200, MMRV 0.250" in text
    )


def test_scatter_axes_zoom_to_compressed_rates_so_their_order_shows():
    lo, hi = plots._span([np.array([0.05, 0.07]), np.array([0.1])])
    assert lo < 0.05 and hi > 0.1 and hi - lo < 0.2  # not the whole [0, 1]
    assert plots._span([np.array([0.0, 1.0])]) == (-0.03, 1.03)  # never beyond the rates' range
    assert plots._span([]) == (-0.03, 1.03)
