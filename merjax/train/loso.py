"""The LOSO driver: every (seed, held-out group) run trained at once, and the pooled results.

Strategies over the run axis (``TrainConfig.strategy``), all giving the same numbers:
``vmap`` (one program, the design's default), ``map`` (``lax.map`` in one program), ``chunked``
(vmapped chunks of ``chunk_size`` runs, one after another) and ``loop`` (one jitted run at a
time). ``auto`` picks the fastest measured per backend (:func:`resolve`, benchmarks/RESULTS.md).

Epochs and steps are ``lax.scan``s inside one compiled program per call, on every backend. (On
CPU this is fast only with the im2col convolution, merjax's default there: XLA:CPU runs a
``lax.conv`` whose weights are loop-carried 10-25x slower; see merjax.models.layers.)

With a ``workdir`` the driver writes ``workdir/metrics.jsonl`` as it goes: a ``start`` line (the
runs, their held-out subjects and seeds, the strategy), then an ``epoch`` line after every
compiled call (mean and per-run training loss and mini-batch accuracy), so ``tail -f`` follows a
long run and a killed run leaves its curve. With ``checkpoint_every`` it also checkpoints the run
stack (:mod:`merjax.checkpoint`) and a rerun resumes from the last checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from merjax import checkpoint, files
from merjax.train.config import TrainConfig
from merjax.train.folds import FINAL, Plan, fold_plan, pad_runs, subject_groups
from merjax.train.memory import plan_chunk
from merjax.train.step import (
    finalize_run,
    init_run,
    num_steps,
    optimizer,
    predict_run,
    train_epochs,
)

log = logging.getLogger(__name__)


def resolve(config: TrainConfig, backend: str | None = None) -> tuple[str, int]:
    """``(strategy, runs per chunk)`` that ``config`` trains with on ``backend`` (default: jax's),
    before memory planning.

    ``auto`` is the fastest measured (benchmarks/RESULTS.md): on CPU ``loop``, one run per
    program (2-core CPU, Vy-3CL, im2col, per run and step: 55 ms against 61 for chunks of 2 and
    69 for vmap over 4 runs at 16x16; 1.30 s against 1.54 and 1.99 s at 64x64: several runs'
    working sets overflow the caches); elsewhere vmapped chunks as large as fit the device
    (:func:`merjax.train.plan_chunk` in :func:`train_loso`; all runs at once when they fit).
    A ``memory_limit`` makes ``auto`` plan chunks on CPU too."""
    backend = backend or jax.default_backend()
    if config.strategy == "auto":
        if backend == "cpu" and config.memory_limit is None:
            return "loop", config.chunk_size
        return "chunked", config.chunk_size  # the chunk is planned from memory
    return config.strategy, config.chunk_size


def _plan_auto_chunk(
    model, config: TrainConfig, items_shape, num_runs: int, num_devices: int, progress
) -> tuple[str, int]:
    """``auto`` off CPU (or with a memory limit): chunks per device as large as fit, all devices
    in one program; one chunk of every run is plain ``vmap``."""
    per_device = -(-num_runs // num_devices)
    fit = plan_chunk(
        model, config, items_shape[1:], items_shape[0], per_device, config.memory_limit
    )
    chunk = fit * num_devices
    if chunk >= num_runs:
        return "vmap", chunk
    if progress:
        progress(
            f"memory: {fit} run(s) per device per chunk ({chunk} per program, {num_runs} runs)"
        )
    return "chunked", chunk


# Moving runs in and out of the stack, jitted: as eager per-leaf ops they compiled dozens of
# tiny programs per network (3 s of a 13 s first call on a 2-core CPU). The loop strategy keeps
# its runs as a list and stacks them only for checkpoints and results.


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


def _stacked(states: Any) -> Any:
    """The run stack, whether the strategy holds it stacked or (loop) as a list of runs."""
    return _stack(states) if isinstance(states, list) else states


class _Programs:
    """The jitted programs of one (model, config, data shape): built once, reused."""

    def __init__(self, model, config: TrainConfig, steps: int):
        self.model, self.tx = model, optimizer(config)
        self.single = functools.partial(
            train_epochs,
            model=model,
            tx=self.tx,
            steps=steps,
            batch_size=config.batch_size,
            shuffle=config.shuffle,
            drop_last=config.drop_last,
        )
        self.population = config.bn_stats == "population"
        fin = functools.partial(finalize_run, model=model)
        self.finalize_one = jax.jit(fin)
        # lax.map: one run's whole training set at a time, whatever the strategy (memory).
        self.finalize_many = jax.jit(
            lambda states, items, masks: lax.map(lambda a: fin(a[0], items, a[1]), (states, masks))
        )
        init = functools.partial(init_run, model, self.tx)
        self.init_one = jax.jit(init)  # compiles faster than the vmapped one (threefry, 2 cores)
        self.init_many = jax.jit(jax.vmap(init, in_axes=(None, 0, 0)))
        self._train = {}
        self._predict = {}

    def predict(self, strategy: str, features: bool):
        """Eval-mode logits (and features) of every run's test samples: per run, or vmapped."""
        key = (strategy == "loop", features)
        if key not in self._predict:
            fn = functools.partial(predict_run, model=self.model, features=features)
            self._predict[key] = (
                jax.jit(fn) if key[0] else jax.jit(jax.vmap(fn, in_axes=(0, None, 0)))
            )
        return self._predict[key]

    def train(self, strategy: str, num_epochs: int):
        """One jitted program for ``num_epochs`` epochs: epochs and steps are ``lax.scan``s (per
        run, vmapped over runs, or ``lax.map`` over runs)."""
        key = (strategy, num_epochs)
        if key not in self._train:
            fn = functools.partial(self.single, num_epochs=num_epochs)
            if strategy == "loop":
                prog = jax.jit(fn)
            elif strategy == "map":

                def prog_map(states, items, labels, masks, seeds, first):
                    return lax.map(
                        lambda a: fn(a[0], items, labels, a[1], a[2], first), (states, masks, seeds)
                    )

                prog = jax.jit(prog_map)
            else:  # vmap and chunked
                prog = jax.jit(jax.vmap(fn, in_axes=(0, None, None, 0, 0, None)))
            self._train[key] = prog
        return self._train[key]


@dataclasses.dataclass
class LosoResult:
    """Pooled predictions of every seed, and what produced them."""

    logits: np.ndarray  # [S, N, K] held-out logits per seed (NaN: in no held-out group)
    preds: np.ndarray  # [S, N] (-1: in no held-out group)
    labels: np.ndarray  # [N]
    seeds: tuple[int, ...]
    plan: Plan
    losses: np.ndarray  # [R, epochs] mean training loss per run and epoch
    train_accuracy: np.ndarray | None = (
        None  # [R, epochs] mean mini-batch accuracy (training items)
    )
    states: Any = None  # stacked RunState of every run (None unless kept)
    features: np.ndarray | None = None  # [S, N, D] held-out penultimate features
    seconds: float = 0.0
    # With eval_every: the held-out logits after every eval_every epochs, [E, S, N, K], and those
    # epochs. For analysis only (e.g. what picking an epoch by test results would inflate):
    # never for choosing a model.
    eval_epochs: tuple[int, ...] = ()
    eval_logits: np.ndarray | None = None


def fingerprint(config: TrainConfig, model: nn.Module, items_shape, plan: Plan) -> str:
    """What a checkpoint must match to be resumed (not how it is computed: strategy etc.)."""
    return checkpoint.digest(
        [
            2,  # the checkpoint layout (2: history.npz beside the run stack)
            dataclasses.asdict(config)
            | {
                "strategy": None,
                "chunk_size": None,
                "epochs_per_call": None,
                "checkpoint_every": None,
                "memory_limit": None,
            },
            repr(model),
            list(items_shape),
            hashlib.sha256(plan.train_mask.tobytes()).hexdigest(),
            plan.seeds.tolist(),
        ]
    )


class Diverged(FloatingPointError):
    """Training stopped because a run's loss went non-finite or exploded."""


class NonFiniteLoss(Diverged):
    pass


class LossExploded(Diverged):
    pass


def train_loso(
    model: nn.Module,
    inputs: np.ndarray,
    augmented: np.ndarray | None,
    labels: np.ndarray,
    subjects: Sequence[str],
    config: TrainConfig = TrainConfig(),
    *,
    groups: list[list[str]] | None = None,
    workdir: str | Path | None = None,
    progress: Callable[[str], None] | None = log.info,
    keep_states: bool = False,
    features: bool = False,
    stop_after_epoch: int | None = None,
    eval_every: int = 0,
) -> LosoResult:
    """Trains every (seed, held-out group) run and pools the held-out predictions.

    ``inputs`` ``[N, H, W, C]`` are the network inputs of the onset->apex flows, ``augmented``
    those of the onset->apex+1 flows (used for training only; None or ``config.augment=False``
    leaves them out). ``groups`` defaults to LOSO. With ``workdir``, training writes
    ``workdir/metrics.jsonl`` as it goes, and with ``config.checkpoint_every`` it checkpoints the
    run stack with orbax so that a rerun resumes from the last checkpoint. ``stop_after_epoch``
    ends training early (for tests of resuming). ``eval_every=k`` also records the held-out logits
    every k epochs (``LosoResult.eval_logits``) -- cheap when every run trains at once, and only
    for analysing what choosing epochs by test results would do.
    """
    t0 = time.perf_counter()
    inputs = np.asarray(inputs, np.float32)
    labels = np.asarray(labels, np.int32)
    if inputs.ndim != 4 or len(inputs) != len(labels) or len(labels) != len(subjects):
        raise ValueError(
            f"need inputs [N, H, W, C], labels [N] and subjects [N]; got {inputs.shape}, "
            f"{labels.shape}, {len(subjects)}"
        )
    use_aug = config.augment and augmented is not None
    if use_aug and np.shape(augmented) != inputs.shape:
        raise ValueError(f"augmented {np.shape(augmented)} must match inputs {inputs.shape}")
    items = np.concatenate([inputs, np.asarray(augmented, np.float32)]) if use_aug else inputs
    item_labels = np.concatenate([labels, labels]) if use_aug else labels
    groups = groups or subject_groups(subjects)
    strategy, chunk = resolve(config)
    devices = jax.devices()
    plan = fold_plan(
        subjects, groups, config.seeds, augment=use_aug, train_final=config.train_final
    )
    num_real = len(plan.seeds)
    steps = num_steps(plan.train_mask.sum(1), config.batch_size, config.drop_last)
    if config.strategy == "auto" and strategy == "chunked":
        strategy, chunk = _plan_auto_chunk(
            model, config, items.shape, num_real, len(devices), progress
        )
    sharded = strategy in ("vmap", "chunked") and len(devices) > 1
    if sharded and strategy == "chunked":
        chunk = -(-chunk // len(devices)) * len(devices)  # whole devices per chunk
    multiple = len(devices) if strategy == "vmap" else chunk if strategy == "chunked" else 1
    plan = pad_runs(plan, multiple)
    programs = _programs(model, config, steps)

    mesh = Mesh(np.array(devices), ("run",)) if sharded else None
    run_sharding = NamedSharding(mesh, P("run")) if mesh else None
    shared = NamedSharding(mesh, P()) if mesh else None
    put = lambda x, s: jax.device_put(x, s) if s is not None else jnp.asarray(x)  # noqa: E731
    items_d, labels_d = put(items, shared), put(item_labels, shared)
    masks_d, seeds_d = put(plan.train_mask, run_sharding), put(plan.seeds, run_sharding)
    if strategy == "loop":  # a list of runs (see _stacked)
        states = [
            programs.init_one(items_d, m, r)
            for m, r in zip(plan.train_mask, plan.seeds, strict=True)
        ]
    else:
        states = programs.init_many(items_d, masks_d, seeds_d)

    stack = _Stack(items_d, labels_d, masks_d, seeds_d, run_sharding)
    workdir = Path(workdir) if workdir is not None else None
    with files.WorkdirLock(workdir, progress) if workdir is not None else contextlib.nullcontext():
        evals = _Evals(
            eval_every,
            lambda st: _predict(
                programs, _finalize(programs, st, stack, strategy), inputs, plan, strategy, False
            ),
            lambda logits: _pool(np.asarray(logits), plan, labels, config.seeds, num_real).logits,
        )
        states, history = _fit(
            programs,
            strategy,
            chunk,
            len(devices),
            states,
            stack,
            plan,
            num_real,
            config,
            fingerprint(config, model, items.shape, plan),
            workdir=workdir,
            progress=progress,
            stop_after_epoch=stop_after_epoch,
            t0=t0,
            evals=evals,
        )

    states = _finalize(programs, states, stack, strategy)
    out = _predict(programs, states, inputs, plan, strategy, features)
    logits = out[0] if features else out
    result = _pool(np.asarray(logits), plan, labels, config.seeds, num_real)
    result.losses = history["loss"][:num_real]
    result.train_accuracy = history["accuracy"][:num_real]
    if features:
        result.features = _pool_features(
            np.asarray(out[1]), plan, len(labels), config.seeds, num_real
        )
    if keep_states:
        result.states = jax.tree.map(lambda x: x[:num_real], _stacked(states))
    if evals.epochs:
        result.eval_epochs, result.eval_logits = tuple(evals.epochs), np.stack(evals.logits)
    result.seconds = time.perf_counter() - t0
    return result


class _Evals:
    """Held-out logits every ``every`` epochs (see ``train_loso``'s ``eval_every``)."""

    def __init__(self, every: int, predict, pool):
        self.every, self.predict, self.pool = every, predict, pool
        self.epochs: list[int] = []
        self.logits: list[np.ndarray] = []

    def after(self, epoch: int, states) -> None:
        if self.every and epoch % self.every == 0:
            self.epochs.append(epoch)
            self.logits.append(self.pool(self.predict(states)))


class _Stack(NamedTuple):
    """The training data on device: items and labels (shared), masks and seeds (per run), and
    how a chunk of runs is laid over the devices (None: one device)."""

    items: jax.Array
    labels: jax.Array
    masks: jax.Array
    seeds: jax.Array
    run_sharding: Any = None


OOM_HOOK: Callable[[str, int], None] | None = None
"""Called before every compiled training call with ``(strategy, runs per chunk)``; tests set it to
raise an out-of-memory error once, as a device would."""


def _out_of_memory(e: Exception) -> bool:
    return isinstance(e, (jax.errors.JaxRuntimeError, MemoryError)) and "RESOURCE_EXHAUSTED" in str(
        e
    )


def _fit(
    programs,
    strategy,
    chunk,
    num_devices,
    states,
    stack: _Stack,
    plan: Plan,
    num_real: int,
    config: TrainConfig,
    fp: str,
    *,
    workdir: Path | None,
    progress,
    stop_after_epoch,
    t0,
    evals=None,
):
    """The epochs: compiled calls, checks, metrics.jsonl, checkpoints, progress. Returns the final
    states and the history (``loss`` and ``accuracy``, ``[R, epochs]``)."""
    history = {
        k: np.full((len(plan.seeds), config.epochs), np.nan, np.float32)
        for k in ("loss", "accuracy")
    }
    ckpts, start = None, 0
    if workdir is not None and config.checkpoint_every:
        ckpts = checkpoint.RunCheckpoints(workdir / "checkpoints", fp, progress=progress)
        start, restored, saved = ckpts.restore(_stacked(states))
        if start:
            states = (
                [_run(restored, r) for r in range(len(plan.seeds))]
                if strategy == "loop"
                else restored
            )
        for k, v in saved.items():
            if k in history and v.shape == history[k].shape:
                history[k][:, :start] = v[:, :start]
    curve = _Curve(workdir / "metrics.jsonl", start) if workdir is not None else None
    if curve:
        curve.begin(plan, num_real, config, strategy, chunk, num_devices)
    epoch = start
    end = config.epochs if stop_after_epoch is None else min(config.epochs, stop_after_epoch)
    try:
        while epoch < end:
            n = min(config.epochs_per_call, end - epoch)
            for every in (config.checkpoint_every, evals.every if evals else 0):
                if every:
                    n = min(n, every - epoch % every)
            try:
                states, step_metrics = _train_call(
                    programs, strategy, n, states, stack, epoch, chunk
                )
            except Exception as e:
                if not _out_of_memory(e):
                    raise
                strategy, chunk = _smaller(strategy, chunk, len(plan.seeds), stack, e)
                if progress:
                    progress(
                        f"out of memory at epoch {epoch + 1}; going on from the same epoch and "
                        "states "
                        f"with chunks of {chunk} runs"
                    )
                continue
            m = {k: np.asarray(v) for k, v in step_metrics.items()}  # [R, n, steps] each
            _check_finite(m["loss"], m["count"] > 0, plan, epoch, num_real)
            weight = m["count"].astype(np.float64)
            total = np.maximum(weight.sum(2), 1)
            history["loss"][:, epoch : epoch + n] = (m["loss"] * weight).sum(2) / total
            history["accuracy"][:, epoch : epoch + n] = (m["accuracy"] * weight).sum(2) / total
            _check_exploded(
                history["loss"], plan, range(epoch, epoch + n), num_real, config.max_loss
            )
            epoch += n
            spent = time.perf_counter() - t0
            if curve:
                curve.epochs(history, range(epoch - n, epoch), num_real, spent)
            if ckpts is not None and epoch % config.checkpoint_every == 0:
                ckpts.save(epoch, _stacked(states), history)
            if evals is not None:
                evals.after(epoch, states)
            if progress:
                eta = spent / max(epoch - start, 1) * (end - epoch)
                progress(
                    f"epoch {epoch}/{config.epochs}: loss "
                    f"{np.nanmean(history['loss'][:num_real, epoch - 1]):.4f}"
                    f", train accuracy {np.nanmean(history['accuracy'][:num_real, epoch - 1]):.1%}"
                    f" ({num_real} runs, {strategy}), {spent:.0f} s, ETA {eta:.0f} s"
                )
    finally:
        if ckpts is not None:
            ckpts.close()
    return states, history


def _smaller(
    strategy: str, chunk: int, num_runs: int, stack: _Stack, error: Exception
) -> tuple[str, int]:
    """Half the runs per program after an out-of-memory error (whole devices per chunk)."""
    devices = stack.run_sharding.mesh.size if stack.run_sharding is not None else 1
    current = {"loop": 1, "vmap": num_runs, "map": num_runs}.get(strategy, chunk)
    if current <= devices:
        raise MemoryError(
            f"out of memory with {current} run(s) per program, the fewest possible: lower the "
            "batch size "
            f"or the input size ({str(error).splitlines()[0]})"
        ) from error
    half = max(devices, (current // 2) // devices * devices)
    return "chunked", half


@functools.lru_cache(maxsize=8)
def _programs(model, config, steps) -> _Programs:
    return _Programs(model, config, steps)


def _train_call(programs, strategy, n, states, stack: _Stack, epoch, chunk):
    items, labels, masks, seeds, sharding = stack
    first = jnp.asarray(epoch, jnp.int32)
    if OOM_HOOK is not None:
        OOM_HOOK(strategy, chunk)
    if strategy in ("vmap", "map"):
        return programs.train(strategy, n)(states, items, labels, masks, seeds, first)
    if strategy == "loop":  # states: a list of runs
        prog = programs.train("loop", n)
        outs = [prog(s, items, labels, masks[r], seeds[r], first) for r, s in enumerate(states)]
        metrics = {k: np.stack([np.asarray(o[1][k]) for o in outs]) for k in outs[0][1]}
        return [o[0] for o in outs], metrics
    prog = programs.train("chunked", n)
    put = (lambda x: jax.device_put(x, sharding)) if sharding is not None else (lambda x: x)
    outs = []
    for c in range(0, len(seeds), chunk):
        size = min(chunk, len(seeds) - c)  # after halving, the last chunk may be short
        outs.append(
            prog(
                put(_runs(states, c, size)),
                items,
                labels,
                put(masks[c : c + size]),
                put(seeds[c : c + size]),
                first,
            )
        )
    return _concat(outs)


def _finalize(programs: _Programs, states, stack: _Stack, strategy: str):
    """Every run as it predicts (BatchNorm statistics: TrainConfig.bn_stats)."""
    items, _, masks, _, _ = stack
    if not programs.population:
        return states
    if strategy == "loop":
        return [programs.finalize_one(s, items, masks[r]) for r, s in enumerate(states)]
    return programs.finalize_many(states, items, masks)


def _predict(programs: _Programs, states, inputs, plan, strategy, features):
    x = jnp.asarray(inputs)
    idx = jnp.asarray(plan.test_idx)
    prog = programs.predict(strategy, features)
    if strategy == "loop":  # states: a list of runs
        outs = [prog(s, x, idx[r]) for r, s in enumerate(states)]
        return jax.tree.map(lambda *a: np.stack([np.asarray(v) for v in a]), *outs)
    return prog(states, x, idx)


def _pool(logits, plan: Plan, labels, seeds, num_real) -> LosoResult:
    n, k = len(labels), logits.shape[-1]
    pooled = np.full((len(seeds), n, k), np.nan, np.float32)
    for r in range(num_real):
        if plan.held_out[r] == FINAL:
            continue
        s = seeds.index(int(plan.seeds[r]))
        pooled[s, plan.tested(r)] = logits[r][plan.test_valid[r]]
    return LosoResult(pooled, predictions(pooled), labels, tuple(seeds), plan, np.empty(0))


def predictions(logits: np.ndarray) -> np.ndarray:
    """Class predictions ``[...]`` of pooled held-out logits ``[..., K]``; -1 where a sample has
    no logits (NaN: in no held-out group)."""
    return np.where(np.isnan(logits).any(-1), -1, np.nan_to_num(logits).argmax(-1))


def _pool_features(feats, plan, n, seeds, num_real) -> np.ndarray:
    out = np.zeros((len(seeds), n, feats.shape[-1]), np.float32)
    for r in range(num_real):
        if plan.held_out[r] != FINAL:
            out[seeds.index(int(plan.seeds[r])), plan.tested(r)] = feats[r][plan.test_valid[r]]
    return out


def _check_finite(step_losses, had, plan: Plan, epoch: int, num_real: int) -> None:
    bad = had[:num_real] & ~np.isfinite(step_losses[:num_real])
    if bad.any():
        r, e, s = np.argwhere(bad)[0]
        raise NonFiniteLoss(
            f"non-finite training loss in run {r} (seed {plan.seeds[r]}, held out "
            f"{', '.join(plan.held_out[r])}) at epoch {epoch + e + 1}, step {s + 1}; "
            "lower the learning rate or check the inputs"
        )


def _check_exploded(losses, plan: Plan, epochs: range, num_real: int, max_loss: float) -> None:
    for e in epochs:
        if e == 0:
            continue  # the first epoch may start high; after it, a loss this large is divergence
        high = np.flatnonzero(losses[:num_real, e] > max_loss)
        if len(high):
            r = high[0]
            raise LossExploded(
                f"training loss {losses[r, e]:.3g} above {max_loss:g} in run {r} (seed "
                f"{plan.seeds[r]}, "
                f"held out {', '.join(plan.held_out[r])}) at epoch {e + 1}; the run diverged: "
                "lower the "
                "learning rate or check the inputs (TrainConfig.max_loss sets the bound)"
            )


def _json_safe(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, list):
        return [_json_safe(v) for v in x]
    return x


class _Curve:
    """``metrics.jsonl`` as training goes: a start line, then a line per epoch, flushed at once.

    A fresh run replaces the file; a resumed run keeps the lines up to the epoch it resumes from.
    """

    def __init__(self, path: Path, start: int):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if start and path.is_file():
            for line in path.read_text().splitlines():
                try:
                    d = json.loads(line)
                except json.JSONDecodeError:
                    break  # a line cut short by a kill: the rest is rewritten
                if d.get("kind") == "start" or (
                    d.get("kind") == "epoch" and d.get("epoch", 0) <= start
                ):
                    kept.append(line + "\n")
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(kept))
        tmp.replace(path)
        self.start = start

    def _write(self, lines: list[dict]) -> None:
        with open(self.path, "a") as f:
            f.write("".join(json.dumps(line) + "\n" for line in lines))
            f.flush()

    def begin(
        self,
        plan: Plan,
        num_real: int,
        config: TrainConfig,
        strategy: str,
        chunk: int,
        devices: int,
    ) -> None:
        self._write(
            [
                {
                    "kind": "start",
                    "time": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                    "runs": num_real,
                    "held_out": [list(h) for h in plan.held_out[:num_real]],
                    "seeds": plan.seeds[:num_real].tolist(),
                    "epochs": config.epochs,
                    "resumed_from": self.start,
                    "strategy": strategy,
                    "chunk": chunk if strategy == "chunked" else None,
                    "devices": devices,
                }
            ]
        )

    def epochs(
        self, history: dict[str, np.ndarray], epochs: range, num_real: int, seconds: float
    ) -> None:
        lines = []
        for e in epochs:
            loss, acc = history["loss"][:num_real, e], history["accuracy"][:num_real, e]
            lines.append(
                {
                    "kind": "epoch",
                    "epoch": e + 1,
                    "loss": _json_safe(float(np.nanmean(loss))) if num_real else None,
                    "accuracy": _json_safe(float(np.nanmean(acc))) if num_real else None,
                    "loss_per_run": _json_safe([round(float(v), 6) for v in loss]),
                    "accuracy_per_run": _json_safe([round(float(v), 6) for v in acc]),
                    "seconds": round(seconds, 2),
                }
            )
        self._write(lines)
