"""What Hydra does not check in a command's config: misspelled keys get a suggestion, required keys must be
given, and `key=value` overrides must keep the type of the key's default (so `episodes=abc` fails here, with
the key named, instead of as a TypeError deep inside the command)."""

from __future__ import annotations

import difflib
import re

from omegaconf import DictConfig, OmegaConf

from wmeval.errors import ConfigError

_NOT_IN_STRUCT = re.compile(r"full_key: (\S+)")
_GROUP_OPTIONS = re.compile(r"Available options in '([^']+)':\n((?:\t.+\n?)+)")

#: Integer keys that also take `auto`, in commands that have the key giving it a meaning
#: (`wmeval rank episodes=auto`: as many episodes as `precision` needs).
ACCEPTS_AUTO = {"episodes": "precision"}


def composition_message(command: str, reference: DictConfig, err: Exception) -> str:
    """One line for a Hydra composition error: the key, the closest known key, and what is accepted."""
    cause = err.__cause__ or err
    text = str(cause).strip()
    first = text.splitlines()[0] if text else str(err)
    unknown = _NOT_IN_STRUCT.search(text)
    if unknown:
        return unknown_key_message(command, reference, unknown.group(1))
    options = _GROUP_OPTIONS.search(str(err))
    if options:
        names = ", ".join(line.strip() for line in options.group(2).splitlines())
        return f"{first}: choose {options.group(1)}= one of {names}"
    return f"{first} (known keys for `wmeval {command}`: {', '.join(sorted(reference.keys()))})"


def unknown_key_message(command: str, reference: DictConfig, key: str) -> str:
    """Name the unknown key, suggest the closest one beside it, and list the keys at that level."""
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(reference, parent) if parent else reference
    known = sorted(node.keys()) if isinstance(node, DictConfig) else []
    close = difflib.get_close_matches(leaf, known, n=1)
    prefix = f"{parent}." if parent else ""
    hint = f"did you mean {prefix}{close[0]}? " if close else ""
    where = f"under {parent} " if parent else ""
    return f"unknown key '{key}': {hint}(known keys {where}for `wmeval {command}`: {', '.join(known)})"


def check_required(command: str, cfg: DictConfig) -> None:
    """Keys marked `???` in the command's YAML must be given on the command line."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        given = " ".join(f"{k}=..." for k in missing)
        raise ConfigError(
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} required: pass {given} "
            f"(`wmeval {command} --help` lists every key)"
        )


def check_override_types(cfg: DictConfig, reference: DictConfig, overrides: list[str]) -> None:
    """Each `key=value` override must have the type of the key's default (null and string defaults take any)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for override in OverridesParser.create().parse_overrides(overrides):
        if override.is_delete():
            continue
        key = override.key_or_group
        default = OmegaConf.select(reference, key, default=None)
        value = OmegaConf.select(cfg, key, default=None)
        if value == "auto" and ACCEPTS_AUTO.get(key, "") in reference:
            continue
        if isinstance(default, DictConfig) and not isinstance(value, DictConfig):
            keys = ", ".join(default.keys())
            raise ConfigError(
                f"{key}={_show(value)}: {key} holds keys ({keys}); set one of them, e.g. {key}.KEY=..."
            )
        expected = _expected(default, value)
        if expected:
            raise ConfigError(
                f"{key}={_show(value)} must be {expected}, like its default {key}={_show(default)}"
            )


def _expected(default: object, value: object) -> str | None:
    """What `value` should be, given its key's default; None when it fits (null and string defaults take any)."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(default, int):
        return None if number and isinstance(value, int) else "an integer"
    if isinstance(default, float):
        return None if number else "a number"
    return None


def _show(value: object) -> str:
    """A value as it is written on the command line."""
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, str) else str(value)
