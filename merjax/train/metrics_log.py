"""``metrics.jsonl``: one JSON object per line, written as a training runs and after it.

The one writer of the file. The trainer writes a ``start`` line and an ``epoch`` line after every
compiled call (so ``tail -f`` follows a run, and a killed run leaves its curve); the experiments
append per fold, per seed the pooled held-out predictions and their scores. Each append is flushed
at once. NaN and infinity are written as null (JSON has neither).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from merjax import files


def _json_safe(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


class MetricsLog:
    """Appends lines to ``path`` (created with its folder)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def restart(self, resume_from: int = 0) -> None:
        """Starts the file of a training: empty for a fresh run; for one resumed after epoch
        ``resume_from``, the start lines and epochs up to it (a line cut short by a kill, and all
        after it, are dropped: they are written again)."""
        kept = []
        if resume_from and self.path.is_file():
            for line in self.path.read_text().splitlines():
                try:
                    d = json.loads(line)
                except json.JSONDecodeError:
                    break
                if d.get("kind") == "start" or (
                    d.get("kind") == "epoch" and d.get("epoch", 0) <= resume_from
                ):
                    kept.append(line + "\n")
        files.write_text(self.path, "".join(kept))

    def append(self, lines: list[dict]) -> None:
        with open(self.path, "a") as f:
            f.write("".join(json.dumps(_json_safe(line)) + "\n" for line in lines))
            f.flush()
