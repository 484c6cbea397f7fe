"""The model card (`README.md`) written beside every saved world model, so a folder pushed to the Hub says what it
is: architecture, recipe, training data, the training manifest and, when `config.meta["fidelity"]` holds them
(e.g. a `wmeval rank` report's Spearman / MMRV, put there before pushing), its policy-ranking fidelity.

Everything comes from the saved config (`WorldModelConfig`, its `meta` holding the training manifest), so the card
never disagrees with the weights beside it. The YAML header is `huggingface_hub.ModelCardData`'s, which the Hub
reads for search and tags.
"""

from __future__ import annotations

import json
from typing import Any

CARD_NAME = "README.md"
#: `meta` keys summarised in the card's tables; the full manifest follows as JSON
_TRAINING_KEYS = ("steps", "total_steps", "train_episodes", "heldout_episodes", "device", "processes", "loss")


def model_card(config: Any, repo_id: str | None = None) -> str:
    """Markdown with a Hub metadata header for a `WorldModelConfig` (`repo_id` titles it when known)."""
    from huggingface_hub import ModelCard, ModelCardData

    meta = dict(config.meta or {})
    data = meta.get("data")
    # no `datasets:` link: the manifest's `data` may be a local path that merely looks like a Hub id
    card_data = ModelCardData(
        library_name="wmeval", tags=["world-model", "robotics", "latent-diffusion", "lerobot", "wmeval"]
    )
    title = repo_id or "World model"
    sections = [
        f"# {title}\n",
        "An action-conditioned latent-diffusion world model saved by `wmeval` (`WorldModel.save_pretrained`). "
        "Load it with `WorldModel.from_pretrained(<this id or folder>)`, or rank policies in it with "
        "`wmeval rank world_models=[<this id>]`.\n",
        "## Architecture\n",
        _table(
            {
                "encoder": _encoder_text(config.encoder),
                "adapter": config.adapter.get("type", "?"),
                "DiT": _dit_text(config.dit),
                "objective": config.objective.get("type", "?"),
                "action dim (raw x steps per frame)": f"{config.raw_action_dim} x {config.sim_steps_per_frame} "
                f"({config.action_mode})",
                "simulator fps": config.fps,
                "rigid token groups": config.rigid_groups or None,
            }
        ),
    ]
    recipe = (meta.get("config") or {}).get("recipe")
    sections += [
        "## Recipe and data\n",
        _table({"recipe": recipe, "data": data, "cameras": meta.get("camera_keys")}),
    ]
    sections += ["## Training\n", _table({k: meta.get(k) for k in _TRAINING_KEYS})]
    heldout = meta.get("heldout")
    if isinstance(heldout, dict):
        sections += ["## Held-out open-loop metrics (from training)\n", _table(_scalars(heldout))]
    fidelity = meta.get("fidelity")
    if isinstance(fidelity, dict):
        sections += ["## Policy-ranking fidelity\n", _table(_scalars(fidelity))]
    sections += [
        "## Training manifest\n",
        "```json\n" + json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n```\n",
    ]
    return str(ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n" + "\n".join(sections)))


def _table(rows: dict[str, Any]) -> str:
    lines = ["| | |", "| --- | --- |"]
    lines += [f"| {k} | {_cell(v)} |" for k, v in rows.items() if v is not None]
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def _scalars(block: dict[str, Any]) -> dict[str, Any]:
    """The numbers of a metrics block (per-step curves and nested blocks stay in the JSON manifest)."""
    return {k: v for k, v in block.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _encoder_text(encoder: dict[str, Any]) -> str:
    pretrained = encoder.get("pretrained")
    return f"{encoder.get('type', '?')}" + (f" ({pretrained})" if pretrained else "")


def _dit_text(dit: dict[str, Any]) -> str:
    keys = ("size", "hidden_size", "depth", "max_frames")
    return ", ".join(f"{k} {dit[k]}" for k in keys if dit.get(k) is not None)
