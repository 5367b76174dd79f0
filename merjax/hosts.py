"""Several processes, one program: JAX's multi-process runtime as merjax uses it.

Every process runs the same experiment. Training is one SPMD program over every process's
devices (the run axis sharded over the global mesh, :mod:`merjax.train.loso`); everything else
is decided here:

- :func:`initialize`: ``jax.distributed.initialize`` with JAX's own arguments (or a cluster's
  auto-detection), gloo collectives on CPU, short timeouts, and a line saying where each process
  is;
- :func:`is_main`: process 0 owns every file (the workdir lock, reports, ``metrics.jsonl``, model
  folders, the synthetic database, the flow cache); :func:`first` lets it build what the others
  then read, :func:`main_only` writes with the others waiting at a barrier;
- :func:`gather`: an array spread over processes, read back whole on every process;
- :func:`agree` and :func:`check_shared`: refusals at start, in one line, of processes given
  another config or data, or a workdir that is not the same folder for all;
- :func:`lost_process`: a collective that failed because another process died, said in one line.

With one process (the default) every function is the single-process behaviour, at no cost.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import jax
import numpy as np

from merjax import files

T = TypeVar("T")

# How long a process waits for the others at start, and how soon the coordinator declares a
# silent process dead (JAX's defaults, 300 s and 100 s, leave a dead run hanging for minutes).
INIT_TIMEOUT_S = 60
HEARTBEAT_TIMEOUT_S = 20
MARKER = ".merjax.shared"
_MESSAGE_BYTES = 4096

_peers: list[tuple[int, str]] = []  # (pid, host) of every process, by process index


class HostsError(ValueError):
    """The processes of one run cannot work together (one line says why)."""


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    timeout_s: int = INIT_TIMEOUT_S,
) -> str:
    """Joins this process to a multi-process run; returns the line that says where it is.

    With the three settings (JAX's names: ``host:port`` of process 0, how many, which one this
    is) it starts anywhere; without them JAX detects the cluster (Slurm, Open MPI, Kubernetes).
    Call it before anything else touches JAX: ``train_loso`` from Python runs over every
    process's devices once it has been called."""
    given = [coordinator_address, num_processes, process_id]
    if any(v is not None for v in given) and any(v is None for v in given):
        raise ValueError(
            "--coordinator_address, --num_processes and --process_id go together (or none of "
            "them, for a cluster's own detection)"
        )
    if num_processes is not None and not 0 <= process_id < num_processes:
        raise ValueError(f"--process_id {process_id} is not in 0..{num_processes - 1}")
    if coordinator_address is not None:
        # JAX aborts the process (no exception) when the coordinator cannot be reached: look
        # first, and say it in one line.
        _reach(coordinator_address, process_id, timeout_s)
    # gloo: the CPU collectives that work between processes (the default does not).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address,
            num_processes,
            process_id,
            initialization_timeout=timeout_s,
            heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S,
        )
    except (RuntimeError, ValueError) as e:
        first = _one_line(e)
        if coordinator_address is None:
            raise HostsError(
                f"--distributed found no cluster to join (Slurm, Open MPI, Kubernetes: {first}); "
                "on other machines give --coordinator_address, --num_processes and --process_id"
            ) from None
        where = f" at {coordinator_address}"
        raise HostsError(
            f"the processes did not meet{where} within {timeout_s} s ({first[:200]}); start "
            "every process with the same --coordinator_address and --num_processes"
        ) from None
    everyone = _gather_text(f"{os.getpid()}@{socket.gethostname()}")
    _peers[:] = [(int(p.partition("@")[0]), p.partition("@")[2]) for p in everyone]
    return where_am_i()


def _reach(address: str, process_id: int, timeout_s: float) -> None:
    """Checks, before JAX tries, that process 0 can listen at ``address`` (its port is free) or
    that another process can reach it there within ``timeout_s``; a HostsError otherwise."""
    import time

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise HostsError(f"--coordinator_address {address!r}: expected host:port")
    host = host.strip("[]")
    if process_id == 0:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            try:
                s.bind(("", int(port)))
            except OSError as e:
                raise HostsError(
                    f"--coordinator_address {address}: process 0 cannot listen on port {port} "
                    f"({os.strerror(e.errno).lower() if e.errno else e}); choose another port"
                ) from None
        return
    try:
        socket.getaddrinfo(host, int(port))
    except OSError:
        raise HostsError(f"--coordinator_address {address}: no host {host!r}") from None
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise HostsError(
                    f"--coordinator_address {address}: process 0 did not answer within "
                    f"{timeout_s:.0f} s; start it (--process_id=0) on {host}"
                ) from None
            time.sleep(0.5)


def count() -> int:
    """How many processes run this program (1 unless JAX's distributed runtime is on)."""
    return jax.process_count() if jax.distributed.is_initialized() else 1


def index() -> int:
    return jax.process_index() if jax.distributed.is_initialized() else 0


def is_main() -> bool:
    """Whether this process writes the files (process 0, or the only process)."""
    return index() == 0


def where_am_i() -> str:
    local = jax.local_devices()
    return (
        f"process {index()} of {count()} (pid {os.getpid()} on {socket.gethostname()}): "
        f"{len(local)} local {local[0].platform} device(s) of {jax.device_count()}"
    )


