"""Rank recorded behaviours in imagination against their recorded success: ranking without a simulator.

Real robot data (Bridge V2, SOAR, a user's LeRobotDataset) has no env to roll new policies in, but it has
episodes of several behaviours (policies, or tasks) with success flags. Each group of held-out episodes is a
"policy" played back: its recorded actions are replayed open loop inside the world model from the episode's
first real frame(s), and a success probe trained on the real training episodes (with their instructions)
judges the imagined rollout. The real success rate of a group is its recorded success rate, so the fidelity
numbers say whether the world model orders the behaviours as reality did.

Two references sit beside every world model: the same probe on the REAL held-out episodes (how well the
judge alone ranks: the ceiling) and the copy-last world model (the start frame held). Random actions from the
same starts give an imagined-only sanity number: a world model that lets random actions succeed as often as
the recorded ones is not modelling the task.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wmeval.errors import ConfigError
from wmeval.io import to_json_safe, write_json, write_text
from wmeval.metrics.heldout import build_eval_set
from wmeval.metrics.imagine import open_loop_latents
from wmeval.metrics.success_probe import fit_probe, probe_features, probe_inputs
from wmeval.ranking.fidelity import FIDELITY_KEYS, ranking_fidelity
from wmeval.ranking.report import world_model_info
from worldmodel import WorldModel

GROUPS = ("policy", "task")
JUDGE = "recorded success flags (real) vs the success probe on imagined replays (imagined)"


def rank_recorded(
    world_models: dict[str, WorldModel],
    episodes: list[dict[str, Any]],
    *,
    data: str,
    group_by: str,
    heldout: int | None,
    horizon: int,
    context: int,
    num_steps: int | None,
    seed: int,
    n_boot: int,
    mismatch_negatives: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """One ranking block per world model, plus the probe-on-real and copy-last references of the first."""
    if group_by not in GROUPS:
        raise ConfigError(f"group_by={group_by!r} is unknown: choose {' or '.join(GROUPS)}")
    blocks: dict[str, Any] = {}
    for name, wm in world_models.items():
        data_set = build_eval_set(
            wm,
            episodes,
            data=data,
            count=len(episodes),
            horizon=horizon,
            context=context,
            heldout=heldout,
            num_steps=num_steps,
            seed=seed,
            progress=progress,
        )
        span = data_set.context + data_set.horizon
        labels = [bool(ep["success"]) for ep in data_set.train]
        if len(set(labels)) < 2:
            raise ConfigError(
                f"the {len(labels)} training episodes are all {'successes' if labels[0] else 'failures'}: the "
                "success probe needs both (more episodes, or heldout= smaller)"
            )
        probe, language = fit_probe(
            [probe_features(z[:span]) for z in data_set.train_latents],
            labels,
            [ep["task"] for ep in data_set.train],
            mismatch_negatives=mismatch_negatives,
            seed=seed,
        )
        tasks = [ep["task"] for ep in data_set.heldout]

        def judge(seqs: list[torch.Tensor], probe=probe, language=language, tasks=tasks) -> np.ndarray:  # noqa: ANN001
            feats = probe_inputs([probe_features(z) for z in seqs], tasks, language)
            return (probe.predict_proba(feats) >= 0.5).astype(float)

        groups = _groups(data_set.heldout, group_by)
        real = {
            g: np.array([float(data_set.heldout[i]["success"]) for i in idx]) for g, idx in groups.items()
        }
        imagined = judge(data_set.imagined_seq)
        block = _block(imagined, real, groups, n_boot, seed)
        c = data_set.context
        copy = [torch.cat((z[:c], z[c - 1 : c].expand(span - c, *z.shape[1:]))) for z in data_set.real_seq]
        random_seq = _random_replays(wm, data_set, num_steps, seed)
        blocks[name] = {
            "ranking": block,
            "references": {
                "probe_on_real": _block(judge(data_set.real_seq), real, groups, n_boot, seed),
                "copy_last": _block(judge(copy), real, groups, n_boot, seed),
            },
            "random_actions_imagined_success": float(judge(random_seq).mean()),
            "recorded_success": float(np.mean([ep["success"] for ep in data_set.heldout])),
            "episodes": {"heldout": len(data_set.heldout), "probe_train": len(data_set.train)},
            "split": data_set.split,
            "horizon": data_set.horizon,
            "context": data_set.context,
            "probe": {"language": language, "threshold": 0.5},
            "groups": {g: sorted({data_set.heldout[i]["task"] for i in idx}) for g, idx in groups.items()},
        }
    return blocks


def _groups(episodes: list[dict[str, Any]], group_by: str) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, ep in enumerate(episodes):
        groups[str(ep[group_by]) or "(none)"].append(i)
    if len(groups) < 2:
        raise ConfigError(
            f"the held-out episodes form {len(groups)} group(s) by {group_by}: ranking needs 2 or more "
            "(group_by=task, or hold out more episodes with heldout=)"
        )
    return dict(groups)


def _block(
    outcomes: np.ndarray, real: dict[str, np.ndarray], groups: dict[str, list[int]], n_boot: int, seed: int
) -> dict[str, Any]:
    imagined = {g: outcomes[idx] for g, idx in groups.items()}
    block = ranking_fidelity(imagined, real, n_boot=n_boot, seed=seed, shared_starts=False)
    block["judge"] = JUDGE
    return block


def _random_replays(wm: WorldModel, data_set: Any, num_steps: int | None, seed: int) -> list[torch.Tensor]:
    """Real context + imagined frames under uniform random actions in the held-out episodes' action range."""
    rng = np.random.default_rng(seed)
    actions = np.concatenate([ep["actions"] for ep in data_set.heldout])
    lo, hi = actions.min(axis=0), actions.max(axis=0)
    raw = [rng.uniform(lo, hi, size=ep["actions"].shape).astype(np.float32) for ep in data_set.heldout]
    imagined = open_loop_latents(
        wm, data_set.latents, raw, data_set.context, data_set.horizon, num_steps=num_steps, seed=seed
    )
    c = data_set.context
    return [torch.cat((z[:c], im)) for z, im in zip(data_set.real_seq, imagined, strict=True)]


