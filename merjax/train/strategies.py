"""How the runs of a training share compiled programs: each strategy is a value.

One *run* = one held-out subject group under one seed. A :class:`Strategy` is a NamedTuple of
functions over the runs -- init, train some epochs, finalize, predict, and the conversions to and
from the stacked run state that checkpoints and results use -- built once by :func:`build`, in the
way optax builds a ``GradientTransformation``; the driver (:mod:`merjax.train.loso`) calls them and
never asks which strategy it holds.

- ``vmap``: every run in one program (``jax.vmap`` over the run axis; sharded over devices when
  the stack says so);
- ``map``: ``lax.map`` over the runs inside one program;
- ``chunked``: vmapped chunks of runs, one program call after another;
- ``loop``: one run at a time (its runs are kept as a list: stacking them for every call would
  copy every state twice).

All of them compile their per-run functions from one :class:`Programs` per (model, protocol,
steps), which memory planning (:mod:`merjax.train.memory`) compiles too: the program planned is
the program run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from merjax import hosts
from merjax.train.config import Execution, TrainConfig
from merjax.train.step import finalize_run, init_run, optimizer, predict_run, train_epochs

Metrics = dict[str, np.ndarray]  # per step: [R, epochs, steps] each


class Stack(NamedTuple):
    """The training data on device: items and labels (shared by every run), each run's mask and
    seed, and how runs are laid over devices (None: one device)."""

    items: jax.Array  # [M, H, W, C]
    labels: jax.Array  # [M]
    masks: jax.Array  # [R, M]
    seeds: jax.Array  # [R]
    run_sharding: Any = None


def _memo(method):
    """Caches a method's result per instance and arguments (the programs of one Programs)."""

    @functools.wraps(method)
    def cached(self, *args):
        memo = self.__dict__.setdefault("_memo", {})
        key = (method.__name__, *args)
        if key not in memo:
            memo[key] = method(self, *args)
        return memo[key]

    return cached


class Programs:
    """The jitted programs of one (model, protocol, steps per epoch): built once, shared by every
    strategy and by memory planning."""

    def __init__(self, model: nn.Module, config: TrainConfig, steps: int):
        self.model, self.tx = model, optimizer(config)
        self.one_run = functools.partial(
            train_epochs,
            model=model,
            tx=self.tx,
            steps=steps,
            batch_size=config.batch_size,
            shuffle=config.shuffle,
            drop_last=config.drop_last,
        )
        self.population = config.bn_stats == "population"
        finalize = functools.partial(finalize_run, model=model)
        self.finalize_one = jax.jit(finalize)
        # lax.map: one run's whole training set at a time, whatever the strategy (memory).
        self.finalize_many = jax.jit(
            lambda states, items, masks: lax.map(
                lambda a: finalize(a[0], items, a[1]), (states, masks)
            )
        )
        init = functools.partial(init_run, model, self.tx)
        self.init_one = jax.jit(init)  # compiles faster than the vmapped one (threefry, 2 cores)
        self.init_many = jax.jit(jax.vmap(init, in_axes=(None, 0, 0)))

    @_memo
    def train_one(self, num_epochs: int) -> Callable:
        """``num_epochs`` epochs of one run in one program (scans over epochs and steps)."""
        return jax.jit(functools.partial(self.one_run, num_epochs=num_epochs))

    @_memo
    def train_vmapped(self, num_epochs: int) -> Callable:
        """``num_epochs`` epochs of a stack of runs, vmapped (strategies vmap and chunked)."""
        fn = functools.partial(self.one_run, num_epochs=num_epochs)
        return jax.jit(jax.vmap(fn, in_axes=(0, None, None, 0, 0, None)))

    @_memo
    def train_mapped(self, num_epochs: int) -> Callable:
        """``num_epochs`` epochs of a stack of runs, one after another in one program."""
        fn = functools.partial(self.one_run, num_epochs=num_epochs)

        def mapped(states, items, labels, masks, seeds, first):
            return lax.map(
                lambda a: fn(a[0], items, labels, a[1], a[2], first), (states, masks, seeds)
            )

        return jax.jit(mapped)

    @_memo
    def predict_one(self, features: bool) -> Callable:
        return jax.jit(functools.partial(predict_run, model=self.model, features=features))

    @_memo
    def predict_vmapped(self, features: bool) -> Callable:
        fn = functools.partial(predict_run, model=self.model, features=features)
        return jax.jit(jax.vmap(fn, in_axes=(0, None, 0)))


