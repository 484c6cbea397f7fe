"""`wmeval <command> [key=value ...]`: one entry point, Hydra-composed configs from `wmeval/conf/<command>.yaml`."""

from __future__ import annotations

import importlib
import re
import sys
import traceback

from omegaconf import DictConfig, OmegaConf

from policies.errors import PolicyError
from wmeval.config_checks import check_override_types, check_required, check_values, composition_message
from wmeval.errors import ConfigError, WmevalError
from wmeval.io import remove_empty_out_dirs
from wmeval.logs import detach_run_log, error_to_run_log, setup_console
from worldmodel.errors import WorldModelError

# Errors whose message is the whole story for the user: printed as one line, exit code 2.
USER_ERRORS = (WmevalError, WorldModelError, PolicyError)

# name -> (module with `run(cfg) -> dict | None`, one-line description). Modules import lazily: `wmeval --help`
# stays fast and a broken optional dependency only affects the command that needs it.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "wmeval.commands.demo",
        "the embedded default: record -> rank -> report, offline on CPU, minutes",
    ),
    "record": (
        "wmeval.commands.record",
        "roll a policy (or the policy family) in a real env into a LeRobotDataset",
    ),
    "measure": (
        "wmeval.commands.measure",
        "measure real success of a policy (or the family) in the real env",
    ),
    "train-estimator": (
        "wmeval.commands.train_estimator",
        "train the PushT state estimator on rendered frames",
    ),
    "train": (
        "wmeval.commands.train",
        "train a DiT world model on a LeRobotDataset (single process or torchrun)",
    ),
    "train-adapter": (
        "wmeval.commands.train_adapter",
        "train an S-VAE or MLP adapter on an encoder's latents of a dataset",
    ),
    "train-encoder": (
        "wmeval.commands.train_encoder",
        "train a small latent space (conv_vae or object_tokens) on a dataset's frames",
    ),
    "convert-rlds": (
        "wmeval.commands.convert_rlds",
        "convert Bridge V2 / SOAR / other RLDS episodes into a local LeRobotDataset (extra: .[rlds])",
    ),
    "bench": ("wmeval.commands.bench", "performance benchmarks of the hot paths, as ratios -> bench.json"),
    "rank": ("wmeval.commands.rank", "rank policies in the real env and in world model(s); fidelity report"),
    "metrics": (
        "wmeval.commands.metrics",
        "video, PCK, state, controllability, IDM and probe metrics of a world model",
    ),
    "view": ("wmeval.commands.view", "open a .rrd in the Rerun viewer (or serve it on localhost)"),
}

# Commands whose first bare argument (no `=`) is shorthand for one key: `wmeval view x.rrd` = `path=x.rrd`.
POSITIONAL: dict[str, str] = {"view": "path"}


def compose_config(command: str, overrides: list[str]) -> DictConfig:
    """Compose `conf/<command>.yaml` with `key=value` overrides; unknown or mistyped keys are errors, not silently
    added, and required keys must be given."""
    from hydra import compose, initialize_config_module
    from hydra.errors import ConfigCompositionException, OverrideParseException

    with initialize_config_module(config_module="wmeval.conf", version_base=None):
        reference = compose(config_name=command)
        try:
            cfg = compose(config_name=command, overrides=overrides)
        except (ConfigCompositionException, OverrideParseException) as err:
            raise ConfigError(composition_message(command, reference, err)) from err
    check_override_types(cfg, reference, overrides)
    check_values(cfg, reference)
    check_required(command, cfg)
    OmegaConf.set_struct(cfg, True)
    return cfg


def positional_to_override(command: str, overrides: list[str]) -> list[str]:
    """Rewrite a leading bare argument as `key='value'` (quoted, so any path stays a string)."""
    key = POSITIONAL.get(command)
    if not key or not overrides or "=" in overrides[0] or overrides[0].startswith("-"):
        return overrides
    value = re.sub(r"(\\+)('|$)", lambda m: m.group(1) * 2 + m.group(2), overrides[0]).replace("'", "\\'")
    return [f"{key}='{value}'", *overrides[1:]]


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: wmeval <command> [key=value ...]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {desc}" for name, (_, desc) in COMMANDS.items()]
    lines += [
        "",
        "Every command takes out=DIR, seed=S, overwrite=true|false and verbose=true|false.",
        "`wmeval <command> --help` prints every key of the command with its default and what it means,",
        "and the config groups (e.g. encoder=siglip2) with their options.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    command, overrides = argv[0], positional_to_override(argv[0], argv[1:])
    if command not in COMMANDS:
        print(f"error: unknown command '{command}'; known commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    verbose = any(o.strip().lower() in ("verbose=true", "verbose=1") for o in overrides)
    setup_console(verbose, " ".join(["wmeval", *argv]))
    try:
        if any(o in ("-h", "--help") for o in overrides):
            from wmeval.cli_help import command_help

            print(command_help(command, COMMANDS[command][1]), end="")
            return 0
        cfg = compose_config(command, overrides)
        if cfg.get("threads"):
            import torch

            torch.set_num_threads(int(cfg.threads))
        module = importlib.import_module(COMMANDS[command][0])
        module.run(cfg)
    except USER_ERRORS as err:
        error_to_run_log(str(err))
        remove_empty_out_dirs()
        if verbose:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        error_to_run_log("interrupted")
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        detach_run_log()
    return 0


if __name__ == "__main__":
    sys.exit(main())