def write_recorded_outputs(
    out: Path,
    blocks: dict[str, Any],
    world_models: dict[str, WorldModel],
    *,
    data: str,
    group_by: str,
    seed: int,
    started: float,
    command_config: dict[str, Any],
) -> dict[str, Any]:
    """`report.json` (headline: the first world model; `started` is the run's `time.perf_counter()`),
    report.md and the resolved config."""
    name = next(iter(blocks))
    first = blocks[name]
    elapsed = time.perf_counter() - started
    report = {
        "mode": "recorded",
        "ranking": {**first["ranking"], "judge": JUDGE},
        "world_model": world_model_info(name, world_models[name]),
        "baselines": {k: {f: v[f] for f in FIDELITY_KEYS} for k, v in first["references"].items()},
        "recorded": blocks,
        "data": data,
        "group_by": group_by,
        "timings_s": {"rank": elapsed, "total": elapsed},
        "seed": seed,
    }
    report = to_json_safe(report)
    write_json(out / "config.json", to_json_safe(command_config))
    write_json(out / "report.json", report)
    write_text(out / "report.md", _recorded_markdown(report))
    print(f"ranking written to {out / 'report.json'}")
    return report


def _recorded_markdown(report: dict[str, Any]) -> str:
    rows = [
        f"| {p['name']} | {p['real_success']:.3f} | {p['imagined_success']:.3f} | {p['episodes']} |"
        for p in report["ranking"]["policies"]
    ]
    fid = report["ranking"]
    return "\n".join(
        [
            f"# Recorded behaviours of {report['data']} replayed in {report['world_model']['checkpoint']}",
            "",
            f"Grouped by {report['group_by']}; {fid['judge']}.",
            "",
            "| group | recorded success | imagined success | episodes |",
            "| --- | --- | --- | --- |",
            *rows,
            "",
            f"Spearman {fid['spearman']}, Kendall {fid['kendall']}, Pearson {fid['pearson']}, MMRV {fid['mmrv']}.",
            f"References (same fidelity numbers): {report['baselines']}.",
            "",
        ]
    )
