"""Leave-one-subject-out training where every fold trains at once (DESIGN.md section 5).

One *run* = one held-out subject group under one seed (plus, optionally, one run per seed that
trains on every subject: the final model for inference). A run's whole state -- parameters,
RMSprop state, BatchNorm statistics and its input normalisation -- is a plain pytree; the runs
are stacked along a leading axis, so ``jax.vmap``, sharding over devices and orbax all see the
same structure.

Every run trains on the same table of training items (onset->apex and onset->apex+1 flows of
all samples) through its own mask: each epoch it draws a fresh permutation of *its* training
items, in mini-batches of ``batch_size`` with a validity mask for the ragged end. Losses,
gradients and BatchNorm statistics see only valid items, so a run never trains on its held-out
subjects (``fold_plan`` builds the masks; tests assert on them).

Strategies over the run axis (``TrainConfig.strategy``), all giving the same numbers:
``vmap`` (one program, the design's default), ``map`` (``lax.map`` in one program), ``chunked``
(vmapped chunks of ``chunk_size`` runs, one after another) and ``loop`` (one jitted run at a
time). ``auto`` picks the fastest measured per backend (benchmarks/RESULTS.md).

Epochs and steps are ``lax.scan``s inside the program, except on CPU (``host_loop``), where
Python drives one jitted step: XLA:CPU runs convolutions with loop-carried weights ~10x slower.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

log = logging.getLogger(__name__)

STRATEGIES = ("auto", "vmap", "map", "chunked", "loop")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The training protocol. Defaults are the paper's (section 4) with MATLAB's RMSprop
    defaults, since the paper used MATLAB's trainNetwork and states no other values."""

    epochs: int = 150
    batch_size: int = 64
    learning_rate: float = 1e-3  # MATLAB InitialLearnRate
    rms_decay: float = 0.9  # MATLAB SquaredGradientDecayFactor
    eps: float = 1e-8  # MATLAB Epsilon
    weight_decay: float = 1e-4  # MATLAB L2Regularization (added to the gradient)
    seeds: tuple[int, ...] = (0,)
    strategy: str = "auto"
    chunk_size: int = 8
    epochs_per_call: int = 5  # epochs per compiled call: progress, NaN checks, checkpoints
    checkpoint_every: int = 0  # epochs between checkpoints; 0: none
    train_final: bool = False  # also train, per seed, a model on every subject
    augment: bool = True  # onset->apex+1 flows as extra training items (the paper's)
    # Steps driven from Python, one jitted step per call, instead of lax.scan inside the program.
    # None: on CPU only, where XLA:CPU runs a convolution whose weights are loop-carried about
    # 10x slower than the same convolution outside a loop (jax-ml/jax#12868; measured in
    # benchmarks/RESULTS.md). Same numbers either way, up to float rounding.
    host_loop: bool | None = None

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        for name in ("epochs", "batch_size", "chunk_size", "epochs_per_call"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.seeds:
            raise ValueError("seeds must not be empty")


class RunState(NamedTuple):
    """Everything one run carries between steps (stacked: a leading run axis)."""

    params: Any
    batch_stats: Any
    opt_state: Any
    mean: jax.Array  # [H, W, C] training-set mean image (MATLAB's 'zerocenter')
    scale: jax.Array  # [] training-set std after centring


class Plan(NamedTuple):
    """Which items each run trains on and which samples it tests; numpy, run-major."""

    train_mask: np.ndarray  # [R, M] bool over the M training items
    test_idx: np.ndarray  # [R, T] int sample indices (padded)
    test_valid: np.ndarray  # [R, T] bool
    seeds: np.ndarray  # [R] int
    held_out: tuple[tuple[str, ...], ...]  # per run, the held-out subjects ('*' = final model)


def subject_groups(subjects: Sequence[str], num_folds: int | None = None) -> list[list[str]]:
    """LOSO (one group per subject) or ``num_folds`` groups with similar sample counts."""
    names, counts = np.unique(np.asarray(subjects), return_counts=True)
    if num_folds is None or num_folds >= len(names):
        return [[str(n)] for n in names]
    if num_folds < 2:
        raise ValueError(f"num_folds must be >= 2, got {num_folds}")
    groups: list[list[str]] = [[] for _ in range(num_folds)]
    sizes = np.zeros(num_folds, int)
    for i in np.argsort(-counts, kind="stable"):  # largest subjects first, to the lightest group
        g = int(sizes.argmin())
        groups[g].append(str(names[i]))
        sizes[g] += counts[i]
    return [sorted(g) for g in groups]


def fold_plan(
    subjects: Sequence[str], groups: list[list[str]], seeds: Sequence[int], *,
    augment: bool = True, train_final: bool = False,
) -> Plan:
    """Masks for every (seed, group) run. Items ``0..N-1`` are the onset->apex flows and, with
    ``augment``, items ``N..2N-1`` the onset->apex+1 flows of the same samples."""
    subjects = np.asarray(subjects)
    n = len(subjects)
    runs = [g for g in groups] + ([[]] if train_final else [])
    tmax = max(1, max(int(np.isin(subjects, g).sum()) for g in runs))
    masks, idx, valid, run_seeds, held = [], [], [], [], []
    for seed in seeds:
        for g in runs:
            test = np.isin(subjects, g)
            train = ~test
            masks.append(np.concatenate([train, train]) if augment else train)
            t = np.flatnonzero(test)
            idx.append(np.pad(t, (0, tmax - len(t))))
            valid.append(np.arange(tmax) < len(t))
            run_seeds.append(seed)
            held.append(tuple(g) if g else ("*",))
    return Plan(np.array(masks), np.array(idx), np.array(valid), np.array(run_seeds), tuple(held))


def pad_runs(plan: Plan, multiple: int) -> Plan:
    """Appends empty runs (nothing to train, nothing to test) up to a multiple of ``multiple``."""
    extra = -len(plan.seeds) % multiple
    if not extra:
        return plan
    return Plan(
        np.concatenate([plan.train_mask, np.zeros((extra, plan.train_mask.shape[1]), bool)]),
        np.concatenate([plan.test_idx, np.zeros((extra, plan.test_idx.shape[1]), int)]),
        np.concatenate([plan.test_valid, np.zeros((extra, plan.test_valid.shape[1]), bool)]),
        np.concatenate([plan.seeds, np.zeros(extra, int)]),
        plan.held_out + (("",),) * extra,
    )


# --------------------------------------------------------------------------- one run


def optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """RMSprop with L2 added to the gradient, as MATLAB's trainingOptions('rmsprop')."""
    return optax.chain(
        optax.add_decayed_weights(config.weight_decay),
        optax.rmsprop(config.learning_rate, decay=config.rms_decay, eps=config.eps),
    )


def _run_key(seed: jax.Array) -> jax.Array:
    return jax.random.key(seed)


def init_run(model: nn.Module, tx, items: jax.Array, train_mask: jax.Array, seed: jax.Array) -> RunState:
    """A fresh run: initialised network and optimizer, normalisation from its training items."""
    variables = model.init(jax.random.fold_in(_run_key(seed), 0), items[:1], train=False)
    w = train_mask.reshape((-1,) + (1,) * (items.ndim - 1))
    count = jnp.maximum(train_mask.sum(), 1).astype(items.dtype)
    mean = jnp.where(w, items, 0).sum(0) / count  # where, not *: held-out items never leak in
    var = jnp.where(w, (items - mean) ** 2, 0).sum() / (count * np.prod(items.shape[1:]))
    scale = jnp.where(var > 0, jnp.sqrt(var), 1.0)
    params = variables["params"]
    return RunState(params, variables.get("batch_stats", {}), tx.init(params), mean, scale)


def _normalise(state: RunState, x: jax.Array) -> jax.Array:
    return (x - state.mean) / state.scale


def epoch_batches(
    train_mask: jax.Array, seed: jax.Array, epoch: jax.Array, *, steps: int, batch_size: int
) -> tuple[jax.Array, jax.Array]:
    """One epoch's mini-batches of a run: item indices and validity, both ``[steps, batch_size]``.

    A fresh permutation of the run's own training items per epoch (from its seed); the ragged
    end is padded with invalid entries."""
    m = train_mask.shape[0]
    r = jax.random.uniform(jax.random.fold_in(_run_key(seed), epoch + 1), (m,))
    order = jnp.argsort(jnp.where(train_mask, r, 2.0))  # this run's items first, shuffled
    total = steps * batch_size
    order = jnp.resize(order, (total,)) if total > m else order[:total]
    valid = jnp.arange(total) < train_mask.sum()
    return order.reshape(steps, batch_size), valid.reshape(steps, batch_size)


def train_step(
    state: RunState, items: jax.Array, labels: jax.Array, idx_B: jax.Array, valid_B: jax.Array, *,
    model: nn.Module, tx,
) -> tuple[RunState, tuple[jax.Array, jax.Array]]:
    """One RMSprop step on the valid items of a mini-batch; returns ``(state, (loss, had_items))``
    (a batch without valid items changes nothing and reports loss 0)."""

    def loss_fn(params, batch_stats, x, y):
        logits, updates = model.apply(
            {"params": params, "batch_stats": batch_stats}, x, train=True, mask=valid_B,
            mutable=["batch_stats"],
        )
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, y)
        loss = jnp.sum(ce * valid_B) / jnp.maximum(valid_B.sum(), 1)
        return loss, updates.get("batch_stats", batch_stats)

    x = jnp.where(valid_B[:, None, None, None], _normalise(state, items[idx_B]), 0.0)
    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, state.batch_stats, x, labels[idx_B]
    )
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    new = state._replace(
        params=optax.apply_updates(state.params, updates), batch_stats=stats, opt_state=opt_state
    )
    any_valid = valid_B.any()
    new = jax.tree.map(lambda a, b: jnp.where(any_valid, a, b), new, state)
    return new, (jnp.where(any_valid, loss, 0.0), any_valid)


