"""User-facing errors: one clear line that names the field and the fix."""


class WmevalError(Exception):
    """An error caused by the user's input or environment, not by a bug.

    The CLI prints it as a single line (no traceback unless `verbose=true`) and exits with code 2.
    Library code raises it (or a subclass) wherever the message alone tells the user what to change.
    """


class ConfigError(WmevalError, ValueError):
    """A config value is missing, misspelled or out of range."""
