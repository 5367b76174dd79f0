"""Writing files so that nothing the user has is lost or half-written.

- :func:`write_bytes`, :func:`write_text`, :func:`write_json`, :func:`savez`: a temporary file
  beside the target, then a rename (atomic on POSIX), so a crash or a full disk leaves either the
  old file or the new one, never a piece.
- :func:`commit`: several files at once, all written to temporaries first and renamed only when
  every one is complete, so a run never leaves a mix of an old run's files and a new run's.
- :func:`replace_dir`: a folder built beside the target and swapped in when complete.
- :func:`new_dir` and :func:`written_once`: a folder built in a private temporary beside the
  target and renamed into place when complete; ``written_once`` is a cache keyed by a stamp,
  where writers that start together each build their own and the first to finish wins.
- :func:`move_aside`: renames a file or folder to a free ``<name>.<suffix>[.N]`` instead of
  deleting it.
- :class:`WorkdirLock`: one run per workdir (``fcntl.flock`` on ``<workdir>/.merjax.lock``).
- :func:`writable_dir`: a folder checked writable before any work, named by its flag.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np


def writable_dir(path: str | Path, flag: str) -> Path:
    """``path`` as a folder we can write in (made if missing), checked by writing a scratch file
    there: permission bits alone do not tell (root, read-only mounts, immutable folders). A
    ValueError names the flag and the reason in words."""
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise ValueError(f"{flag} {str(p)!r} is a file, not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=p):
            pass
    except OSError as e:
        reason = os.strerror(e.errno).lower() if e.errno else str(e)
        raise ValueError(f"{flag} {str(p)!r}: cannot write there ({reason})") from None
    return p


def short_name(name: str, limit: int = 120) -> str:
    """``name`` as a file name that fits any file system: unchanged when its UTF-8 form is at
    most ``limit`` bytes, else a prefix of it, ``-``, and 12 hex digits of its SHA-256 (so two
    long names stay apart and the same name gives the same file every run), extension kept.
    120 bytes leaves room for the temporary names writes go through under Linux's 255."""
    if len(name.encode()) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext) > 8:
        stem, ext = name, ""
    tag = "-" + hashlib.sha256(name.encode()).hexdigest()[:12] + ("." + ext if ext else "")
    keep = stem.encode()[: limit - len(tag.encode())].decode(errors="ignore")
    return keep + tag