def train_epochs(
    state: RunState, items: jax.Array, labels: jax.Array, train_mask: jax.Array, seed: jax.Array,
    first_epoch: jax.Array, *, model: nn.Module, tx, num_epochs: int, steps: int, batch_size: int,
) -> tuple[RunState, jax.Array]:
    """``num_epochs`` epochs of one run in one program (``lax.scan`` over epochs and steps);
    returns the state and ``(losses, had_items)``, both ``[num_epochs, steps]``."""

    def epoch(state, e):
        batches = epoch_batches(train_mask, seed, e, steps=steps, batch_size=batch_size)
        return lax.scan(lambda s, b: train_step(s, items, labels, *b, model=model, tx=tx), state, batches)

    return lax.scan(epoch, state, first_epoch + jnp.arange(num_epochs))


def predict_run(
    state: RunState, inputs: jax.Array, test_idx: jax.Array, *, model: nn.Module,
    features: bool = False,
):
    """Eval-mode logits ``[T, K]`` (and penultimate features) for one run's test samples."""
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    x = _normalise(state, inputs[test_idx])
    return model.apply(variables, x, train=False, return_features=features)


# --------------------------------------------------------------------------- many runs


def default_strategy(backend: str | None = None) -> str:
    """The fastest strategy measured on each backend (benchmarks/RESULTS.md): ``loop`` on CPU
    (vmap 3.7x and lax.map 11x slower there); ``vmap``, the design's choice, elsewhere (not yet
    measured on a GPU)."""
    backend = backend or jax.default_backend()
    return "loop" if backend == "cpu" else "vmap"


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
        self.init_one = jax.jit(init)
        self.init_many = jax.jit(jax.vmap(init, in_axes=(None, 0, 0)))
        self._train = {}
        self.host_loop = config.host_loop if config.host_loop is not None else jax.default_backend() == "cpu"
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
            losses, had = [], []
            for e in range(num_epochs):
                idx, valid = order(masks, seeds, first + e)  # [(R,) steps, B]
                for s in range(self.steps):
                    states, (loss, h) = step(states, items, labels, idx[..., s, :], valid[..., s, :])
                    losses.append(loss)
                    had.append(h)
            shape = losses[0].shape + (num_epochs, self.steps)  # [(R,) epochs, steps]
            return states, (jnp.stack(losses, -1).reshape(shape), jnp.stack(had, -1).reshape(shape))

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
    states: Any = None  # stacked RunState of every run (None unless kept)
    features: np.ndarray | None = None  # [S, N, D] held-out penultimate features
    seconds: float = 0.0


