"""How much device memory the training program needs, from XLA's own compiled memory analysis.

The design trains all runs at once, but a vmapped program's temporaries grow with the number of
runs (benchmarks/RESULTS.md has the bytes per run of every network), so the runs are trained in
chunks that fit the device. :func:`program_memory` compiles the training program for a trial
number of runs (without running it) and reads ``memory_analysis()``; :func:`plan_chunk` picks the
largest chunk that fits a memory limit.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from merjax.train.config import TrainConfig
from merjax.train.strategies import programs

SAFETY = 0.85
"""Fraction of a device's memory that chunks may plan to use (XLA and the runtime need the rest)."""


@dataclasses.dataclass(frozen=True)
class ProgramMemory:
    """Bytes of one compiled training program (one epoch) for ``runs`` vmapped runs."""

    runs: int
    temp: int  # temporaries (activations, gradients, im2col patches, ...)
    arguments: int  # run states, items, labels, masks
    outputs: int
    aliased: int  # outputs that reuse argument buffers

    @property
    def peak(self) -> int:
        return self.temp + self.arguments + self.outputs - self.aliased


def program_memory(
    model: nn.Module,
    config: TrainConfig,
    input_shape: Sequence[int],
    num_items: int,
    runs: int = 1,
    steps: int = 1,
    num_epochs: int = 1,
) -> ProgramMemory:
    """XLA's memory analysis of the training program for ``runs`` vmapped runs, compiled, not
    run: the very program object the trainer calls (:func:`merjax.train.strategies.programs`),
    lowered for abstract arguments of those shapes."""
    p = programs(model, config, steps)
    items = jax.ShapeDtypeStruct((num_items, *input_shape), jnp.float32)
    labels = jax.ShapeDtypeStruct((num_items,), jnp.int32)
    masks = jax.ShapeDtypeStruct((runs, num_items), jnp.bool_)
    seeds = jax.ShapeDtypeStruct((runs,), jnp.int32)
    states = jax.eval_shape(p.init_many, items, masks, seeds)
    first = jax.ShapeDtypeStruct((), jnp.int32)
    compiled = p.train_vmapped(num_epochs).lower(states, items, labels, masks, seeds, first)
    m = compiled.compile().memory_analysis()
    if m is None:
        raise RuntimeError(f"the {jax.default_backend()} backend gives no memory analysis")
    return ProgramMemory(
        runs,
        int(m.temp_size_in_bytes),
        int(m.argument_size_in_bytes),
        int(m.output_size_in_bytes),
        int(m.alias_size_in_bytes),
    )


def per_run_bytes(
    model: nn.Module, config: TrainConfig, input_shape: Sequence[int], num_items: int
) -> tuple[float, float]:
    """``(bytes per run, fixed bytes)`` of the program's peak, from programs of 1 and 2 runs."""
    one = program_memory(model, config, input_shape, num_items, 1).peak
    two = program_memory(model, config, input_shape, num_items, 2).peak
    return float(two - one), float(2 * one - two)


def device_memory(device: jax.Device | None = None) -> int | None:
    """What the device reports it can hold (``bytes_limit``), or None (CPU reports nothing).
    The default is this process's first device: with several processes, another process's
    devices cannot be asked."""
    device = device or jax.local_devices()[0]
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 -- backends without memory stats raise various errors
        return None
    return int(stats["bytes_limit"]) if stats and "bytes_limit" in stats else None


class DoesNotFit(MemoryError):
    """Not even one run's training program fits the memory limit."""


def plan_chunk(
    model: nn.Module,
    config: TrainConfig,
    input_shape: Sequence[int],
    num_items: int,
    num_runs: int,
    memory_limit: int | None = None,
    *,
    steps: int = 1,
    num_epochs: int = 1,
) -> int:
    """Runs per vmapped chunk: the largest number up to ``num_runs`` whose compiled program fits
    ``memory_limit`` bytes (default: what the device reports, with a :data:`SAFETY` margin; no
    limit known -- as on CPU -- means every run in one chunk). ``steps`` per epoch and
    ``num_epochs`` per call make it the program training will call.

    Sized from the compiled programs of 1 and 2 runs (their peaks give the bytes per run), then
    checked by compiling the chosen chunk and shrinking it while its peak exceeds the limit. One
    run that does not fit raises :class:`DoesNotFit`, naming the memory needed and the limit."""
    limit = memory_limit
    if limit is None:
        reported = min(filter(None, map(device_memory, jax.local_devices())), default=None)
        limit = int(reported * SAFETY) if reported else None
    if limit is None or num_runs <= 1:
        return max(1, num_runs)
    memory = functools.partial(
        program_memory, model, config, input_shape, num_items, steps=steps, num_epochs=num_epochs
    )
    one = memory(1)
    if one.peak > limit:
        raise DoesNotFit(
            f"one run's training program needs {one.peak / 2**30:.2f} GiB, more than the "
            f"{limit / 2**30:.2f} GiB limit; lower the batch size (now {config.batch_size}) or "
            "the input size"
        )
    per_run = max(memory(2).peak - one.peak, 1)
    chunk = int(min(num_runs, max(1, 1 + (limit - one.peak) // per_run)))
    while chunk > 1 and memory(chunk).peak > limit:
        chunk = max(1, math.floor(chunk * 0.9))
    return chunk
