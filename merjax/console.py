"""What the command lines print: merjax's progress and results, not its libraries' chatter.

absl turns every logger up to INFO once flags are parsed, so orbax reports each checkpoint
write in a dozen lines and jax its search for a TPU. :func:`setup` keeps third-party loggers at
WARNING (``--log_level=info`` or absl's ``--verbosity`` brings them back) and prints merjax's own
log messages as plain lines.
"""

from __future__ import annotations

import logging
import sys

LEVELS = ("debug", "info", "warning", "error")


class _Plain(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        return text if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {text}"


def setup(level: str | None = None, *, absl_verbosity_given: bool = False) -> None:
    """Quiet third-party logging (unless ``level`` or absl's ``--verbosity`` asks for more) and
    merjax's messages as plain lines on stdout."""
    from absl import logging as absl_logging

    if level is not None:
        absl_logging.set_verbosity(level)
    elif not absl_verbosity_given:
        absl_logging.set_verbosity(absl_logging.WARNING)
        # After a failed checkpoint write (a full disk), orbax's pending asyncio tasks report
        # "Task exception was never retrieved" when they are collected at exit, after merjax
        # has said what failed in one line.
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    ours = logging.getLogger("merjax")
    if not any(getattr(h, "_merjax", False) for h in ours.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(_Plain())
        handler._merjax = True
        ours.addHandler(handler)
    ours.setLevel(logging.DEBUG if level == "debug" else logging.INFO)
    ours.propagate = False  # not again through absl's handler
