"""Checkpoints with orbax: the trainer's run stacks and inference's model weights.

Two uses share this module so that nothing else imports orbax or reaches into another module
for it:

- :class:`RunCheckpoints` -- the LOSO trainer's periodic checkpoints of its whole run stack (a
  pytree with a leading run axis), tied to a *fingerprint* of what was being trained so that a
  rerun resumes only the same training, plus the per-epoch history (losses, accuracies) as a
  plain ``.npz`` beside them.
- :func:`save_tree` / :func:`restore_tree` -- one pytree in one folder (a model folder's
  ``variables/``).

orbax is imported on first use: it is slow to import and most commands never checkpoint.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from merjax import files, hosts


def orbax():
    """The ``orbax.checkpoint`` module, imported on first use."""
    import orbax.checkpoint as ocp

    return ocp


def digest(obj: Any) -> str:
    """A short stable hash of a JSON-able object (``default=str`` for the rest)."""
    blob = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@functools.cache
def code_digest() -> str:
    """A hash of merjax's own source, for caches of results that other code would compute
    differently (finished networks, long-video motion)."""
    top = Path(__file__).parent
    h = hashlib.sha256()
    for p in sorted(top.rglob("*.py")):
        h.update(p.relative_to(top).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _this_process_only():
    """orbax's options for a checkpoint this process writes or reads alone (a model folder):
    with several processes, orbax would otherwise wait for the others at its barriers."""
    ocp = orbax()
    me = jax.process_index()
    return ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me})


def save_tree(path: str | Path, tree: Any) -> None:
    """Writes ``tree`` (a pytree of arrays) to the folder ``path``, which must not exist; this
    process alone writes it (process 0 owns the model folders)."""
    with quiet_orbax():
        ckpt = orbax().StandardCheckpointer(multiprocessing_options=_this_process_only())
        try:
            # With several processes a jax array on one process's device is "host local", which
            # orbax refuses; numpy arrays are this process's alone either way.
            as_array = np.asarray if hosts.count() > 1 else jax.numpy.asarray
            ckpt.save(Path(path).absolute(), jax.tree.map(as_array, tree))
            ckpt.wait_until_finished()
        except Exception as e:
            raise OSError(f"cannot write {path} ({_first_line(e)})") from e
        finally:
            ckpt.close()


def stored_shapes(path: str | Path) -> dict[str, list[int]]:
    """``{"params/conv1/kernel": shape, ...}`` of the pytree saved at ``path``, from its metadata
    (no array is read)."""
    with quiet_orbax():
        ckpt = orbax().StandardCheckpointer(multiprocessing_options=_this_process_only())
        try:
            meta = ckpt.metadata(Path(path).absolute())
        finally:
            ckpt.close()
    tree = getattr(meta, "item_metadata", meta)
    return {
        "/".join(str(getattr(k, "key", k)) for k in keys): list(leaf.shape)
        for keys, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


def restore_tree(path: str | Path, abstract: Any) -> Any:
    """Reads the pytree at ``path`` with the structure, shapes and dtypes of ``abstract``.

    Check :func:`stored_shapes` first: a restore that fails on a shape leaves orbax's reads
    failing in the background, whose reports outlive the call."""
    with quiet_orbax():
        ckpt = orbax().StandardCheckpointer(multiprocessing_options=_this_process_only())
        try:
            return ckpt.restore(Path(path).absolute(), abstract)
        except BaseException:
            gc.collect()  # orbax's failed reads report now, inside quiet_orbax, not at exit
            raise
        finally:
            ckpt.close()


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the folder and what to do."""