def barrier(name: str) -> None:
    """Every process waits here until all have arrived (no-op with one process)."""
    if count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def gather(x: Any) -> np.ndarray:
    """``x`` whole, as numpy, on every process: an array spread over processes is gathered
    (``process_allgather``), a local one is read."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def smallest(n: int) -> int:
    """The smallest ``n`` over the processes (a plan every process can run), on every one."""
    if count() == 1:
        return n
    from jax.experimental import multihost_utils

    return int(np.min(multihost_utils.process_allgather(np.array([n], np.int64))))


def _encode(text: str) -> np.ndarray:
    data = text.encode()[: _MESSAGE_BYTES - 1]
    return np.frombuffer(data.ljust(_MESSAGE_BYTES, b"\0"), np.uint8)


def _decode(row: np.ndarray) -> str:
    return bytes(np.asarray(row, np.uint8)).rstrip(b"\0").decode(errors="replace").strip()


def _gather_text(text: str) -> list[str]:
    """Every process's ``text``, by process index, on every process."""
    from jax.experimental import multihost_utils

    return [_decode(row) for row in np.asarray(multihost_utils.process_allgather(_encode(text)))]


def broadcast_text(text: str) -> str:
    """Process 0's ``text`` on every process."""
    if count() == 1:
        return text
    from jax.experimental import multihost_utils

    return _decode(multihost_utils.broadcast_one_to_all(_encode(text)))


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def first(fn: Callable[[], T], what: str) -> T:
    """``fn()`` on process 0, then (when it succeeded) on the others, which find what it built
    (a cache, the synthetic database) and only read. A failure on process 0 stops every process:
    it raises its own error, the others a HostsError naming it."""
    out = main_only(fn, what)
    return out if is_main() else fn()


def main_only(fn: Callable[[], T], what: str) -> T | None:
    """``fn()`` on process 0 alone (a file it owns), the others waiting until it is done; a
    failure there stops every process. Returns None on the others."""
    if count() == 1:
        return fn()
    out, failed = None, ""
    if is_main():
        try:
            out = fn()
        except Exception as e:
            failed = f"{type(e).__name__}: {_one_line(e)}"
            broadcast_text(failed)
            raise
    failed = broadcast_text(failed)
    if failed:
        raise HostsError(f"process 0 stopped while {what}: {failed}")
    return out


@contextlib.contextmanager
def on_main(cm: contextlib.AbstractContextManager, what: str) -> Iterator[None]:
    """Enters ``cm`` (a lock) on process 0 alone; the others go on only once it holds it."""
    if count() == 1:
        with cm:
            yield
        return
    main_only(cm.__enter__, what)
    try:
        yield
    finally:
        if is_main():
            cm.__exit__(None, None, None)


def agree(value: str, what: str) -> None:
    """Refuses, on every process, a run whose processes hold different ``value`` s (a digest of
    the config, or of the data), naming the processes that differ from process 0."""
    if count() == 1:
        return
    values = _gather_text(value)
    other = [i for i, v in enumerate(values) if v != values[0]]
    if other:
        raise HostsError(
            f"process(es) {', '.join(map(str, other))} started with other {what} than process 0: "
            "start every process with the same command (only --process_id differs)"
        )


def check_shared(folder: str | Path, flag: str) -> None:
    """Refuses, in one line, a ``folder`` that the processes do not see as the same folder:
    process 0 writes a marker with a fresh token, the others look for it. Every file is written
    once by process 0 and read by the others, so they need one shared disk."""
    if count() == 1:
        return
    folder = Path(folder)
    token = secrets.token_hex(8) if is_main() else ""
    token = broadcast_text(token)
    marker = folder / MARKER
    if is_main():
        files.write_text(marker, token)
    barrier("merjax marker")  # a barrier's name must be the same on every process
    try:
        seen = marker.read_text().strip() == token
    except OSError:
        seen = False
    from jax.experimental import multihost_utils

    flags = np.asarray(multihost_utils.process_allgather(np.array([seen], np.int32))).ravel()
    blind = [i for i, f in enumerate(flags) if not f]
    if blind:
        raise HostsError(
            f"{flag} {str(folder)!r} is not the same folder for every process (process(es) "
            f"{', '.join(map(str, blind))} do not see process 0's {MARKER} there): multi-process "
            "runs need a shared disk (NFS, Lustre, ...), mounted at the same path on every host"
        )


def lost_process(error: BaseException) -> str | None:
    """The one line owed for ``error`` when it is a collective that failed because another
    process died or stopped answering (None for any other error): which process, where known
    (a peer on this host whose pid is gone), and that the checkpoints already written resume."""
    if count() == 1 or not isinstance(error, jax.errors.JaxRuntimeError):
        return None
    text = str(error)
    signs = (
        "Gloo",
        "Connection closed",
        "heartbeat",
        "Barrier failed",
        "DEADLINE_EXCEEDED",
        "NCCL",
        "UNAVAILABLE",
    )
    if not any(s in text for s in signs):
        return None
    here = socket.gethostname()
    gone = [
        f"process {i} (pid {pid} on {host})"
        for i, (pid, host) in enumerate(_peers)
        if i != index() and host == here and not files.process_alive(pid)
    ]
    who = ", ".join(gone) if gone else "another process (on another host, or not answering)"
    return (
        f"process {index()}: lost {who}; stopping. Checkpoints already written are kept: start "
        "every process again with the same command to resume"
    )


@contextlib.contextmanager
def one_line_when_lost() -> Iterator[None]:
    """A collective that failed because another process died becomes one line and exit code 1
    (:func:`lost_process`); every other error passes."""
    try:
        yield
    except Exception as e:
        line = lost_process(e)
        if line is None:
            raise
        import sys

        print(f"error: {line}", file=sys.stderr)
        raise SystemExit(1) from None
