"""Exceptions that several layers of merjax raise and the command lines report in one line."""

from __future__ import annotations


class DataError(ValueError):
    """Bad or missing input data (a file, a row, a frame, a flag's value); the message names
    it and the way out. The loaders, inference, the command lines and spotting raise it."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGINT) during long work, with what was done and how to go on: the command
    lines print the message alone and exit with 130."""
