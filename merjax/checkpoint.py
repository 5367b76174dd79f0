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

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np


def orbax():
    """The ``orbax.checkpoint`` module, imported on first use."""
    import orbax.checkpoint as ocp

    return ocp


def digest(obj: Any) -> str:
    """A short stable hash of a JSON-able object (``default=str`` for the rest)."""
    blob = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def save_tree(path: str | Path, tree: Any) -> None:
    """Writes ``tree`` (a pytree of arrays) to the folder ``path``, which must not exist."""
    ckpt = orbax().StandardCheckpointer()
    ckpt.save(Path(path).absolute(), jax.tree.map(jax.numpy.asarray, tree))
    ckpt.wait_until_finished()


def restore_tree(path: str | Path, abstract: Any) -> Any:
    """Reads the pytree at ``path`` with the structure, shapes and dtypes of ``abstract``."""
    return orbax().StandardCheckpointer().restore(Path(path).absolute(), abstract)


class RunCheckpoints:
    """Periodic checkpoints of a run stack in ``path``, for one fingerprint.

    A folder holding checkpoints of another fingerprint (another configuration, data or model)
    is cleared, and the caller starts afresh; ``progress`` is told so.
    """

    def __init__(self, path: str | Path, fingerprint: str, *, max_to_keep: int = 2,
                 progress: Callable[[str], None] | None = None):
        ocp = orbax()
        self.path = Path(path).absolute()
        self.progress = progress
        meta = self.path / "fingerprint.json"
        if self.path.exists() and (not meta.is_file() or json.loads(meta.read_text()) != fingerprint):
            self._say(f"checkpoints in {self.path} are for another configuration; starting afresh")
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps(fingerprint))
        self.manager = ocp.CheckpointManager(
            self.path, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        )

    def _say(self, message: str) -> None:
        if self.progress:
            self.progress(message)

    def restore(self, states: Any) -> tuple[int, Any, dict[str, np.ndarray]]:
        """``(epoch, states, history)`` of the latest checkpoint, or ``(0, states, {})``."""
        ocp = orbax()
        step = self.manager.latest_step()
        if step is None:
            return 0, states, {}
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, states)
        states = self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
        history = {}
        if (self.path / "history.npz").is_file():
            with np.load(self.path / "history.npz") as f:
                history = {k: f[k] for k in f.files}
        self._say(f"resumed from the checkpoint of epoch {step} in {self.path}")
        return int(step), states, history

    def save(self, epoch: int, states: Any, history: dict[str, np.ndarray]) -> None:
        """Checkpoints ``states`` after ``epoch`` epochs, with the training history so far."""
        tmp = self.path / "history.tmp.npz"
        np.savez(tmp, **history)
        tmp.replace(self.path / "history.npz")
        self.manager.save(epoch, args=orbax().args.StandardSave(states))
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()
