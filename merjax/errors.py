"""Exceptions that several layers of merjax raise and the command lines report in one line."""

from __future__ import annotations


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGINT) during long work, with what was done and how to go on: the command
    lines print the message alone and exit with 130."""
