"""`wmeval <command> --help`: every key of the command with its default and the comment that documents it in the
YAML, and every config group with its options. Read from the YAML files themselves (not the composed config,
which loses comments), so it works without the command's required keys."""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable
from textwrap import indent

from omegaconf import OmegaConf

_DEFAULTS_BLOCK = re.compile(r"^defaults:\n(?:[ \t]+-.*\n|[ \t]*#.*\n)*", re.MULTILINE)
_GLOBAL_PACKAGE = "# @package _global_"


def command_help(command: str, description: str) -> str:
    """The help text of `wmeval <command>`: its YAML in composition order, groups expanded with their options."""
    parts = [
        f"wmeval {command}: {description}",
        f"usage: wmeval {command} [key=value ...]   (`???` marks a required key; nested keys as a.b=value)",
    ]
    parts += _config_parts(files("wmeval.conf"), command, f"{command} keys")
    return "\n\n".join(parts) + "\n"


def _config_parts(conf: Traversable, name: str, label: str) -> list[str]:
    """`name.yaml` in composition order; a config it builds on (`demo` on `rank`) is expanded in place."""
    text = (conf / f"{name}.yaml").read_text()
    parts = []
    for entry in OmegaConf.create(text).get("defaults") or ["_self_"]:
        if entry == "_self_":
            parts.append(f"# ---- {label}\n" + _DEFAULTS_BLOCK.sub("", text).strip("\n"))
        elif isinstance(entry, str):
            parts += _config_parts(conf, entry, f"shared keys ({entry}.yaml)")
        else:
            group, choice = next(iter(entry.items()))
            parts.append(_group_text(conf, str(group), choice))
    return parts


def group_options(conf: Traversable, group: str) -> list[str]:
    return sorted(p.name[: -len(".yaml")] for p in (conf / group).iterdir() if p.name.endswith(".yaml"))


def _group_text(conf: Traversable, group: str, choice: str | None) -> str:
    header = f"# ---- group {group}=<{' | '.join(group_options(conf, group))}> (default: {choice or 'none'})"
    if choice is None:
        return header
    body = (conf / group / f"{choice}.yaml").read_text().strip("\n")
    if body.startswith(_GLOBAL_PACKAGE):  # e.g. a profile: it sets top-level keys, not keys under the group
        return f"{header}; it sets these top-level keys\n{body[len(_GLOBAL_PACKAGE) :].strip()}"
    return f"{header}; override one key with {group}.KEY=...\n{group}:\n{indent(body, '  ')}"