@functools.lru_cache(maxsize=8)
def programs(model: nn.Module, config: TrainConfig, steps: int) -> Programs:
    """The :class:`Programs` of ``(model, config, steps)``, the same object on every call."""
    return Programs(model, config, steps)


# Moving runs in and out of the stack, jitted: as eager per-leaf ops they compiled dozens of
# tiny programs per network.


@jax.jit
def _run(tree: Any, r: jax.Array) -> Any:
    """Run ``r`` of a stacked tree (the run axis dropped)."""
    return jax.tree.map(lambda x: lax.dynamic_index_in_dim(x, r, keepdims=False), tree)


@functools.partial(jax.jit, static_argnames="size")
def _runs(tree: Any, start: jax.Array, size: int) -> Any:
    """Runs ``start .. start + size - 1`` of a stacked tree."""
    return jax.tree.map(lambda x: lax.dynamic_slice_in_dim(x, start, size), tree)


@jax.jit
def _stack(trees: list) -> Any:
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


@jax.jit
def _concat(trees: list) -> Any:
    return jax.tree.map(lambda *xs: jnp.concatenate(xs), *trees)


def _numpy(metrics: dict) -> Metrics:
    """Per-step metrics read back whole (gathered when the runs span several processes)."""
    return {k: hosts.gather(v) for k, v in metrics.items()}


class Strategy(NamedTuple):
    """How the runs share programs, as functions of the runs' states (in the strategy's own form:
    stacked, or a list of runs for ``loop``)."""

    name: str
    runs_per_program: int
    init: Callable[[Stack], Any]
    # (states, stack, first epoch, epochs) -> (states, per-step metrics [R, epochs, steps])
    train: Callable[[Any, Stack, int, int], tuple[Any, Metrics]]
    # the runs as they predict (BatchNorm statistics: TrainConfig.bn_stats)
    finalize: Callable[[Any, Stack], Any]
    # (states, inputs [N, H, W, C], test indices [R, T], features) -> logits [R, T, K] (+ features)
    predict: Callable[[Any, jax.Array, jax.Array, bool], Any]
    stacked: Callable[[Any], Any]  # the stacked RunState (checkpoints, results)
    from_stacked: Callable[[Any], Any]


def _loop(p: Programs, num_runs: int) -> Strategy:
    def init(stack):
        return [
            p.init_one(stack.items, m, s) for m, s in zip(stack.masks, stack.seeds, strict=True)
        ]

    def train(states, stack, first, num_epochs):
        prog = p.train_one(num_epochs)
        first = jnp.asarray(first, jnp.int32)
        outs = [
            prog(s, stack.items, stack.labels, stack.masks[r], stack.seeds[r], first)
            for r, s in enumerate(states)
        ]
        metrics = {k: np.stack([np.asarray(o[1][k]) for o in outs]) for k in outs[0][1]}
        return [o[0] for o in outs], metrics

    def finalize(states, stack):
        if not p.population:
            return states
        return [p.finalize_one(s, stack.items, stack.masks[r]) for r, s in enumerate(states)]

    def predict(states, inputs, test_idx, features):
        prog = p.predict_one(features)
        outs = [prog(s, inputs, test_idx[r]) for r, s in enumerate(states)]
        return jax.tree.map(lambda *a: np.stack([np.asarray(v) for v in a]), *outs)

    def from_stacked(tree):
        return [_run(tree, r) for r in range(num_runs)]

    return Strategy("loop", 1, init, train, finalize, predict, _stack, from_stacked)


def _stacked_strategy(name: str, p: Programs, per_program: int, train) -> Strategy:
    """A strategy whose states are the run stack itself (vmap, map, chunked)."""

    def init(stack):
        return p.init_many(stack.items, stack.masks, stack.seeds)

    def finalize(states, stack):
        return p.finalize_many(states, stack.items, stack.masks) if p.population else states

    def predict(states, inputs, test_idx, features):
        return p.predict_vmapped(features)(states, inputs, test_idx)

    def same(tree):
        return tree

    return Strategy(name, per_program, init, train, finalize, predict, same, same)


