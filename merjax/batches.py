"""Fixed-size batches of an index, the last one padded: one array shape, so a jitted function
compiles once for any count.

    for batch in padded(np.arange(n), 64):
        out[batch.real] = f(frames[batch.index])[: batch.count]

The padding repeats the last real entry; what a function returns for it is dropped. Every
batched computation merjax pads this way is per item (a flow pair, a network input), so the
padding never changes a real item's result.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np


class Batch(NamedTuple):
    """Entries ``start..stop-1`` of an index, as ``index`` ``[size]`` (padded)."""

    start: int
    stop: int
    index: np.ndarray

    @property
    def count(self) -> int:
        """How many entries of ``index`` are real (the rest repeat the last one)."""
        return self.stop - self.start

    @property
    def real(self) -> slice:
        """Where the real entries stand in the whole index."""
        return slice(self.start, self.stop)


def padded(index: Sequence[int] | np.ndarray, size: int) -> Iterator[Batch]:
    """Consecutive batches of ``size`` entries of ``index``; the last is padded to ``size`` by
    repeating its last entry. An empty index gives no batch."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    index = np.asarray(index)
    for start in range(0, len(index), size):
        part = index[start : start + size]
        pad = np.repeat(part[-1:], size - len(part), axis=0)
        yield Batch(start, start + len(part), np.concatenate([part, pad]))
