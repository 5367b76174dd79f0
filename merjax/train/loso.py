"""The LOSO driver: every (seed, held-out group) run trained at once, and the pooled results.

How the runs share compiled programs is a :class:`~merjax.train.strategies.Strategy` value
(``Execution.strategy``; every strategy gives the same numbers up to float rounding). Epochs and
steps are ``lax.scan``s inside one compiled program per call, on every backend.

With a ``workdir`` the driver writes ``workdir/metrics.jsonl`` as it goes
(:class:`~merjax.train.metrics_log.MetricsLog`): a ``start`` line (the runs, their held-out
subjects and seeds, the strategy), then an ``epoch`` line after every compiled call (mean and
per-run training loss and mini-batch accuracy). With ``Execution.checkpoint_every`` it also
checkpoints the run stack (:mod:`merjax.checkpoint`) and a rerun resumes from the last
checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import logging
import time
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from merjax import checkpoint, files, hosts
from merjax.errors import Interrupted
from merjax.train import strategies
from merjax.train.config import Execution, TrainConfig
from merjax.train.folds import FINAL, Plan, fold_plan, pad_runs, subject_groups
from merjax.train.memory import plan_chunk
from merjax.train.metrics_log import MetricsLog
from merjax.train.step import num_steps
from merjax.train.strategies import Programs, Stack, Strategy

log = logging.getLogger(__name__)


@dataclasses.dataclass
class LosoResult:
    """Pooled predictions of every seed, and what produced them."""

    logits: np.ndarray  # [S, N, K] held-out logits per seed (NaN: in no held-out group)
    preds: np.ndarray  # [S, N] (-1: in no held-out group)
    labels: np.ndarray  # [N]
    seeds: tuple[int, ...]
    plan: Plan
    losses: np.ndarray  # [R, epochs] mean training loss per run and epoch
    train_accuracy: np.ndarray | None = None  # [R, epochs] mean mini-batch accuracy
    states: Any = None  # stacked RunState of every run (None unless kept)
    features: np.ndarray | None = None  # [S, N, D] held-out penultimate features
    seconds: float = 0.0
    # With eval_every: the held-out logits after every eval_every epochs, [E, S, N, K], and those
    # epochs. For analysis only (e.g. what picking an epoch by test results would inflate):
    # never for choosing a model.
    eval_epochs: tuple[int, ...] = ()
    eval_logits: np.ndarray | None = None


def fingerprint(config: TrainConfig, model: nn.Module, items_shape, plan: Plan) -> str:
    """What a checkpoint must match to be resumed: the protocol, the network, the data's shape
    and the runs (never how they execute: that is :class:`Execution`)."""
    return checkpoint.digest(
        [
            3,  # the checkpoint layout (3: the protocol alone, the execution apart)
            dataclasses.asdict(config),
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
    subjects: Sequence[Hashable],
    config: TrainConfig = TrainConfig(),
    execution: Execution = Execution(),
    *,
    groups: Sequence[Sequence[Hashable]] | None = None,
    workdir: str | Path | None = None,
    progress: Callable[[str], None] | None = log.info,
    keep_states: bool = False,
    features: bool = False,
    eval_every: int = 0,
    pools: Sequence[int] | None = None,
) -> LosoResult:
    """Trains every (seed, held-out group) run and pools the held-out predictions.

    ``inputs`` ``[N, H, W, C]`` are the network inputs of the onset->apex flows, ``augmented``
    those of the onset->apex+1 flows (used for training only; None or ``config.augment=False``
    leaves them out). Subject IDs may be any hashable values (ints, strings), compared as
    strings. ``groups`` defaults to LOSO, which tests every sample; explicit groups test only
    their members (the rest get prediction -1), as a train-on-one-database protocol wants. With
    ``workdir``, training writes ``workdir/metrics.jsonl`` as it goes, and with
    ``execution.checkpoint_every`` it checkpoints the run stack with orbax so that a rerun
    resumes from the last checkpoint. ``eval_every=k`` also records the held-out logits every k
    epochs (``LosoResult.eval_logits``) -- cheap when every run trains at once, and only for
    analysing what choosing epochs by test results would do. ``pools`` (one int per sample:
    :func:`merjax.train.folds.fold_plan`) trains independent problems of one shape as one
    program, each run on its own pool. ``progress`` receives a line per epoch (loss, accuracy,
    ETA): pass ``progress=print`` in a notebook or script to see them (the default hands them to
    the ``merjax`` logger, silent until logging is configured).
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
    plan = fold_plan(
        subjects,
        groups or subject_groups(subjects),
        config.seeds,
        augment=use_aug,
        train_final=config.train_final,
        pools=pools,
    )
    untested = np.setdiff1d(np.arange(len(labels)), plan.test_idx[plan.test_valid])
    if not groups and len(untested):
        # Every subject is its own group, so this is a bug, never a choice: say so.
        raise ValueError(f"{len(untested)} sample(s) held out by no fold, e.g. {untested[:5]}")
    steps = num_steps(plan.train_mask.sum(1), config.batch_size, config.drop_last)
    # Every process trains on the same table: a process given other data is refused here, in one
    # line, instead of failing (or silently mixing) in a collective later.
    if hosts.count() > 1:  # hashing the table costs time one process need not spend
        hosts.agree(_data_digest(items, item_labels, plan), "data (inputs, labels or folds)")
    programs = strategies.programs(model, config, steps)
    devices = jax.devices()  # every process's: the run axis is laid over all of them
    name, chunk = _choose(model, config, execution, items.shape, plan, steps, devices, progress)
    sharded = name in ("vmap", "chunked") and len(devices) > 1
    if sharded and name == "chunked":
        chunk = -(-chunk // len(devices)) * len(devices)  # whole devices per chunk
    plan = pad_runs(plan, len(devices) if name == "vmap" else chunk if name == "chunked" else 1)
    strategy = strategies.build(name, programs, len(plan.seeds), chunk)
    stack = _put(items, item_labels, plan, devices if sharded else None)
    states = strategy.init(stack)
    job = _Job(programs, stack, plan, config, execution, len(devices), progress, t0)

    workdir = Path(workdir) if workdir is not None else None
    lock = files.WorkdirLock(workdir, progress) if workdir is not None else None
    with hosts.on_main(lock, f"locking {workdir}") if lock else contextlib.nullcontext():
        evals = _Evals(eval_every, _shared(inputs, stack), labels)
        states, strategy, history = _fit(job, strategy, states, workdir, evals)

    states = strategy.finalize(states, stack)
    test_idx = _per_run(plan.test_idx, stack)
    out = strategy.predict(states, _shared(inputs, stack), test_idx, features)
    logits = hosts.gather(out[0] if features else out)
    result = _pool(logits, plan, labels, config.seeds)
    result.losses = history["loss"][: plan.num_real]
    result.train_accuracy = history["accuracy"][: plan.num_real]
    if features:
        result.features = _pool_features(hosts.gather(out[1]), plan, len(labels), config.seeds)
    if keep_states:  # read back whole: the runs may be spread over several processes
        stacked = strategy.stacked(states)
        result.states = jax.tree.map(lambda x: hosts.gather(x)[: plan.num_real], stacked)
    if evals.epochs:
        result.eval_epochs, result.eval_logits = tuple(evals.epochs), np.stack(evals.logits)
    result.seconds = time.perf_counter() - t0
    return result


def _choose(model, config, execution, items_shape, plan, steps, devices, progress):
    """``(strategy name, runs per chunk)``: :func:`strategies.resolve`, and for ``auto`` off CPU
    (or with a memory limit) chunks per device as large as fit, all devices in one program; one
    chunk of every run is plain ``vmap``."""
    name, chunk = strategies.resolve(execution, processes=hosts.count())
    if execution.strategy != "auto" or name != "chunked":
        return name, chunk
    per_device = -(-plan.num_real // len(devices))
    fit = plan_chunk(
        model,
        config,
        items_shape[1:],
        items_shape[0],
        per_device,
        execution.memory_limit,
        steps=steps,
        num_epochs=min(execution.epochs_per_call, config.epochs),
    )
    fit = hosts.smallest(fit)  # every process runs the same program: the smallest device's plan
    chunk = fit * len(devices)
    if chunk >= plan.num_real:
        return "vmap", chunk
    if progress:
        progress(
            f"memory: {fit} run(s) per device per chunk ({chunk} per program, {plan.num_real} runs)"
        )
    return "chunked", chunk


def _data_digest(items: np.ndarray, labels: np.ndarray, plan: Plan) -> str:
    h = hashlib.sha256()
    for a in (items, labels, plan.train_mask, plan.seeds, plan.test_idx):
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _global(x: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """``x`` (the same on every process) as one array over ``sharding``'s devices: each process
    fills its own devices from its copy. (``device_put`` would also compare the copies across
    processes, the whole table on every call.)"""
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def _put(items, labels, plan: Plan, devices) -> Stack:
    """The training data on device: shared arrays replicated, per-run ones laid over the devices
    (a ``Mesh`` axis ``run``, over every process's devices) when ``devices`` are given."""
    if devices is None:
        arrays = (items, labels, plan.train_mask, plan.seeds)
        return Stack(*(jnp.asarray(a) for a in arrays))
    mesh = Mesh(np.array(devices), ("run",))
    runs, shared = NamedSharding(mesh, P("run")), NamedSharding(mesh, P())
    return Stack(
        _global(items, shared),
        _global(labels, shared),
        _global(plan.train_mask, runs),
        _global(plan.seeds, runs),
        runs,
    )


def _shared(x: np.ndarray, stack: Stack) -> jax.Array:
    """``x`` on every device the stack uses (replicated), or on the default device."""
    if stack.run_sharding is None:
        return jnp.asarray(x)
    return _global(np.asarray(x), NamedSharding(stack.run_sharding.mesh, P()))


def _per_run(x: np.ndarray, stack: Stack) -> jax.Array:
    """Per-run ``x`` ``[R, ...]`` laid over the devices as the runs are."""
    if stack.run_sharding is None:
        return jnp.asarray(x)
    return _global(np.asarray(x), stack.run_sharding)


class _Job(NamedTuple):
    """What the epoch loop needs besides the strategy and the states."""

    programs: Programs
    stack: Stack
    plan: Plan
    config: TrainConfig
    execution: Execution
    devices: int
    progress: Callable[[str], None] | None
    t0: float


class _Evals:
    """Held-out logits every ``every`` epochs (see ``train_loso``'s ``eval_every``)."""

    def __init__(self, every: int, inputs: jax.Array, labels: np.ndarray):
        self.every, self.inputs, self.labels = every, inputs, labels
        self.epochs: list[int] = []
        self.logits: list[np.ndarray] = []

    def after(self, epoch: int, job: _Job, strategy: Strategy, states) -> None:
        if self.every and epoch % self.every == 0:
            final = strategy.finalize(states, job.stack)
            test_idx = _per_run(job.plan.test_idx, job.stack)
            logits = hosts.gather(strategy.predict(final, self.inputs, test_idx, False))
            self.epochs.append(epoch)
            self.logits.append(_pool(logits, job.plan, self.labels, job.config.seeds).logits)


def _out_of_memory(e: Exception) -> bool:
    return isinstance(e, (jax.errors.JaxRuntimeError, MemoryError)) and "RESOURCE_EXHAUSTED" in str(
        e
    )


def _fit(job: _Job, strategy: Strategy, states, workdir: Path | None, evals: _Evals):
    """The epochs: compiled calls, checks, metrics.jsonl, checkpoints, progress. Returns the final
    states, the strategy they ended with (an out-of-memory error shrinks it), and the history
    (``loss`` and ``accuracy``, ``[R, epochs]``)."""
    plan, config, execution, progress = job.plan, job.config, job.execution, job.progress
    history = {
        k: np.full((len(plan.seeds), config.epochs), np.nan, np.float32)
        for k in ("loss", "accuracy")
    }
    ckpts, start = None, 0
    if workdir is not None and execution.checkpoint_every:
        fp = fingerprint(config, job.programs.model, job.stack.items.shape, plan)
        ckpts = checkpoint.RunCheckpoints(workdir / "checkpoints", fp, progress=progress)
        start, restored, saved = ckpts.restore(strategy.stacked(states))
        if start:
            states = strategy.from_stacked(restored)
        for k, v in saved.items():
            if k in history and v.shape == history[k].shape:
                history[k][:, :start] = v[:, :start]
    # Process 0 writes the file; the others train the same runs and need not.
    metrics_log = (
        MetricsLog(workdir / "metrics.jsonl") if workdir is not None and hosts.is_main() else None
    )
    if metrics_log:
        metrics_log.restart(start)
        metrics_log.append([_start_line(job, strategy, start)])
    epoch, saved = start, start
    end = config.epochs
    if execution.stop_after_epoch is not None:
        end = min(end, execution.stop_after_epoch)
    first_call = None  # (time, epoch) after this process's first call, which also compiles
    try:
        while epoch < end:
            n = min(execution.epochs_per_call, end - epoch)
            for every in (execution.checkpoint_every, evals.every):
                if every:
                    n = min(n, every - epoch % every)
            try:
                states, step_metrics = strategy.train(states, job.stack, epoch, n)
            except Exception as e:
                if not _out_of_memory(e):
                    raise
                runs = len(plan.seeds)
                strategy = strategies.shrink(strategy, job.programs, runs, job.devices, e)
                if progress:
                    progress(
                        f"out of memory at epoch {epoch + 1}; going on from the same epoch and "
                        f"states with chunks of {strategy.runs_per_program} runs"
                    )
                continue
            _record(history, step_metrics, plan, epoch, execution.max_loss)
            epoch += n
            spent = time.perf_counter() - job.t0
            if metrics_log:
                metrics_log.append(_epoch_lines(history, range(epoch - n, epoch), plan, spent))
            if ckpts is not None and epoch % execution.checkpoint_every == 0:
                ckpts.save(epoch, strategy.stacked(states), history)
                saved = epoch
            evals.after(epoch, job, strategy, states)
            if progress:
                now = time.perf_counter()
                if first_call is None:
                    # The first call compiled: its time says nothing of the pace that follows.
                    first_call = (now, epoch)
                    eta = (
                        "ETA after the next call (this one compiled)" if epoch < end else "ETA 0 s"
                    )
                else:  # this process's own pace, after compiling
                    pace = (now - first_call[0]) / (epoch - first_call[1])
                    eta = f"ETA {pace * (end - epoch):.0f} s"
                loss = np.nanmean(history["loss"][: plan.num_real, epoch - 1])
                accuracy = np.nanmean(history["accuracy"][: plan.num_real, epoch - 1])
                progress(
                    f"epoch {epoch}/{config.epochs}: loss {loss:.4f}, train accuracy "
                    f"{accuracy:.1%} ({plan.num_real} runs, {strategy.name}), {spent:.0f} s, "
                    f"{eta}"
                )
    except KeyboardInterrupt:
        if ckpts is None:
            then = "no checkpoints were kept (Execution.checkpoint_every): rerun to start again"
        elif saved:
            then = f"the last checkpoint is epoch {saved}: rerun the same command to resume"
        else:
            then = "no checkpoint was written yet: rerun the same command to start again"
        raise Interrupted(f"interrupted at epoch {epoch + 1}; {then}") from None
    finally:
        if ckpts is not None:
            ckpts.close()
    return states, strategy, history


def _record(history, step_metrics, plan: Plan, epoch: int, max_loss: float) -> None:
    """The epochs' mean loss and accuracy (over valid items) into ``history``, after checking
    that every step's loss is finite and no epoch's loss has exploded."""
    m = step_metrics  # [R, n, steps] each
    _check_finite(m["loss"], m["count"] > 0, plan, epoch)
    weight = m["count"].astype(np.float64)
    total = np.maximum(weight.sum(2), 1)
    n = m["loss"].shape[1]
    history["loss"][:, epoch : epoch + n] = (m["loss"] * weight).sum(2) / total
    history["accuracy"][:, epoch : epoch + n] = (m["accuracy"] * weight).sum(2) / total
    _check_exploded(history["loss"], plan, range(epoch, epoch + n), max_loss)


def _pool(logits, plan: Plan, labels, seeds) -> LosoResult:
    """Each run's held-out logits ``[R, T, K]`` put back at their samples, per seed."""
    n, k = len(labels), logits.shape[-1]
    pooled = np.full((len(seeds), n, k), np.nan, np.float32)
    for r in range(plan.num_real):
        if plan.held_out[r] == FINAL:
            continue
        s = seeds.index(int(plan.seeds[r]))
        pooled[s, plan.tested(r)] = logits[r][plan.test_valid[r]]
    return LosoResult(pooled, predictions(pooled), labels, tuple(seeds), plan, np.empty(0))


def predictions(logits: np.ndarray) -> np.ndarray:
    """Class predictions ``[...]`` of pooled held-out logits ``[..., K]``; -1 where a sample has
    no logits (NaN: in no held-out group)."""
    return np.where(np.isnan(logits).any(-1), -1, np.nan_to_num(logits).argmax(-1))


def _pool_features(feats, plan: Plan, n: int, seeds) -> np.ndarray:
    out = np.zeros((len(seeds), n, feats.shape[-1]), np.float32)
    for r in range(plan.num_real):
        if plan.held_out[r] != FINAL:
            out[seeds.index(int(plan.seeds[r])), plan.tested(r)] = feats[r][plan.test_valid[r]]
    return out


def _check_finite(step_losses, had, plan: Plan, epoch: int) -> None:
    real = plan.num_real
    bad = had[:real] & ~np.isfinite(step_losses[:real])
    if bad.any():
        r, e, s = np.argwhere(bad)[0]
        raise NonFiniteLoss(
            f"non-finite training loss in run {r} (seed {plan.seeds[r]}, held out "
            f"{', '.join(plan.held_out[r])}) at epoch {epoch + e + 1}, step {s + 1}; "
            "lower the learning rate or check the inputs"
        )


def _check_exploded(losses, plan: Plan, epochs: range, max_loss: float) -> None:
    for e in epochs:
        if e == 0:
            continue  # the first epoch may start high; after it, a loss this large is divergence
        high = np.flatnonzero(losses[: plan.num_real, e] > max_loss)
        if len(high):
            r = high[0]
            raise LossExploded(
                f"training loss {losses[r, e]:.3g} above {max_loss:g} in run {r} (seed "
                f"{plan.seeds[r]}, held out {', '.join(plan.held_out[r])}) at epoch {e + 1}; "
                "the run diverged: lower the learning rate or check the inputs "
                "(Execution.max_loss sets the bound)"
            )


def _start_line(job: _Job, strategy: Strategy, resumed_from: int) -> dict:
    plan = job.plan
    return {
        "kind": "start",
        "time": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "runs": plan.num_real,
        "held_out": [list(h) for h in plan.held_out[: plan.num_real]],
        "seeds": plan.seeds[: plan.num_real].tolist(),
        "epochs": job.config.epochs,
        "resumed_from": resumed_from,
        "strategy": strategy.name,
        "chunk": strategy.runs_per_program if strategy.name == "chunked" else None,
        "devices": job.devices,
    }


def _epoch_lines(history: dict, epochs: range, plan: Plan, seconds: float) -> list[dict]:
    lines = []
    for e in epochs:
        loss = history["loss"][: plan.num_real, e]
        acc = history["accuracy"][: plan.num_real, e]
        lines.append(
            {
                "kind": "epoch",
                "epoch": e + 1,
                "loss": float(np.nanmean(loss)) if plan.num_real else None,
                "accuracy": float(np.nanmean(acc)) if plan.num_real else None,
                "loss_per_run": [round(float(v), 6) for v in loss],
                "accuracy_per_run": [round(float(v), 6) for v in acc],
                "seconds": round(seconds, 2),
            }
        )
    return lines
