"""What Hydra does not check in a command's config: misspelled keys get a suggestion, required keys must be
given, and `key=value` overrides must keep the type of the key's default (so `episodes=abc` fails here, with
the key named, instead of as a TypeError deep inside the command)."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from wmeval.errors import ConfigError

_NOT_IN_STRUCT = re.compile(r"full_key: (\S+)")
_GROUP_OPTIONS = re.compile(r"Available options in '([^']+)':\n((?:\t.+\n?)+)")

#: Integer keys that also take `auto`, in commands that have the key giving it a meaning
#: (`wmeval rank episodes=auto`: as many episodes as `precision` needs).
ACCEPTS_AUTO = {"episodes": "precision", "workers": "workers"}

#: Old spellings of keys -> the key that replaced them (one world-model key, a list, across rank/demo/metrics).
RENAMED = {"world_model": "world_models", "wm": "world_models"}


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
    if RENAMED.get(leaf) in known:
        new = RENAMED[leaf]
        return f"'{key}' is now '{new}', a list: pass {new}=[DIR] (`wmeval {command} --help` lists every key)"
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
            example = f"{key}.{next(iter(default.keys()), 'KEY')}={_show(value)}"
            raise ConfigError(
                f"{key}={_show(value)}: {key} holds keys ({keys}); set one of them, e.g. {example}"
            )
        expected = None if key in KEY_KINDS else _expected(default, value)  # listed keys: check_values
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


# -- values -------------------------------------------------------------------------------------------------
# What a key holds when its default does not say (null defaults), which strings name local paths, and which
# numbers may be negative. Every other key is judged by its default: an integer or number default means zero or
# more, a string default means non-empty text, a list default means a list. `check_values` runs on every key
# of every command before the command starts, so a bad value costs nothing and leaves nothing on disk.
_DATA = (
    "pass a LeRobotDataset directory (record one with wmeval record out=DIR) or a Hub id in LeRobot's cache"
)
_WORLD_MODEL = "pass a world-model directory (the model/ of a wmeval train run), shipped or shipped_tokens"
_WEIGHTS = "pass the weights file, or null to look in the torch hub cache"
KEY_KINDS: dict[str, tuple[str, str]] = {
    "out": ("out_dir", "choose another out=DIR"),
    "cache": (
        "out_file",
        "pass a latent-cache .h5 file (built there when missing), or null for out/latents.h5",
    ),
    "data": ("dir", _DATA),
    "world_models": ("dirs", _WORLD_MODEL),
    "world_model": ("dir", _WORLD_MODEL),
    "init_from": ("path", "pass a world-model directory, a checkpoint directory or a training run directory"),
    "adapter.pretrained": (
        "dir",
        "pass a directory written by wmeval train-adapter (its adapter/) or a Hub id",
    ),
    "encoder.pretrained": (
        "dir",
        "pass an encoder directory (out/encoder of wmeval train-encoder) or a Hub id",
    ),
    "tokens.state_key": ("text_or_list", ""),
    "tokens.keep_encoder": (
        "dir",
        "pass an object_tokens encoder directory (out/encoder of wmeval train-encoder encoder=object_tokens)",
    ),
    "precision": ("amount", ""),
    "state.estimator": (
        "dir",
        "pass a directory written by wmeval train-estimator, or null for the shipped one",
    ),
    "video.weights.alexnet": ("file", _WEIGHTS),
    "video.weights.inception_v3": ("file", _WEIGHTS),
    "video.weights.r3d_18": ("file", _WEIGHTS),
    "path": ("file", "pass the .rrd written by `wmeval rank` (out/rollouts.rrd)"),
    "card": ("file", "pass a dataset card YAML file"),
    "rlds_dirs": ("dirs", "pass the RLDS dataset directories (the ones holding dataset_info.json)"),
    "policies": ("text_or_list", ""),
    "threads": ("count", ""),
    "workers": ("count", ""),
    "camera_keys": ("list", ""),
    "cameras": ("list", ""),
    "dit.max_frames": ("count", ""),
    "max_train_episodes": ("count", ""),
    "dit.patch_size": ("count_or_list", ""),
    "objective.shift": ("amount", ""),
    "objective.logit_mean": ("signed", ""),
    "clips.future_strides": ("list", ""),
    "action_norm.offset": ("signed_or_list", ""),
    "action_norm.scale": ("signed_or_list", ""),
    "eval.state_reader": ("text", ""),
    "judge": ("text", ""),
    "adapter.pixel_decoder.image_size": ("count", ""),
    "optim.warmup_steps": ("count", ""),
    "heldout": ("count_or_all", ""),
    "num_steps": ("count", ""),
    "controllability.search_dims": ("list", ""),
    "fps": ("amount", ""),
    "max_episodes": ("count", ""),
    "repo_id": ("text", ""),
    "logger": ("text", ""),
}
_WHAT = {
    "count": "an integer >= 0",
    "amount": "a number >= 0",
    "signed": "a number",
    "signed_or_list": "a number or a list of numbers",
    "bool": "true or false",
    "text": "non-empty text",
    "text_or_list": "non-empty text or a list",
    "list": "a list, e.g. [a,b]",
    "count_or_all": "a number of episodes, all, or null",
    "count_or_list": "an integer >= 0 or a list of them, e.g. [1,8]",
}
_PATHS = {"dir", "dirs", "file", "path", "out_dir", "out_file"}


def key_kind(key: str, default: object) -> str | None:
    """The kind of value `key` holds: from `KEY_KINDS`, else from its default (None: a null default not listed)."""
    if key in KEY_KINDS:
        return KEY_KINDS[key][0]
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "count"
    if isinstance(default, float):
        return "amount"
    if isinstance(default, str):
        return "text"
    if isinstance(default, ListConfig | list):
        return "list"
    return None


def leaves(cfg: DictConfig, prefix: str = "") -> list[tuple[str, object]]:
    """Every leaf of `cfg` as (dotted key, value), lists as plain lists and `???` as the string."""
    out: list[tuple[str, object]] = []
    for name in cfg.keys():
        key, node = f"{prefix}{name}", cfg._get_node(name)
        if isinstance(node, DictConfig):
            out += leaves(node, f"{key}.")
        elif isinstance(node, ListConfig):
            out.append((key, OmegaConf.to_container(node)))
        else:
            out.append((key, node._value()))
    return out


def check_values(cfg: DictConfig, reference: DictConfig) -> None:
    """Refuse a value that cannot be right for its key, whatever the command does with it (see `KEY_KINDS`)."""
    defaults = dict(leaves(reference))
    given = dict(leaves(cfg))
    for key in [*defaults, *(k for k in given if k not in defaults and k in KEY_KINDS)]:
        value = OmegaConf.select(cfg, key, default=None)
        if isinstance(value, DictConfig | ListConfig):  # a group of keys given where a value belongs
            value = OmegaConf.to_container(value)
        kind = key_kind(key, defaults.get(key))
        if value is None or value == "???" or kind is None:
            continue
        if value == "auto" and ACCEPTS_AUTO.get(key, "") in reference:
            continue
        if kind in _PATHS:
            _check_path(key, value, kind)
            continue
        if _fits(kind, value, key):
            continue
        default = defaults.get(key)
        like = f", like its default {key}={_show(default)}" if default is not None else ""
        raise ConfigError(f"{key}={_show(value)} must be {_WHAT[kind]}{like}")


def _fits(kind: str, value: object, key: str) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "count":
        return number and isinstance(value, int) and value >= 0
    if kind == "amount":
        return number and value >= 0
    if kind == "signed":
        return number
    if kind == "signed_or_list":
        return number or isinstance(value, list)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "text":
        return isinstance(value, str) and value != ""
    if kind == "text_or_list":
        return (isinstance(value, str) and value != "") or isinstance(value, list)
    if kind == "count_or_list":
        items = value if isinstance(value, list) else [value]
        return all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in items)
    if kind == "count_or_all":
        return value == "all" or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)
    # lists; an image size may also be one number (square)
    return isinstance(value, list) or (key.endswith("image_size") and number and value > 0)


def _check_path(key: str, value: object, kind: str) -> None:
    """Input paths must exist as the right kind when they look local; outputs must be creatable."""
    fix = KEY_KINDS[key][1]
    if kind == "dirs":
        if not isinstance(value, list):
            raise ConfigError(f"{key}={_show(value)} must be a list, e.g. {key}=[DIR]: {fix}")
        for item in value:
            _check_path(key, item, "dir")
        return
    if not isinstance(value, str) or value == "":
        raise ConfigError(f"{key}={_show(value)} must be a path: {fix}")
    path = Path(value).expanduser()
    if kind in ("out_dir", "out_file"):
        if kind == "out_dir" and path.is_file():
            raise ConfigError(f"{key}={path} is a file, not a directory: {fix}")
        if kind == "out_file" and path.is_dir():
            raise ConfigError(f"{key}={path} is a directory, not a file: {fix}")
        blocker = next((p for p in path.parents if p.is_file()), None)
        if blocker is not None:
            raise ConfigError(f"{key}={path} cannot be created (Not a directory): {blocker} is a file; {fix}")
        return
    local = path.is_absolute() or value.startswith((".", "~"))
    if not path.exists():
        if local:
            raise ConfigError(f"{key}={path} does not exist: {fix}")
        return  # a name such as `shipped` or a Hub id, resolved by the command
    if kind == "dir" and not path.is_dir():
        raise ConfigError(f"{key}={path} is a file, not a directory: {fix}")
    if kind == "file" and not path.is_file():
        raise ConfigError(f"{key}={path} is a directory, not a file: {fix}")
