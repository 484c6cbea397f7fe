"""The terminal summary of a ranking: policies in every world, then the world models, most faithful first.

Built from the same report blocks as report.md (`wmeval.report.markdown`), so the terminal and the files agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from wmeval.report.markdown import (
    every_frame_read_text,
    fmt,
    judge_text,
    leaderboard,
    policy_set_table,
    world_model_blocks,
    yes_no,
)


def summary_text(report: Mapping[str, Any], out: Path | None = None) -> str:
    """Plain-text tables: success per policy (real and each world model), then the fidelity leaderboard."""
    models = world_model_blocks(report)
    if not models:
        return ""
    baselines = report.get("baselines") or {}
    readable = report.get("judge_readability") or {}
    first = next(iter(models.values()))[0]
    imagined = {
        name: {p["name"]: p.get("imagined_success") for p in block.get("policies", [])}
        for name, (block, _) in models.items()
    }
    head = ["policy", "real", *[f"in {name}" for name in models]]
    rows = [
        [p["name"], fmt(p.get("real_success")), *[fmt(imagined[m].get(p["name"])) for m in models]]
        for p in first.get("policies", [])
    ]
    if any(p.get("in_training_data") is not None for p in first.get("policies", [])):
        head.append("in training data")
        for row, p in zip(rows, first["policies"], strict=True):
            row.append(yes_no(p.get("in_training_data")))
    lines = [text_table(head, rows), ""]
    if judge_text(first):
        lines.append(f"judge: {judge_text(first)}")
    _, board_head, board_rows = leaderboard(models, baselines)
    lines += [
        "",
        "world models, most faithful first (95% bootstrap CIs):",
        text_table(board_head, board_rows, left=2),
    ]
    if report.get("policy_sets"):
        _, set_head, set_rows = policy_set_table(report["policy_sets"])
        lines += ["", "fidelity by policy set (95% bootstrap CIs):", text_table(set_head, set_rows, left=3)]
    if readable.get("worlds"):
        shares = ", ".join(f"{name} {share:.0%}" for name, share in readable["worlds"].items())
        lines.append(f"judge-readable frames: {shares} (real frames {readable['real']:.0%})")
    for name, by_outcome in (readable.get("every_frame_read") or {}).items():
        if by_outcome.get(report.get("outcome")):
            naive = every_frame_read_text(by_outcome[report["outcome"]])
            lines.append(f"{name} with every frame read (unreadable ones too): {naive}")
    if out is not None:
        rrd = out / "rollouts.rrd"
        lines.append(f"\nreport: {out / 'report.md'}" + (f"   rollouts: {rrd}" if rrd.is_file() else ""))
    return "\n".join(lines)


def text_table(head: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """The first `left` columns (names) left-aligned, the numbers right-aligned; one line per row."""
    cells = [list(map(str, head)), *[list(map(str, r)) for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]

    def line(row: list[str]) -> str:
        padded = [
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    return "\n".join(line(r) for r in cells)
