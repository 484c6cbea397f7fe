"""report.md and report.html: the ranking, how faithful it is, against what baseline, and the figures.

The report is built once as a list of blocks (heading, paragraph, list, table, image) and rendered twice,
so the Markdown and the HTML cannot disagree. The HTML is self-contained (figures inlined as base64), to
be mailed or attached to an issue as one file; no Markdown library is needed.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wmeval.io import to_json_safe, write_text
from wmeval.ranking.fidelity import order_world_models

#: Fidelity statistics in report order, with the label a reader sees.
STATS = {
    "pearson": "Pearson r",
    "spearman": "Spearman ρ",
    "kendall": "Kendall τ-b",
    "mmrv": "MMRV (lower is better)",
    "pairwise_accuracy": "pairwise order accuracy",
}
NA = "n/a"

Block = tuple[Any, ...]


def write_report(out_dir: str | Path, report: Mapping[str, Any], figures: Mapping[str, Path]) -> Path:
    """Write `report.md` and `report.html` into `out_dir` (atomically); returns the Markdown path.

    `report` follows the `ranking.json` schema: a headline `ranking` block and `world_model`, or one
    `{"ranking": ..., "world_model": ...}` per name under `world_models`; optional `baselines`,
    `timings_s`, `seed`. NaN or None statistics read "n/a". `figures` maps a caption to a PNG.
    """
    out = Path(out_dir)
    blocks = build_blocks(to_json_safe(dict(report)), {k: Path(v) for k, v in figures.items()})
    md = write_text(out / "report.md", render_markdown(blocks, out))
    write_text(out / "report.html", render_html(blocks, out))
    return md


# --------------------------------------------------------------------------------------------------
# Content
# --------------------------------------------------------------------------------------------------


def build_blocks(report: Mapping[str, Any], figures: Mapping[str, Path]) -> list[Block]:
    """The report's content, independent of the output format."""
    models = world_model_blocks(report)
    baselines = report.get("baselines") or {}
    blocks: list[Block] = [("h1", "wmeval report")]
    facts = [f"seed: {report.get('seed', NA)}"]
    if report.get("outcome"):
        facts.append(f"outcome: {report['outcome']}")
    judges = {judge_text(block) for block, _ in models.values()} - {""}
    if judges:
        facts.append("judge: " + "; ".join(sorted(judges)))
    blocks.append(("ul", facts))

    if report.get("policy_sets"):
        blocks.append(("h2", "Fidelity by policy set"))
        blocks.append(
            (
                "p",
                "Each set of policies ranked on its own. A set whose behaviour trained the world model "
                "measures replay of its training data; the sets it never saw measure ranking of new policies.",
            )
        )
        blocks.append(policy_set_table(report["policy_sets"]))

    if len(models) > 1:
        blocks.append(("h2", "World models, most faithful first"))
        blocks.append(
            ("p", "Ordered by Spearman ρ (higher first), then MMRV (lower first). 95% bootstrap CIs.")
        )
        blocks.append(leaderboard(models, baselines))

    for name, (block, info) in models.items():
        blocks.append(("h2", f"Ranking: {name}" if len(models) > 1 else "Ranking"))
        if info:
            blocks.append(("ul", [f"{k}: {v}" for k, v in info.items()]))
        blocks.append(
            policy_table(block, ((report.get("judge_readability") or {}).get("policies") or {}).get(name))
        )
        blocks.append(("h3", "Fidelity"))
        if judge_text(block):
            blocks.append(("p", f"Imagined success judged by: {judge_text(block)}."))
        readable = readability_text(report.get("judge_readability"), name, report.get("outcome"))
        if readable:
            blocks.append(("p", readable))
        blocks.append(fidelity_table(name if len(models) > 1 else "world model", block, baselines))

    timings = report.get("timings_s") or {}
    if timings:
        blocks.append(("h2", "Timings"))
        blocks.append(("table", ["stage", "seconds"], [[k, fmt(v, 1)] for k, v in timings.items()]))
    if figures:
        blocks.append(("h2", "Figures"))
        for caption, path in figures.items():
            blocks += [("h3", caption), ("img", caption, path)]
    return blocks