class RunCheckpoints:
    """Periodic checkpoints of a run stack in ``path``, for one fingerprint.

    A folder holding checkpoints of another fingerprint (another configuration, data or model)
    is moved aside to ``<path>.other-config`` (never deleted), and training starts afresh;
    ``progress`` is told so. A checkpoint that does not restore (a truncated file, an emptied
    metadata file) is skipped for the next older one, and ``progress`` says so.

    With several processes every one saves and restores its own runs' shards through orbax's
    multi-process support (``path`` on a shared disk); process 0 alone writes the fingerprint
    and the history and moves folders aside.
    """

    def __init__(
        self,
        path: str | Path,
        fingerprint: str,
        *,
        max_to_keep: int = 2,
        progress: Callable[[str], None] | None = None,
    ):
        ocp = orbax()
        self.path = Path(path).absolute()
        self.progress = progress
        meta = self.path / "fingerprint.json"

        def prepare() -> None:
            if self.path.exists() and self._fingerprint(meta) != fingerprint:
                moved = files.move_aside(self.path, "other-config")
                self._say(
                    f"checkpoints in {self.path} are for another configuration; moved them to "
                    f"{moved.name} and starting afresh"
                )
            self.path.mkdir(parents=True, exist_ok=True)
            files.write_json(meta, fingerprint)

        hosts.main_only(prepare, f"preparing {self.path}")
        self._quiet = contextlib.ExitStack()
        self._quiet.enter_context(quiet_orbax())  # until close(): failed writes report late
        self.manager = ocp.CheckpointManager(
            self.path, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        )

    @staticmethod
    def _fingerprint(meta: Path) -> str | None:
        try:
            return json.loads(meta.read_text())
        except (OSError, ValueError):
            return None  # missing or unreadable: not known to be ours

    def _say(self, message: str) -> None:
        if self.progress:
            self.progress(message)

    def restore(self, states: Any) -> tuple[int, Any, dict[str, np.ndarray]]:
        """``(epoch, states, history)`` of the newest checkpoint that restores, or
        ``(0, states, {})`` when there is none. A CheckpointError when checkpoints exist and
        none of them restores."""
        ocp = orbax()
        steps = sorted(self.manager.all_steps(), reverse=True)
        if not steps:
            return 0, states, {}
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, states)
        failures = []
        for step in steps:
            try:
                restored = self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
            except Exception as e:  # orbax raises many kinds for a damaged checkpoint
                failures.append((step, self._why(step, e)))
                self._say(
                    f"the checkpoint of epoch {step} in {self.path} does not restore "
                    f"({failures[-1][1]}); trying an older one"
                )
                continue

            def move_damaged() -> None:  # out of the manager's way (trained again), kept
                for bad, _ in failures:
                    moved = files.move_aside(self.path / str(bad), "damaged")
                    self._say(f"moved the damaged checkpoint of epoch {bad} to {moved}")

            hosts.main_only(move_damaged, f"moving damaged checkpoints in {self.path}")
            self.manager.reload()
            self._say(f"resumed from the checkpoint of epoch {step} in {self.path}")
            return int(step), restored, self._history()
        raise CheckpointError(
            f"no checkpoint in {self.path} restores "
            f"({'; '.join(f'epoch {k}: {w}' for k, w in failures)}); "
            f"move that folder away (or delete it) to train afresh"
        )

    def _why(self, step: int, e: BaseException) -> str:
        """The failure in one line, naming the file when it is a metadata file that is not JSON."""
        if (
            isinstance(e, ValueError)
            and "Expecting value" in str(e)
            or type(e).__name__ == "JSONDecodeError"
        ):
            for meta in sorted((self.path / str(step)).rglob("*METADATA")):
                try:
                    json.loads(meta.read_text())
                except (OSError, ValueError):
                    return f"{meta} is empty or not JSON"
        return _first_line(e)

    def _history(self) -> dict[str, np.ndarray]:
        try:
            with np.load(self.path / "history.npz") as f:
                return {k: f[k] for k in f.files}
        except Exception:  # missing or damaged: only the curve before the resume is lost
            return {}

    def save(self, epoch: int, states: Any, history: dict[str, np.ndarray]) -> None:
        """Checkpoints ``states`` after ``epoch`` epochs, with the training history so far.

        A failed write (a full disk) raises one OSError naming the folder; what was saved before
        stays, so a rerun resumes from it."""
        try:
            if hosts.is_main():
                files.savez(self.path / "history.npz", **history)
            self.manager.save(epoch, args=orbax().args.StandardSave(states))
            self.manager.wait_until_finished()
        except Exception as e:
            if hosts.lost_process(e):  # another process died: said as such, not as a disk error
                raise
            raise OSError(
                f"cannot write the checkpoint of epoch {epoch} in {self.path} ({_first_line(e)}); "
                "free some space and rerun: training resumes from the last checkpoint"
            ) from e

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.manager.close()
        self._quiet.close()


def _first_line(e: BaseException, limit: int = 240) -> str:
    """What went wrong, in one short line (orbax's messages carry whole tensorstore specs)."""
    if "No space left on device" in str(e) or getattr(e, "errno", None) == 28:
        return "no space left on device"
    text = str(e).strip().splitlines()
    line = text[0].split(" [tensorstore_spec")[0] if text else ""
    line = line if len(line) <= limit else line[: limit - 3] + "..."
    return f"{type(e).__name__}: {line}" if line else type(e).__name__


@contextlib.contextmanager
def quiet_orbax():
    """Keeps orbax's own error reports off the console while merjax handles a failure and says it
    in one line: the tracebacks it logs from its background threads, and the "Event loop is
    closed" errors its I/O callbacks raise (reported through ``sys.unraisablehook``) once a write
    has failed. ``--log_level=info`` (or debug) shows them all."""
    loggers = [logging.getLogger(name) for name in ("absl", "asyncio")]
    levels = [lg.level for lg in loggers]
    quiet = loggers[0].getEffectiveLevel() > logging.INFO
    if quiet:
        for lg in loggers:
            lg.setLevel(logging.CRITICAL)
    hook = sys.unraisablehook

    def filtered(unraisable):
        if not (
            quiet
            and isinstance(unraisable.exc_value, RuntimeError)
            and "Event loop is closed" in str(unraisable.exc_value)
        ):
            hook(unraisable)

    sys.unraisablehook = filtered
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
        sys.unraisablehook = hook
