"""What the command lines print: merjax's progress and results, not its libraries' chatter.

absl turns every logger up to INFO once flags are parsed, so orbax reports each checkpoint
write in a dozen lines and jax its search for a TPU. :func:`setup` keeps third-party loggers at
WARNING (``--log_level=info`` or absl's ``--verbosity`` brings them back) and prints merjax's own
log messages as plain lines.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is: it unwinds as Ctrl-C does, so every ``except
    KeyboardInterrupt`` that keeps work (a stream's CSV, a checkpoint) keeps it on SIGTERM too."""


@contextlib.contextmanager
def one_line_errors(keep_traceback: Callable[[BaseException], bool] = lambda e: False):
    """What a command line owes a user: an error merjax raised on purpose (bad data, flags,
    settings, a full disk, a diverged run) as one ``error:`` line and exit code 1; Ctrl-C as one
    line saying what was kept and exit code 130, SIGTERM the same with exit code 143 (128 + the
    signal, as a shell reports it). An error for which ``keep_traceback`` says so (a bug in the
    user's own experiment code) keeps its traceback, as does every error with
    ``MERJAX_TRACEBACK=1``."""
    terminated = {"yes": False}

    def on_term(signum, frame):
        terminated["yes"] = True
        raise Terminated("terminated: rerun the same command")

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_term) if main_thread else None
    try:
        yield
    except KeyboardInterrupt as e:
        if os.environ.get("MERJAX_TRACEBACK"):
            raise
        print(str(e) or "interrupted: rerun the same command", file=sys.stderr)
        sys.exit(128 + (signal.SIGTERM if terminated["yes"] else signal.SIGINT))
    except (ValueError, OSError, KeyError, FloatingPointError) as e:  # DataError: a ValueError
        if os.environ.get("MERJAX_TRACEBACK") or keep_traceback(e):
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def refuse_empty_flags(flag_values) -> None:
    """An empty value given on the command line (``--workdir=``, ``--seeds=``) is a mistake,
    usually an unset shell variable: refused, never read as the flag's default."""
    from absl import app

    for name in flag_values:
        flag = flag_values[name]
        if flag.present and isinstance(flag.value, (str, list)) and not flag.value:
            raise app.UsageError(f"--{name} is empty; give a value or leave the flag out")


class Transcript:
    """``<workdir>/console.log``: every progress line of a run, and merjax's warnings, appended
    with a header per run (what ran, when) and how the run ended, so the console of a run can be
    read after the terminal is gone. Appended, never replaced: an earlier run's lines stay."""

    NAME = "console.log"

    def __init__(self, workdir, progress: Callable[[str], None] | None, command: str | None = None):
        from pathlib import Path

        self.path = Path(workdir) / self.NAME
        self._progress = progress
        self._command = command
        self._file = None
        self._handler: logging.Handler | None = None

    def say(self, line: str) -> None:
        """The progress sink: the run's own, and the file."""
        if self._progress is not None:
            self._progress(line)
        self._write(line)

    def _write(self, line: str) -> None:
        if self._file is not None:
            self._file.write(line.rstrip("\n") + "\n")

    def __enter__(self) -> Transcript:
        import datetime
        import shlex

        self._file = open(self.path, "a", buffering=1)  # line-buffered: readable while it runs
        when = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        command = self._command or shlex.join(getattr(sys, "orig_argv", sys.argv))
        self._write(f"--- {when}: {command}")
        transcript = self

        class _ToFile(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                transcript._write(_Plain().format(record))

        self._handler = _ToFile(logging.WARNING)
        logging.getLogger("merjax").addHandler(self._handler)
        return self

    def __exit__(self, kind, error, tb) -> None:
        logging.getLogger("merjax").removeHandler(self._handler)
        if kind is None:
            self._write("--- finished")
        elif issubclass(kind, KeyboardInterrupt):
            self._write(f"--- stopped: {error or 'interrupted'}")
        else:
            self._write(f"--- error: {error}")
        self._file.close()
        self._file = None