def world_model_blocks(report: Mapping[str, Any]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """name -> (ranking block, world-model info), most faithful first when there are several."""
    many = report.get("world_models")
    if many:
        items = many.items() if isinstance(many, Mapping) else ((m.get("name"), m) for m in many)
        found = {}
        for name, entry in items:
            block = entry.get("ranking", entry)
            found[str(name)] = (block, entry.get("world_model") or {})
        order = order_world_models({n: _nan_stats(b) for n, (b, _) in found.items()})
        return {n: found[n] for n in order}
    if "ranking" not in report:
        return {}
    info = dict(report.get("world_model") or {})
    return {str(info.get("checkpoint") or "world model"): (report["ranking"], info)}


def leaderboard(
    models: Mapping[str, tuple[dict[str, Any], dict[str, Any]]], baselines: Mapping[str, Any]
) -> Block:
    head = ["#", "world model"] + [STATS[k] for k in ("spearman", "pearson", "kendall", "mmrv")]
    head.append(STATS["pairwise_accuracy"])
    rows = []
    for rank, (name, (block, _)) in enumerate(models.items(), start=1):
        cells = [with_ci(block, k) for k in ("spearman", "pearson", "kendall", "mmrv")]
        rows.append([str(rank), name, *cells, fmt(block.get("pairwise_accuracy"))])
    for name, stats in baselines.items():
        cells = [with_ci(stats, k) for k in ("spearman", "pearson", "kendall", "mmrv")]
        rows.append(["–", f"{name} (baseline)", *cells, fmt(stats.get("pairwise_accuracy"))])
    return ("table", head, rows)


def policy_set_table(sets: Mapping[str, Any]) -> Block:
    """One row per (policy set, world): fidelity with CIs, and whether the set's behaviour trained the world."""
    head = ["policy set", "world", "in training data", STATS["spearman"], STATS["pearson"], STATS["mmrv"]]
    rows = []
    for set_name, entry in sets.items():
        for world, block in entry["fidelity"].items():
            trained = entry["in_training_data"].get(world)
            cells = [with_ci(block, k) for k in ("spearman", "pearson", "mmrv")]
            rows.append([f"{set_name} ({len(entry['policies'])})", world, yes_no(trained), *cells])
    return ("table", head, rows)


def yes_no(value: bool | None) -> str:
    return NA if value is None else ("yes" if value else "no")


def policy_table(block: Mapping[str, Any], readable: Mapping[str, float] | None = None) -> Block:
    """Real and imagined success per policy; with `readable`, the share of its frames the judge could read."""
    head = ["policy", "real success", "imagined success", "episodes"]
    rows = [
        [
            str(p.get("name", "")),
            fmt(p.get("real_success")),
            fmt(p.get("imagined_success")),
            str(p.get("episodes", NA)),
        ]
        for p in block.get("policies", [])
    ]
    if any(p.get("in_training_data") is not None for p in block.get("policies", [])):
        head.append("in training data")
        for row, p in zip(rows, block["policies"], strict=True):
            row.append(yes_no(p.get("in_training_data")))
    if readable:
        head.append("judge-readable frames")
        for row in rows:
            share = readable.get(row[0])
            row.append(NA if share is None else f"{share:.0%}")
    return ("table", head, rows)


def fidelity_table(name: str, block: Mapping[str, Any], baselines: Mapping[str, Any]) -> Block:
    head = ["statistic", name, "95% CI"] + [f"{b} (baseline)" for b in baselines]
    rows = []
    for key, label in STATS.items():
        ci = (block.get("ci95") or {}).get(key)
        row = [label, fmt(block.get(key)), fmt_ci(ci) if key in (block.get("ci95") or {}) else NA]
        rows.append(row + [fmt((b or {}).get(key)) for b in baselines.values()])
    return ("table", head, rows)


def judge_text(block: Mapping[str, Any]) -> str:
    judge = block.get("judge")
    if isinstance(judge, Mapping):
        return "; ".join(f"{k}: {v}" for k, v in judge.items())
    return "" if judge is None else str(judge)


def readability_text(readability: Mapping[str, Any] | None, name: str, outcome: str | None = None) -> str:
    """How much of the world model's frames the judge could read, beside real frames', and, when it skipped
    the unreadable ones, what reading every frame would have given for `outcome`."""
    share = ((readability or {}).get("worlds") or {}).get(name)
    if share is None:
        return ""
    use = (
        "The imagined judge skipped the unreadable ones (they keep the last readable coverage)."
        if readability.get("gated")
        else "Every frame was judged; a low share says this world model's frames, and its numbers, are not "
        "to be trusted."
    )
    text = (
        f"Judge-readable frames: {share:.0%} of this world model's frames vs {readability['real']:.0%} of real "
        f"frames (keypoint spread within {readability['threshold']:.0f} simulator units, the real frames' "
        f"{readability['quantile']:.0%} quantile). {use}"
    )
    naive = ((readability.get("every_frame_read") or {}).get(name) or {}).get(outcome)
    if naive:
        text += f" The same rollouts read on every frame: {every_frame_read_text(naive)}."
    return text


def every_frame_read_text(block: Mapping[str, Any]) -> str:
    """Fidelity of the same rollouts with every frame read, unreadable ones included, in one phrase."""
    return f"Spearman {fmt(block.get('spearman'))}, Pearson {fmt(block.get('pearson'))}, MMRV {fmt(block.get('mmrv'))}"


def with_ci(block: Mapping[str, Any], key: str) -> str:
    value, ci = fmt(block.get(key)), (block.get("ci95") or {}).get(key)
    return value if ci is None or value == NA else f"{value} {fmt_ci(ci)}"


def fmt(value: Any, digits: int = 3) -> str:
    """A number to `digits` decimals; None, NaN and non-numbers read "n/a"."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return NA
    return f"{x:.{digits}f}" if math.isfinite(x) else NA


def fmt_ci(ci: Any) -> str:
    if not isinstance(ci, list | tuple) or len(ci) != 2 or NA in (fmt(ci[0]), fmt(ci[1])):
        return NA
    return f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def _nan_stats(block: Mapping[str, Any]) -> dict[str, float]:
    """`order_world_models` wants floats; a JSON null is an undefined statistic, i.e. NaN."""
    return {k: (math.nan if fmt(block.get(k)) == NA else float(block[k])) for k in ("spearman", "mmrv")}


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------


def render_markdown(blocks: list[Block], out_dir: Path) -> str:
    lines: list[str] = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + rest[0], ""]
        elif kind == "p":
            lines += [rest[0], ""]
        elif kind == "ul":
            lines += [f"- {item}" for item in rest[0]] + [""]
        elif kind == "table":
            head, rows = rest
            lines.append("| " + " | ".join(_md_cell(h) for h in head) + " |")
            lines.append("|" + "|".join(" --- " for _ in head) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows] + [""]
        elif kind == "img":
            caption, path = rest
            lines += [f"![{caption}]({_relative(path, out_dir)})", ""]
    return "\n".join(lines).rstrip() + "\n"


def render_html(blocks: list[Block], out_dir: Path) -> str:
    body: list[str] = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2", "h3", "p"):
            body.append(f"<{kind}>{_inline(rest[0])}</{kind}>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in rest[0]) + "</ul>")
        elif kind == "table":
            head, rows = rest
            th = "".join(f"<th>{_inline(h)}</th>" for h in head)
            trs = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in rows)
            body.append(f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>")
        elif kind == "img":
            caption, path = rest
            body.append(
                f'<figure><img alt="{html.escape(caption)}" src="{_img_src(path, out_dir)}"></figure>'
            )
    return _PAGE.format(body="\n".join(body))


def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _inline(text: Any) -> str:
    """Escape, then render `code` spans: the only inline Markdown the report uses."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(str(text)))


def _resolve(path: Path, out_dir: Path) -> Path:
    """A figure path as given (absolute or from the working directory), else relative to `out_dir`."""
    if path.is_absolute() or path.exists() or not (out_dir / path).exists():
        return path
    return out_dir / path


def _relative(path: Path, out_dir: Path) -> str:
    try:
        return Path(os.path.relpath(_resolve(path, out_dir), out_dir)).as_posix()
    except ValueError:  # another drive on Windows
        return path.as_posix()


def _img_src(path: Path, out_dir: Path) -> str:
    """A data URI so the HTML stands alone; the relative path if the file is not there to read."""
    full = _resolve(path, out_dir)
    if not full.is_file():
        return html.escape(_relative(path, out_dir))
    suffix = full.suffix.lower().lstrip(".") or "png"
    mime = {"svg": "image/svg+xml", "jpg": "image/jpeg"}.get(suffix, f"image/{suffix}")
    return f"data:{mime};base64,{base64.b64encode(full.read_bytes()).decode('ascii')}"


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>wmeval report</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: right; }}
th {{ background: #f3f3f3; }}
td:first-child, th:first-child {{ text-align: left; }}
img {{ max-width: 100%; }}
code {{ background: #f3f3f3; padding: 0 0.2em; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""