def _whole(name: str, p: Programs, num_runs: int) -> Strategy:
    """Every run in one program: vmapped, or lax.map."""
    program = p.train_vmapped if name == "vmap" else p.train_mapped

    def train(states, stack, first, num_epochs):
        first = jnp.asarray(first, jnp.int32)
        out = program(num_epochs)(
            states, stack.items, stack.labels, stack.masks, stack.seeds, first
        )
        return out[0], _numpy(out[1])

    return _stacked_strategy(name, p, num_runs, train)


def _chunked(p: Programs, chunk: int) -> Strategy:
    """Vmapped chunks of ``chunk`` runs, one program call after another (laid over the devices
    when the stack is sharded)."""

    def train(states, stack, first, num_epochs):
        prog = p.train_vmapped(num_epochs)
        first = jnp.asarray(first, jnp.int32)
        put = (
            (lambda x: jax.device_put(x, stack.run_sharding))
            if stack.run_sharding is not None
            else (lambda x: x)
        )
        outs = []
        num_runs = len(stack.seeds)
        for c in range(0, num_runs, chunk):
            size = min(chunk, num_runs - c)  # after halving, the last chunk may be short
            masks, seeds = put(stack.masks[c : c + size]), put(stack.seeds[c : c + size])
            runs = put(_runs(states, c, size))
            outs.append(prog(runs, stack.items, stack.labels, masks, seeds, first))
        new, metrics = _concat(outs)
        return new, _numpy(metrics)

    return _stacked_strategy("chunked", p, chunk, train)


def build(name: str, p: Programs, num_runs: int, chunk: int) -> Strategy:
    """The strategy ``name`` (``vmap``, ``map``, ``chunked`` or ``loop``) over ``num_runs`` runs
    (``chunk`` runs per program for ``chunked``)."""
    if name == "loop":
        return _loop(p, num_runs)
    if name == "chunked":
        return _chunked(p, chunk)
    if name in ("vmap", "map"):
        return _whole(name, p, num_runs)
    raise ValueError(f"no strategy {name!r}")


def shrink(strategy: Strategy, p: Programs, num_runs: int, devices: int, error: Exception):
    """After an out-of-memory error: vmapped chunks of half the runs per program (whole devices
    per chunk), from states in the same (stacked) form. One run per program that does not fit
    is a MemoryError naming the levers."""
    current = strategy.runs_per_program
    if current <= devices:
        raise MemoryError(
            f"out of memory with {current} run(s) per program, the fewest possible: lower the "
            f"batch size or the input size ({str(error).splitlines()[0]})"
        ) from error
    return build("chunked", p, num_runs, max(devices, (current // 2) // devices * devices))


def resolve(
    execution: Execution, backend: str | None = None, processes: int = 1
) -> tuple[str, int]:
    """``(strategy, runs per chunk)`` that ``execution`` trains with on ``backend`` (default:
    jax's), before memory planning, over ``processes`` processes.

    ``auto`` is the fastest measured (benchmarks/RESULTS.md): on CPU ``loop``, one run per
    program (several runs' working sets overflow a small CPU's caches); elsewhere vmapped chunks
    as large as fit the device (:func:`merjax.train.plan_chunk`; all runs at once when they fit).
    A ``memory_limit`` makes ``auto`` plan chunks on CPU too, as do several processes: ``loop``
    and ``map`` run every run on one process's devices, so with several they are refused (one
    program over every process's devices is what spreads the runs)."""
    backend = backend or jax.default_backend()
    if execution.strategy == "auto":
        if backend == "cpu" and execution.memory_limit is None and processes == 1:
            return "loop", execution.chunk_size
        return "chunked", execution.chunk_size  # the chunk is planned from memory
    if processes > 1 and execution.strategy in ("loop", "map"):
        raise ValueError(
            f"execution.strategy={execution.strategy} trains every run on every one of the "
            f"{processes} processes: use vmap, chunked or auto, which spread the runs over them"
        )
    return execution.strategy, execution.chunk_size