def fingerprint(config: TrainConfig, model: nn.Module, items_shape, plan: Plan) -> str:
    """What a checkpoint must match to be resumed."""
    blob = json.dumps(
        [dataclasses.asdict(config) | {"strategy": None, "chunk_size": None, "host_loop": None,
                                       "epochs_per_call": None, "checkpoint_every": None},
         repr(model), list(items_shape), hashlib.sha256(plan.train_mask.tobytes()).hexdigest(), plan.seeds.tolist()],
        sort_keys=True, default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class NonFiniteLoss(FloatingPointError):
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
    leaves them out). ``groups`` defaults to LOSO. With ``workdir`` and
    ``config.checkpoint_every``, the run stack is checkpointed with orbax and a rerun resumes
    from the last checkpoint. ``stop_after_epoch`` ends training early (for tests of resuming).
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
    strategy = config.strategy if config.strategy != "auto" else default_strategy()
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

    manager, start = None, 0
    if workdir is not None and config.checkpoint_every:
        manager, start, states = _restore(
            Path(workdir) / "checkpoints", fingerprint(config, model, items.shape, plan), states,
            progress,
        )
    losses = np.full((len(plan.seeds), config.epochs), np.nan, np.float32)
    if manager is not None and start:
        losses[:, :start] = np.load(Path(workdir) / "checkpoints" / "losses.npy")[:, :start]
    epoch = start
    end = config.epochs if stop_after_epoch is None else min(config.epochs, stop_after_epoch)
    while epoch < end:
        n = min(config.epochs_per_call, end - epoch)
        if config.checkpoint_every:
            n = min(n, config.checkpoint_every - epoch % config.checkpoint_every)
        states, step_losses = _train_call(programs, strategy, n, states, items_d, labels_d,
                                          masks_d, seeds_d, epoch, config.chunk_size)
        step_losses, had = (np.asarray(a) for a in step_losses)  # [R, n, steps] each
        _check_finite(step_losses, had, plan, epoch, num_real)
        losses[:, epoch : epoch + n] = (step_losses * had).sum(2) / np.maximum(had.sum(2), 1)
        epoch += n
        if manager is not None and epoch % config.checkpoint_every == 0:
            np.save(Path(workdir) / "checkpoints" / "losses.npy", losses)
            manager.save(epoch, args=_ocp().args.StandardSave(states))
            manager.wait_until_finished()
        if progress:
            spent = time.perf_counter() - t0
            eta = spent / max(epoch - start, 1) * (end - epoch)
            progress(
                f"epoch {epoch}/{config.epochs}: loss {np.nanmean(losses[:num_real, epoch - 1]):.4f}"
                f" ({num_real} runs, {strategy}), {spent:.0f} s, ETA {eta:.0f} s"
            )
    if manager is not None:
        manager.close()

    out = _predict(programs, model, states, inputs, plan, strategy, features)
    logits = out[0] if features else out
    result = _pool(np.asarray(logits), plan, labels, config.seeds, num_real)
    result.losses = losses[:num_real]
    if features:
        result.features = _pool_features(np.asarray(out[1]), plan, len(labels), config.seeds, num_real)
    if keep_states:
        result.states = _index(states, slice(0, num_real))
    result.seconds = time.perf_counter() - t0
    return result


