"""Where a training run reports its numbers besides `train_summary.json`: a loss-curve PNG in `out/` always, and
TensorBoard or Weights & Biases when asked (`logger=tensorboard|wandb`).

Both trackers are optional packages: a missing one is a one-line error naming the install, raised before any
work starts. W&B runs in offline mode by default (files under `out/wandb`, `wandb sync` uploads them), so
training never needs network or an account unless `wandb.mode=online` is set.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from wmeval.errors import ConfigError
from wmeval.io import atomic_path

LOGGERS = ("tensorboard", "wandb")
LOSS_CURVE = "loss.png"

log = logging.getLogger(__name__)


class Tracker:
    """Scalars per step to TensorBoard or W&B; `log` drops anything that is not a number.

    The package is imported at construction (so a missing one fails before any work), the writer or run is
    opened at the first `log` (so a run that fails before training leaves nothing open)."""

    def __init__(self, kind: str, out: Path, config: Mapping[str, Any], wandb_options: Mapping[str, Any]):
        if kind == "tensorboard":
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:
                raise ConfigError(
                    "logger=tensorboard needs the tensorboard package: pip install 'wmeval[tensorboard]' "
                    "(or logger=null)"
                ) from err
            self._open = lambda: SummaryWriter(log_dir=str(out / "tensorboard"))
        elif kind == "wandb":
            try:
                import wandb
            except ImportError as err:
                raise ConfigError(
                    "logger=wandb needs the wandb package: pip install wandb (or logger=null)"
                ) from err
            self._open = lambda: wandb.init(dir=str(out), config=dict(config), **dict(wandb_options))
        else:
            raise ConfigError(f"logger={kind!r} is unknown: choose null, {' or '.join(LOGGERS)}")
        self.kind = kind
        self._backend: Any = None

    def log(self, step: int, values: Mapping[str, Any]) -> None:
        numbers = {
            k: float(v) for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)
        }
        if self._backend is None:
            self._backend = self._open()
        if self.kind == "tensorboard":
            for key, value in numbers.items():
                self._backend.add_scalar(key, value, step)
        else:
            self._backend.log(numbers, step=step)

    def close(self) -> None:
        if self._backend is None:
            return
        if self.kind == "tensorboard":
            self._backend.close()
        else:
            self._backend.finish()
        self._backend = None


def make_tracker(
    kind: str | None, out: Path, config: Mapping[str, Any], wandb_options: Mapping[str, Any]
) -> Tracker | None:
    """The tracker `logger=` asks for, or None for `logger=null`."""
    if kind is None or str(kind).lower() in ("", "null", "none"):
        return None
    return Tracker(str(kind), out, config, wandb_options)


def write_loss_curve(
    path: Path, loss: Sequence[Sequence[float]], evals: Sequence[Mapping[str, Any]] = ()
) -> None:
    """Training loss over steps (log scale) and, when the run measured it, held-out PSNR beside copy-last."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not loss:
        return
    psnr = [(e["step"], e["psnr_model"], e.get("psnr_copy_last")) for e in evals if "psnr_model" in e]
    fig, axes = plt.subplots(1, 2 if psnr else 1, figsize=(10 if psnr else 5, 3.5), squeeze=False)
    steps, values = zip(*[(s, v) for s, v in loss], strict=True)
    axes[0, 0].plot(steps, values)
    axes[0, 0].set(xlabel="step", ylabel="training loss", yscale="log", title="loss")
    if psnr:
        s, model, copy = zip(*psnr, strict=True)
        axes[0, 1].plot(s, model, "o-", label="world model")
        if all(c is not None for c in copy):
            axes[0, 1].plot(s, copy, "s--", label="copy last frame")
        axes[0, 1].set(xlabel="step", ylabel="PSNR (dB)", title="held-out open loop")
        axes[0, 1].legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
