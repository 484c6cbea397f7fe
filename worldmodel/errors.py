"""Errors the world-model library raises for bad input; the CLI prints them as one line."""


class WorldModelError(Exception):
    """Base class: the message alone tells the user what to change."""


class InputError(WorldModelError, ValueError):
    """A tensor, file or config given to the library has the wrong shape, dtype, range or content."""


class MissingWeightsError(WorldModelError, FileNotFoundError):
    """Pretrained weights are neither in the local cache nor at the given path (nothing is downloaded offline)."""


class OutputError(WorldModelError, OSError):
    """A file could not be written (disk full, read-only filesystem, no permission); nothing half-written remains."""
