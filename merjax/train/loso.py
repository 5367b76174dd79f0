"""The LOSO driver: every (seed, held-out group) run trained at once, and the pooled results.

Strategies over the run axis (``TrainConfig.strategy``), all giving the same numbers:
``vmap`` (one program, the design's default), ``map`` (``lax.map`` in one program), ``chunked``
(vmapped chunks of ``chunk_size`` runs, one after another) and ``loop`` (one jitted run at a
time). ``auto`` picks the fastest measured per backend (benchmarks/RESULTS.md).

Epochs and steps are ``lax.scan``s inside the program, except on CPU (``host_loop``), where
Python drives one jitted step: XLA:CPU runs convolutions with loop-carried weights ~10x slower.

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
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from merjax import checkpoint, files
from merjax.train.config import TrainConfig
from merjax.train.folds import FINAL, Plan, fold_plan, pad_runs, subject_groups
from merjax.train.step import epoch_batches, init_run, optimizer, predict_run, train_epochs, train_step

log = logging.getLogger(__name__)


def default_strategy(backend: str | None = None) -> str:
    """The fastest strategy measured on each backend (benchmarks/RESULTS.md): ``loop`` on CPU
    (vmap 3.7x and lax.map 11x slower there); ``vmap``, the design's choice, elsewhere (not yet
    measured on a GPU)."""
    backend = backend or jax.default_backend()
    return "loop" if backend == "cpu" else "vmap"


def resolve(config: TrainConfig, backend: str | None = None) -> tuple[str, bool]:
    """``(strategy, host_loop)`` that ``config`` runs with on ``backend`` (default: jax's)."""
    backend = backend or jax.default_backend()
    strategy = config.strategy if config.strategy != "auto" else default_strategy(backend)
    host_loop = config.host_loop if config.host_loop is not None else backend == "cpu"
    return strategy, host_loop


def _stack(trees: list) -> Any:
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _index(tree: Any, i) -> Any:
    return jax.tree.map(lambda x: x[i], tree)


class _Programs:
    """The jitted programs of one (model, config, data shape): built once, reused."""

    def __init__(self, model, config: TrainConfig, steps: int):
        self.model, self.tx = model, optimizer(config)
        self.single = functools.partial(
            train_epochs, model=model, tx=self.tx, steps=steps, batch_size=config.batch_size
        )
        init = functools.partial(init_run, model, self.tx)
        self.init_many = jax.jit(jax.vmap(init, in_axes=(None, 0, 0)))
        self._train = {}
        self.host_loop = resolve(config)[1]
        self.steps = steps
        self.order = functools.partial(epoch_batches, steps=steps, batch_size=config.batch_size)
        self.step = functools.partial(train_step, model=model, tx=self.tx)

    def train(self, strategy: str, num_epochs: int):
        key = (strategy, num_epochs)
        if key not in self._train:
            build = self._host_program if self.host_loop else self._scanned_program
            self._train[key] = build(strategy, num_epochs)
        return self._train[key]

    def _scanned_program(self, strategy: str, num_epochs: int):
        """One jitted program: epochs and steps are ``lax.scan``s (per run, vmapped, or
        ``lax.map`` over runs)."""
        fn = functools.partial(self.single, num_epochs=num_epochs)
        if strategy == "loop":
            return jax.jit(fn)
        if strategy == "map":
            def prog_map(states, items, labels, masks, seeds, first):
                return lax.map(lambda a: fn(a[0], items, labels, a[1], a[2], first), (states, masks, seeds))
            return jax.jit(prog_map)
        return jax.jit(jax.vmap(fn, in_axes=(0, None, None, 0, 0, None)))  # vmap and chunked

    def _host_program(self, strategy: str, num_epochs: int):
        """Same signature and numbers as the scanned programs; epochs and steps looped in Python
        around one jitted step (per run, vmapped over runs, or ``lax.map`` over runs)."""
        if strategy == "loop":
            order, step = jax.jit(self.order), jax.jit(self.step)
        else:
            order = jax.jit(jax.vmap(self.order, in_axes=(0, 0, None)))
            if strategy == "map":
                step_one = self.step
                step = jax.jit(lambda states, items, labels, idx, valid: lax.map(
                    lambda a: step_one(a[0], items, labels, a[1], a[2]), (states, idx, valid)))
            else:
                step = jax.jit(jax.vmap(self.step, in_axes=(0, None, None, 0, 0)))

        def prog(states, items, labels, masks, seeds, first):
            metrics = []
            for e in range(num_epochs):
                idx, valid = order(masks, seeds, first + e)  # [(R,) steps, B]
                for s in range(self.steps):
                    states, m = step(states, items, labels, idx[..., s, :], valid[..., s, :])
                    metrics.append(m)

            def stacked(*xs):  # [(R,) epochs, steps], as the scanned program's
                return jnp.stack(xs, -1).reshape(xs[0].shape + (num_epochs, self.steps))

            return states, jax.tree.map(stacked, *metrics)

        return prog


@dataclasses.dataclass
class LosoResult:
    """Pooled predictions of every seed, and what produced them."""

    logits: np.ndarray  # [S, N, K] held-out logits per seed (NaN: in no held-out group)
    preds: np.ndarray  # [S, N] (-1: in no held-out group)
    labels: np.ndarray  # [N]
    seeds: tuple[int, ...]
    plan: Plan
    losses: np.ndarray  # [R, epochs] mean training loss per run and epoch
    train_accuracy: np.ndarray | None = None  # [R, epochs] mean mini-batch accuracy (training items)
    states: Any = None  # stacked RunState of every run (None unless kept)
    features: np.ndarray | None = None  # [S, N, D] held-out penultimate features
    seconds: float = 0.0


def fingerprint(config: TrainConfig, model: nn.Module, items_shape, plan: Plan) -> str:
    """What a checkpoint must match to be resumed (not how it is computed: strategy etc.)."""
    return checkpoint.digest(
        [2,  # the checkpoint layout (2: history.npz beside the run stack)
         dataclasses.asdict(config) | {"strategy": None, "chunk_size": None, "host_loop": None,
                                       "epochs_per_call": None, "checkpoint_every": None},
         repr(model), list(items_shape), hashlib.sha256(plan.train_mask.tobytes()).hexdigest(),
         plan.seeds.tolist()]
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
) -> LosoResult:
    """Trains every (seed, held-out group) run and pools the held-out predictions.

    ``inputs`` ``[N, H, W, C]`` are the network inputs of the onset->apex flows, ``augmented``
    those of the onset->apex+1 flows (used for training only; None or ``config.augment=False``
    leaves them out). ``groups`` defaults to LOSO. With ``workdir``, training writes
    ``workdir/metrics.jsonl`` as it goes, and with ``config.checkpoint_every`` it checkpoints the
    run stack with orbax so that a rerun resumes from the last checkpoint. ``stop_after_epoch``
    ends training early (for tests of resuming).
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
    strategy, host_loop = resolve(config)
    devices = jax.devices()
    plan = fold_plan(subjects, groups, config.seeds, augment=use_aug, train_final=config.train_final)
    num_real = len(plan.seeds)
    multiple = len(devices) if strategy == "vmap" else config.chunk_size if strategy == "chunked" else 1
    plan = pad_runs(plan, multiple)
    steps = max(1, math.ceil(plan.train_mask.sum(1).max() / config.batch_size))
    programs = _programs(model, config, steps)

    mesh = Mesh(np.array(devices), ("run",)) if strategy == "vmap" and len(devices) > 1 else None
    run_sharding = NamedSharding(mesh, P("run")) if mesh else None
    shared = NamedSharding(mesh, P()) if mesh else None
    put = lambda x, s: jax.device_put(x, s) if s is not None else jnp.asarray(x)  # noqa: E731
    items_d, labels_d = put(items, shared), put(item_labels, shared)
    masks_d, seeds_d = put(plan.train_mask, run_sharding), put(plan.seeds, run_sharding)
    states = programs.init_many(items_d, masks_d, seeds_d)

    stack = _Stack(items_d, labels_d, masks_d, seeds_d)
    workdir = Path(workdir) if workdir is not None else None
    with files.WorkdirLock(workdir, progress) if workdir is not None else contextlib.nullcontext():
        states, history = _fit(programs, strategy, host_loop, len(devices), states, stack, plan, num_real,
                               config, fingerprint(config, model, items.shape, plan), workdir=workdir,
                               progress=progress, stop_after_epoch=stop_after_epoch, t0=t0)

    out = _predict(model, states, inputs, plan, strategy, features)
    logits = out[0] if features else out
    result = _pool(np.asarray(logits), plan, labels, config.seeds, num_real)
    result.losses = history["loss"][:num_real]
    result.train_accuracy = history["accuracy"][:num_real]
    if features:
        result.features = _pool_features(np.asarray(out[1]), plan, len(labels), config.seeds, num_real)
    if keep_states:
        result.states = _index(states, slice(0, num_real))
    result.seconds = time.perf_counter() - t0
    return result


class _Stack(NamedTuple):
    """The training data on device: items and labels (shared), masks and seeds (per run)."""

    items: jax.Array
    labels: jax.Array
    masks: jax.Array
    seeds: jax.Array


def _fit(programs, strategy, host_loop, num_devices, states, stack: _Stack, plan: Plan, num_real: int,
         config: TrainConfig, fp: str, *, workdir: Path | None, progress, stop_after_epoch, t0):
    """The epochs: compiled calls, checks, metrics.jsonl, checkpoints, progress. Returns the final
    states and the history (``loss`` and ``accuracy``, ``[R, epochs]``)."""
    history = {k: np.full((len(plan.seeds), config.epochs), np.nan, np.float32) for k in ("loss", "accuracy")}
    ckpts, start = None, 0
    if workdir is not None and config.checkpoint_every:
        ckpts = checkpoint.RunCheckpoints(workdir / "checkpoints", fp, progress=progress)
        start, states, saved = ckpts.restore(states)
        for k, v in saved.items():
            if k in history and v.shape == history[k].shape:
                history[k][:, :start] = v[:, :start]
    curve = _Curve(workdir / "metrics.jsonl", start) if workdir is not None else None
    if curve:
        curve.begin(plan, num_real, config, strategy, host_loop, num_devices)
    epoch = start
    end = config.epochs if stop_after_epoch is None else min(config.epochs, stop_after_epoch)
    try:
        while epoch < end:
            n = min(config.epochs_per_call, end - epoch)
            if config.checkpoint_every:
                n = min(n, config.checkpoint_every - epoch % config.checkpoint_every)
            states, step_metrics = _train_call(programs, strategy, n, states, stack, epoch, config.chunk_size)
            m = {k: np.asarray(v) for k, v in step_metrics.items()}  # [R, n, steps] each
            _check_finite(m["loss"], m["count"] > 0, plan, epoch, num_real)
            weight = m["count"].astype(np.float64)
            total = np.maximum(weight.sum(2), 1)
            history["loss"][:, epoch : epoch + n] = (m["loss"] * weight).sum(2) / total
            history["accuracy"][:, epoch : epoch + n] = (m["accuracy"] * weight).sum(2) / total
            _check_exploded(history["loss"], plan, range(epoch, epoch + n), num_real, config.max_loss)
            epoch += n
            spent = time.perf_counter() - t0
            if curve:
                curve.epochs(history, range(epoch - n, epoch), num_real, spent)
            if ckpts is not None and epoch % config.checkpoint_every == 0:
                ckpts.save(epoch, states, history)
            if progress:
                eta = spent / max(epoch - start, 1) * (end - epoch)
                progress(
                    f"epoch {epoch}/{config.epochs}: loss {np.nanmean(history['loss'][:num_real, epoch - 1]):.4f}"
                    f", train accuracy {np.nanmean(history['accuracy'][:num_real, epoch - 1]):.1%}"
                    f" ({num_real} runs, {strategy}), {spent:.0f} s, ETA {eta:.0f} s"
                )
    finally:
        if ckpts is not None:
            ckpts.close()
    return states, history


@functools.lru_cache(maxsize=8)
def _programs(model, config, steps) -> _Programs:
    return _Programs(model, config, steps)


def _train_call(programs, strategy, n, states, stack: _Stack, epoch, chunk):
    items, labels, masks, seeds = stack
    first = jnp.asarray(epoch, jnp.int32)
    if strategy in ("vmap", "map"):
        return programs.train(strategy, n)(states, items, labels, masks, seeds, first)
    if strategy == "loop":
        prog = programs.train("loop", n)
        outs = [prog(_index(states, r), items, labels, masks[r], seeds[r], first)
                for r in range(len(seeds))]
    else:  # chunked
        prog = programs.train("chunked", n)
        outs = [prog(_index(states, slice(c, c + chunk)), items, labels, masks[c : c + chunk],
                     seeds[c : c + chunk], first) for c in range(0, len(seeds), chunk)]
        return jax.tree.map(lambda *x: jnp.concatenate(x), *outs)
    return _stack(outs)


def _predict(model, states, inputs, plan, strategy, features):
    fn = functools.partial(predict_run, model=model, features=features)
    x = jnp.asarray(inputs)
    idx = jnp.asarray(plan.test_idx)
    if strategy == "loop":
        one = jax.jit(fn)
        outs = [one(_index(states, r), x, idx[r]) for r in range(len(plan.seeds))]
        return jax.tree.map(lambda *a: jnp.stack(a), *outs)
    return jax.jit(jax.vmap(fn, in_axes=(0, None, 0)))(states, x, idx)


def _pool(logits, plan: Plan, labels, seeds, num_real) -> LosoResult:
    n, k = len(labels), logits.shape[-1]
    pooled = np.full((len(seeds), n, k), np.nan, np.float32)
    for r in range(num_real):
        if plan.held_out[r] == FINAL:
            continue
        s = seeds.index(int(plan.seeds[r]))
        v = plan.test_valid[r]
        pooled[s, plan.test_idx[r][v]] = logits[r][v]
    preds = np.where(np.isnan(pooled).any(-1), -1, np.nan_to_num(pooled).argmax(-1))
    return LosoResult(pooled, preds, labels, tuple(seeds), plan, np.empty(0))


def _pool_features(feats, plan, n, seeds, num_real) -> np.ndarray:
    out = np.zeros((len(seeds), n, feats.shape[-1]), np.float32)
    for r in range(num_real):
        if plan.held_out[r] != FINAL:
            v = plan.test_valid[r]
            out[seeds.index(int(plan.seeds[r])), plan.test_idx[r][v]] = feats[r][v]
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
                f"training loss {losses[r, e]:.3g} above {max_loss:g} in run {r} (seed {plan.seeds[r]}, "
                f"held out {', '.join(plan.held_out[r])}) at epoch {e + 1}; the run diverged: lower the "
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
                if d.get("kind") == "start" or (d.get("kind") == "epoch" and d.get("epoch", 0) <= start):
                    kept.append(line + "\n")
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(kept))
        tmp.replace(path)
        self.start = start

    def _write(self, lines: list[dict]) -> None:
        with open(self.path, "a") as f:
            f.write("".join(json.dumps(line) + "\n" for line in lines))
            f.flush()

    def begin(self, plan: Plan, num_real: int, config: TrainConfig, strategy: str, host_loop: bool,
              devices: int) -> None:
        self._write([{
            "kind": "start", "time": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "runs": num_real, "held_out": [list(h) for h in plan.held_out[:num_real]],
            "seeds": plan.seeds[:num_real].tolist(), "epochs": config.epochs, "resumed_from": self.start,
            "strategy": strategy, "host_loop": host_loop, "devices": devices,
        }])

    def epochs(self, history: dict[str, np.ndarray], epochs: range, num_real: int, seconds: float) -> None:
        lines = []
        for e in epochs:
            loss, acc = history["loss"][:num_real, e], history["accuracy"][:num_real, e]
            lines.append({
                "kind": "epoch", "epoch": e + 1,
                "loss": _json_safe(float(np.nanmean(loss))) if num_real else None,
                "accuracy": _json_safe(float(np.nanmean(acc))) if num_real else None,
                "loss_per_run": _json_safe([round(float(v), 6) for v in loss]),
                "accuracy_per_run": _json_safe([round(float(v), 6) for v in acc]),
                "seconds": round(seconds, 2),
            })
        self._write(lines)
