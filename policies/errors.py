"""Errors the policies package raises for bad input; the CLI prints them as one line."""


class PolicyError(ValueError):
    """A policy name, config, checkpoint or returned action is unusable; the message says how to fix it."""
