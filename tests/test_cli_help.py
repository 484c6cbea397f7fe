"""`wmeval <command> --help` works for every command, even those with required keys, and documents each key with
its YAML comment and each config group with its options."""

from __future__ import annotations

import pytest

from wmeval.cli import COMMANDS, main


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_exits_0_without_required_keys(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"wmeval {command}: {COMMANDS[command][1]}")
    assert "seed: 0          # every random choice of the command derives from this seed" in text


def test_help_shows_required_keys_their_comments_and_group_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["metrics", "--help"]) == 0
    text = capsys.readouterr().out
    assert (
        "world_models: ???" in text and "# one world model, as a list" in text
    )  # required, with what to pass
    assert main(["train", "--help", "data=x"]) == 0
    text = capsys.readouterr().out
    assert "# ---- group encoder=<" in text and "| siglip2 |" in text and "(default: pixels)" in text
    assert "encoder:\n  # Lossless space-to-depth" in text  # the default option's keys, under the group
    assert "clips:\n  n_frames: 6             # frames per training clip" in text


def test_train_help_names_every_dit_size_and_each_composes(capsys: pytest.CaptureFixture[str]) -> None:
    """`dit.size` picks a preset of `DIT_SIZES`: the help lists them all and each one is accepted."""
    from omegaconf import OmegaConf

    from wmeval.cli import compose_config
    from worldmodel.dit import DIT_SIZES

    assert main(["train", "--help"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.strip().startswith("size:"))
    comment = line.split("#", 1)[1]
    assert [w for w in comment.replace("|", " ").split() if w in DIT_SIZES] == list(DIT_SIZES)
    for size in DIT_SIZES:
        cfg = compose_config("train", ["data=x", f"dit.size={size}"])
        assert OmegaConf.select(cfg, "dit.size") == size