def _host() -> str:
    """This machine's name as it goes into temporary names (no separators, no '@')."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", os.uname().nodename) or "host"


def _tmp(path: Path) -> Path:
    """A temporary name beside ``path`` that no other writer uses: processes on several hosts
    may share the folder, so the name carries this process's pid and host."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}@{_host()}")


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Writes ``data`` to ``path`` whole or not at all."""
    commit({path: data})
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode())


def json_bytes(obj: Any, **kwargs) -> bytes:
    """``obj`` as the indented JSON file merjax writes."""
    return (json.dumps(obj, **({"indent": 1} | kwargs)) + "\n").encode()


def write_json(path: str | Path, obj: Any, **kwargs) -> Path:
    return write_bytes(path, json_bytes(obj, **kwargs))


def savez(path: str | Path, **arrays) -> Path:
    """``np.savez`` whole or not at all."""
    path = Path(path)
    tmp = _tmp(path)
    try:
        with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a name
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def commit(files: Mapping[str | Path, bytes]) -> None:
    """Writes every ``{path: bytes}`` to a temporary file first, then renames them all into place.

    If any write fails (a full disk, a crash), no target has changed and the temporaries are
    removed."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            path = Path(path)
            tmp = _tmp(path)
            try:
                with open(tmp, "wb") as f:
                    staged.append((tmp, path))
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as e:
                # A write or fsync error (a full disk: Errno 28) carries no file name.
                if e.filename is None and e.errno:
                    raise OSError(e.errno, f"{e.strerror} (writing)", str(path)) from e
                raise
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def replace_dir(path: str | Path, build: Callable[[Path], None]) -> Path:
    """Builds a folder with ``build(tmp_folder)`` beside ``path``, then puts it in ``path``'s place.

    The old folder stays until the new one is complete; a failure in ``build`` leaves it as it
    was (and removes the partial new one, which was never the user's)."""
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.new-{os.getpid()}@{_host()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        build(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}@{_host()}")
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:  # superseded by a complete copy: this is the replace the caller asked for
        shutil.rmtree(old, ignore_errors=True)
    return path


_STRAY = re.compile(r"^\..+\.(?:tmp|partial)-(\d+)(?:-[0-9a-f]+)?(?:@([A-Za-z0-9_.-]+))?$")


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine is running (a zombie -- killed, not yet reaped by
    its parent -- is not: it answers ``kill(pid, 0)`` but can write nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process (or no such number): leave its files alone
    with contextlib.suppress(OSError, IndexError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    return True


def clean_strays(folder: str | Path, depth: int = 1) -> list[Path]:
    """Removes the temporaries merjax's writers leave when killed (``.NAME.tmp-PID`` files,
    ``.NAME.partial-PID-XXXX`` folders) in ``folder`` and up to ``depth`` folders below it,
    where process PID is no longer running; returns what it removed. Never a user's file:
    only these names, which only merjax's writers make, and never a live writer's: a name
    from another host (``...-PID@HOST``) is left alone, as its pid cannot be checked here."""
    removed = []
    folder = Path(folder)
    level = [folder] if folder.is_dir() else []
    for _ in range(depth + 1):
        below = []
        for d in level:
            for p in d.iterdir():
                m = _STRAY.match(p.name)
                here = m is not None and m.group(2) in (None, _host())
                if here and not process_alive(int(m.group(1))):
                    if p.is_dir() and not p.is_symlink():
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        p.unlink(missing_ok=True)
                    removed.append(p)
                elif p.is_dir() and not p.is_symlink() and not p.name.startswith("."):
                    below.append(p)
        level = below
    return removed


def _private_dir(path: Path) -> Path:
    """A temporary folder beside ``path`` that no other writer uses (pid and a random part),
    with the permissions a plain new folder gets (mkdtemp's are the owner's only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.with_name(f".{path.name}.partial-{os.getpid()}-{secrets.token_hex(4)}@{_host()}")
        with contextlib.suppress(FileExistsError):
            tmp.mkdir()
            return tmp


def _build(path: Path, build: Callable[[Path], None], stamp: Mapping | None, stamp_file: str):
    """``build`` into a private folder, then the stamp (last: a folder without it is not done);
    returns the folder. A failure removes it (it was never anyone's)."""
    tmp = _private_dir(path)
    try:
        build(tmp)
        if stamp is not None:
            (tmp / stamp_file).write_text(json.dumps(stamp, indent=1))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def new_dir(
    path: str | Path,
    build: Callable[[Path], None],
    *,
    stamp: Mapping | None = None,
    stamp_file: str = "stamp.json",
) -> Path:
    """A new folder ``path`` whole or not at all: ``build(tmp)`` fills a private folder beside
    it, which is renamed to ``path`` when complete (with ``stamp`` written into
    ``stamp_file`` last). ``path`` must not exist, or be an empty folder."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f"{str(path)!r} exists and is not an empty folder")
    tmp = _build(path, build, stamp, stamp_file)
    try:
        if path.exists():
            path.rmdir()
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _stamped(path: Path, stamp: Mapping, stamp_file: str) -> bool:
    try:
        return json.loads((path / stamp_file).read_text()) == json.loads(json.dumps(stamp))
    except (OSError, ValueError):
        return False


def written_once(
    path: str | Path,
    build: Callable[[Path], None],
    *,
    stamp: Mapping,
    stamp_file: str = "stamp.json",
    progress: Callable[[str], None] | None = None,
) -> Path:
    """``path`` when its ``stamp_file`` holds ``stamp`` (the cache key: what built it), else
    built by ``build`` as :func:`new_dir` builds. Several writers may start together (two
    experiments on one empty cache): each builds in its own private folder, the first to
    finish renames it into place, and the others find it there and remove their own copy.
    A folder at ``path`` with another or no stamp (damaged, or built by other code) is moved
    aside, not deleted."""
    path = Path(path)
    if _stamped(path, stamp, stamp_file):
        return path
    if path.exists():
        with contextlib.suppress(FileNotFoundError):  # another writer moved it already
            aside = move_aside(path, "stale")
            if progress:
                progress(f"{path} does not hold what its stamp should say: moved to {aside}")
    tmp = _build(path, build, stamp, stamp_file)
    try:
        os.rename(tmp, path)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not _stamped(path, stamp, stamp_file):  # not another writer's finished copy
            raise
    return path


def move_aside(path: str | Path, suffix: str) -> Path:
    """Renames ``path`` to ``<path>.<suffix>`` (or ``.<suffix>.2``, ...); returns the new name."""
    path = Path(path)
    target = path.with_name(f"{path.name}.{suffix}")
    n = 2
    while target.exists():
        target = path.with_name(f"{path.name}.{suffix}.{n}")
        n += 1
    os.replace(path, target)
    return target


class InUse(OSError):
    """Another process holds a lock merjax takes (a workdir, an output file)."""


class WorkdirBusy(InUse):
    """Another process is running in this workdir."""


class _Lock:
    """Holds a lock file for the length of a ``with``: a second holder fails at once.

    The lock is an ``fcntl.flock`` on the file, which the kernel releases when its process dies,
    so the file a killed run leaves behind is a stale lock: the next run takes it over and says
    which process held it. The file records the holder's pid, host and start time; a clean exit
    removes it."""

    busy: type[InUse] = InUse

    def __init__(self, path: Path, what: str, progress: Callable[[str], None] | None):
        self.path, self.what, self.progress = path, what, progress
        self._file = None

    def _busy_message(self, holder: str) -> str:
        raise NotImplementedError

    def __enter__(self):
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            f = open(self.path, "a+")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                f.seek(0)
                holder = f.read().strip() or "another process"
                f.close()
                if e.errno in (errno.EAGAIN, errno.EACCES):
                    raise self.busy(self._busy_message(holder)) from None
                raise
            # A holder that exited cleanly unlinks the file while it still holds it; a file
            # opened before that unlink locks an orphan, so take the lock again on the new one.
            try:
                same = os.path.samestat(os.fstat(f.fileno()), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            f.close()
        f.seek(0)
        previous = f.read().strip()
        if previous and self.progress:
            self.progress(
                f"taking over the stale lock of {previous} on {self.what} (it is no longer running)"
            )
        f.seek(0)
        f.truncate()
        f.write(
            f"process {os.getpid()} on {os.uname().nodename} since "
            f"{datetime.datetime.now().astimezone().isoformat(timespec='seconds')}\n"
        )
        f.flush()
        self._file = f
        return self

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()  # a clean exit leaves no lock file behind (unlinked held)
            self._file.close()  # releases the flock
            self._file = None


class WorkdirLock(_Lock):
    """Holds ``<workdir>/.merjax.lock`` for a run: a second run on the same workdir fails at once
    (a killed run's lock is stale and taken over)."""

    NAME = ".merjax.lock"
    busy = WorkdirBusy

    def __init__(self, workdir: str | Path, progress: Callable[[str], None] | None = None):
        workdir = Path(workdir)
        super().__init__(workdir / self.NAME, str(workdir), progress)

    def _busy_message(self, holder: str) -> str:
        return (
            f"workdir {self.what!r} is in use by {holder}; wait for it to finish or choose "
            "another --workdir"
        )


class OutputLock(_Lock):
    """Holds ``.<name>.lock`` beside an output file while one writer writes it, so that two
    runs given the same output refuse instead of mixing their rows."""

    busy = InUse

    def __init__(self, path: str | Path, progress: Callable[[str], None] | None = None):
        path = Path(path)
        super().__init__(path.with_name(f".{path.name}.lock"), str(path), progress)

    def _busy_message(self, holder: str) -> str:
        return (
            f"{self.what!r} is being written by {holder}; wait for it to finish or give "
            "another output file"
        )
