"""Every key of every command, given a wrong type, an empty value, a negative number, a missing path and a
file where a folder belongs (or the reverse): refused in one line naming the key, before the command starts.

The cases come from the composed configs, so a key added to a YAML is fuzzed without touching this file (a
key with a null default must first say what it holds in `wmeval.config_checks.KEY_KINDS`). Each case runs
the same checks `wmeval <command>` runs before it starts (`check_override_types`, `check_values`); a sample
goes through `wmeval.cli.main` end to end (per command, each kind of bad value on the first key that takes it),
with the commands replaced by one that fails if it is reached.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from wmeval.cli import COMMANDS, main
from wmeval.config_checks import check_override_types, check_values, key_kind, leaves
from wmeval.errors import ConfigError, WmevalError


@pytest.fixture(scope="module")
def references():
    with initialize_config_module(config_module="wmeval.conf", version_base=None):
        return {command: compose(config_name=command) for command in COMMANDS}


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "dir").mkdir()
    (root / "file").write_text("not a folder")
    return {"root": root, "dir": root / "dir", "file": root / "file", "missing": root / "missing"}


def mutations(kind: str, places: dict[str, Path]) -> dict[str, str]:
    """name -> the bad value (as typed on the command line) for a key of this kind."""
    bad = {"wrong_type": "{a: 1}" if kind in ("list", "text_or_list", "dirs") else "[1, 2]", "empty": ""}
    if kind in ("count", "amount", "signed", "signed_or_list", "count_or_all", "count_or_list", "bool"):
        bad["wrong_type"] = "maybe" if kind == "bool" else "abc"
    if kind in ("count", "amount", "count_or_all", "count_or_list"):
        bad["negative"] = "-1"
    if kind == "count_or_list":
        bad["negative_in_list"] = "[1, -8]"
    missing, a_file, a_dir = places["missing"], places["file"], places["dir"]
    if kind in ("dir", "file", "path"):
        bad["missing_path"] = str(missing)
    if kind == "dirs":
        bad["missing_path"] = f"[{missing}]"
        bad["file_for_folder"] = f"[{a_file}]"
    if kind in ("dir", "out_dir"):
        bad["file_for_folder"] = str(a_file)
    if kind in ("file", "out_file"):
        bad["folder_for_file"] = str(a_dir)
    if kind == "out_dir":
        bad["missing_path"] = str(a_file / "run")  # cannot be created: a file is in the way
    return bad


def _required(reference, places: dict[str, Path]) -> list[str]:
    """Valid values for the `???` keys (existing folders: nothing reads them, the checks come first)."""
    folder = places["dir"]
    return [
        f"{key}=[{folder}]" if key_kind(key, value) == "dirs" else f"{key}={folder}"
        for key, value in leaves(reference)
        if value == "???"
    ]


def _apply(reference, overrides: list[str]):
    """What Hydra's compose does with `key=value` overrides of existing keys, without its start-up cost."""
    cfg = reference.copy()
    OmegaConf.set_struct(cfg, False)
    for override in OverridesParser.create().parse_overrides(overrides):
        OmegaConf.update(cfg, override.key_or_group, override.value(), merge=False)
    return cfg


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_key_refuses_every_bad_value(command, references, places):
    reference = references[command]
    required = _required(reference, places)
    check_values(_apply(reference, required), reference)  # the defaults themselves pass
    unlisted = [key for key, value in leaves(reference) if key_kind(key, value) is None]
    assert not unlisted, f"keys with a null default need a kind in KEY_KINDS: {unlisted}"
    escaped, tried = [], 0
    for key, default in leaves(reference):
        for name, bad in mutations(key_kind(key, default), places).items():
            override = f"{key}={bad}"
            tried += 1
            try:
                cfg = _apply(reference, [*required, override])
                check_override_types(cfg, reference, [override])
                check_values(cfg, reference)
            except ConfigError as err:
                message = str(err)
                if "\n" in message or key not in message:
                    escaped.append(
                        f"{override} ({name}): refused without naming the key in one line: {message}"
                    )
                continue
            escaped.append(f"{override} ({name}): accepted")
    assert not escaped, "\n".join(escaped)
    assert tried >= 2 * len(leaves(reference))
    assert sorted(p.name for p in places["root"].iterdir()) == ["dir", "file"]  # nothing written


def _sample(reference, places: dict[str, Path]) -> dict[str, tuple[str, str]]:
    """Per kind of bad value, the first key of the command that can take it: name -> (key, bad value)."""
    sample: dict[str, tuple[str, str]] = {}
    for key, default in leaves(reference):
        for name, bad in mutations(key_kind(key, default), places).items():
            sample.setdefault(name, (key, bad))
    return sample


@pytest.mark.parametrize("command", list(COMMANDS))
def test_refusals_through_the_cli_are_one_line_and_write_nothing(
    command, references, places, capsys, monkeypatch, tmp_path
):
    for name, (module, _) in COMMANDS.items():  # reaching a command at all is the failure
        fake = types.ModuleType(module)
        fake.run = lambda cfg, name=name: pytest.fail(f"wmeval {name} started despite a bad value")
        monkeypatch.setitem(sys.modules, module, fake)
    monkeypatch.chdir(tmp_path)
    reference = references[command]
    sample = _sample(reference, places)
    assert {"wrong_type", "empty"} <= set(sample)
    for name, (key, bad) in sample.items():
        argv = [command, *_required(reference, places), f"{key}={bad}"]
        if "out" in reference and key != "out":
            argv.append(f"out={tmp_path / 'run'}")
        assert main(argv) == 2, f"{key}={bad} ({name}) was not refused"
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and len(err.splitlines()) == 1 and key in err, f"{name}: {err}"
        assert list(tmp_path.iterdir()) == [], f"{key}={bad} ({name}) left files behind"
    assert sorted(p.name for p in places["root"].iterdir()) == ["dir", "file"]


def test_the_cli_sample_covers_every_kind_of_bad_value(references, places):
    names = {name for reference in references.values() for name in _sample(reference, places)}
    assert {"wrong_type", "empty", "negative", "missing_path", "file_for_folder", "folder_for_file"} <= names


def test_a_key_listed_in_the_table_is_still_judged_by_it(references):
    with pytest.raises(WmevalError, match="heldout='half' must be a number of episodes, all, or null"):
        check_values(_apply(references["rank"], ["heldout=half"]), references["rank"])