@functools.lru_cache(maxsize=8)
def _programs(model, config, steps) -> _Programs:
    return _Programs(model, config, steps)


def _train_call(programs, strategy, n, states, items, labels, masks, seeds, epoch, chunk):
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


def _predict(programs, model, states, inputs, plan, strategy, features):
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
        if plan.held_out[r] == ("*",):
            continue
        s = seeds.index(int(plan.seeds[r]))
        v = plan.test_valid[r]
        pooled[s, plan.test_idx[r][v]] = logits[r][v]
    preds = np.where(np.isnan(pooled).any(-1), -1, np.nan_to_num(pooled).argmax(-1))
    return LosoResult(pooled, preds, labels, tuple(seeds), plan, np.empty(0))


def _pool_features(feats, plan, n, seeds, num_real) -> np.ndarray:
    out = np.zeros((len(seeds), n, feats.shape[-1]), np.float32)
    for r in range(num_real):
        if plan.held_out[r] != ("*",):
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


def _ocp():
    import orbax.checkpoint as ocp  # imported lazily: orbax is slow to import
    return ocp


def _restore(path: Path, fp: str, states, progress):
    """A CheckpointManager for ``path`` and ``(start_epoch, states)``: from the last checkpoint
    when its fingerprint matches, else from scratch (a stale folder is cleared)."""
    ocp = _ocp()
    meta = path / "fingerprint.json"
    if path.exists() and (not meta.is_file() or json.loads(meta.read_text()) != fp):
        if progress:
            progress(f"checkpoints in {path} are for another configuration; starting afresh")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps(fp))
    manager = ocp.CheckpointManager(
        path.absolute(), options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True)
    )
    step = manager.latest_step()
    if step is None:
        return manager, 0, states
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, states)
    states = manager.restore(step, args=ocp.args.StandardRestore(abstract))
    if progress:
        progress(f"resumed from the checkpoint of epoch {step} in {path}")
    return manager, int(step), states
